//! Landlock inside the sandbox: read and execute anywhere the sandbox can
//! see, write only beneath the workspace and `/tmp` (and to /dev/null and
//! its kind); no signals to
//! and no abstract sockets of processes outside (kernels with ABI 6+).

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible as _, Ruleset, RulesetAttr as _,
    RulesetCreatedAttr as _, RulesetStatus, Scope, path_beneath_rules,
};

/// The newest ABI these rules use; older kernels get what they support.
const TARGET: ABI = ABI::V6;

/// The newest Landlock ABI (up to the one these rules use) this kernel
/// offers; 0 when it has none. Creating a ruleset restricts nothing, so
/// the probe changes nothing.
pub fn landlock_abi() -> i32 {
    let known = [ABI::V6, ABI::V5, ABI::V4, ABI::V3, ABI::V2, ABI::V1];
    known
        .into_iter()
        .find(|&abi| {
            Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(abi))
                .and_then(|r| r.create())
                .is_ok()
        })
        .map_or(0, |abi| abi as i32)
}

/// What `restrict` says when the kernel enforced every rule.
pub(super) const FULLY_ENFORCED: &str = "fully enforced";

pub(super) fn restrict(writable: &[String]) -> Result<&'static str, String> {
    // A device the sandbox lacks (no /dev/tty without a terminal) is skipped.
    let writable: Vec<&String> = writable
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(TARGET))))
        .and_then(|r| r.add_rules(path_beneath_rules(writable, AccessFs::from_all(TARGET))))
        .and_then(|r| r.restrict_self())
        .map_err(|e| e.to_string())?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => FULLY_ENFORCED,
        RulesetStatus::PartiallyEnforced => "partially enforced",
        _ => "not enforced (this kernel has no Landlock)",
    })
}
