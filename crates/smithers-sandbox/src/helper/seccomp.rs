//! The seccomp filter of every sandboxed process: a deny list of the
//! system calls that cross the sandbox's boundaries or widen the kernel's
//! attack surface, each answered with EPERM (ENOSYS for `clone3`, whose
//! flags a filter cannot read, so that libc falls back to `clone`).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

fn arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err("seccomp filters are built for x86_64 and aarch64 only".into())
    }
}

/// Denied whatever their arguments: (name, number).
const DENIED: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("fsconfig", libc::SYS_fsconfig),
    ("fspick", libc::SYS_fspick),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("chroot", libc::SYS_chroot),
];

/// Address families a socket may have: Unix always, IPv4/IPv6 with egress.
fn families(inet: bool) -> Vec<u64> {
    let mut families = vec![libc::AF_UNIX as u64];
    if inet {
        families.extend([libc::AF_INET as u64, libc::AF_INET6 as u64]);
    }
    families
}

/// The same filter as a Docker (libseccomp JSON) profile, for containers:
/// one deny list for every provider.
pub fn docker_profile(inet: bool) -> serde_json::Value {
    let eperm = libc::EPERM;
    let mut syscalls = vec![serde_json::json!({
        "names": DENIED.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": eperm,
    })];
    for flag in CLONE_NEW {
        syscalls.push(serde_json::json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": eperm,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    // One condition per rule: libseccomp (and so the engine) cannot AND
    // several comparisons of the same argument, so the refused families
    // are listed one by one below the highest allowed, then everything
    // above it.
    let allowed = families(inet);
    let highest = allowed.iter().copied().max().unwrap_or(0);
    let mut refused: Vec<serde_json::Value> = (0..highest)
        .filter(|f| !allowed.contains(f))
        .map(|f| serde_json::json!([{"index": 0, "value": f, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]))
        .collect();
    refused.push(
        serde_json::json!([{"index": 0, "value": highest, "valueTwo": 0, "op": "SCMP_CMP_GT"}]),
    );
    for args in refused {
        syscalls.push(serde_json::json!({
            "names": ["socket", "socketpair"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": eperm,
            "args": args,
        }));
    }
    syscalls.push(serde_json::json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": libc::ENOSYS,
    }));
    serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
}

/// Namespace flags `clone` may not be given.
const CLONE_NEW: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// The EPERM filter. `inet`: IPv4/IPv6 sockets allowed (for the proxy).
pub(super) fn deny_list(inet: bool) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, n)| (n, Vec::new())).collect();
    let clone_rules = CLONE_NEW
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![condition(0, SeccompCmpOp::MaskedEq(flag), flag)?])
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // socket(domain, …) and socketpair(domain, …): any other family is refused.
    let allowed = families(inet);
    let other_family = || -> Result<Vec<SeccompRule>, String> {
        let conditions = allowed
            .iter()
            .map(|&f| condition(0, SeccompCmpOp::Ne, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![
            SeccompRule::new(conditions).map_err(|e| e.to_string())?,
        ])
    };
    rules.insert(libc::SYS_socket, other_family()?);
    rules.insert(libc::SYS_socketpair, other_family()?);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

fn clone3_filter() -> Result<BpfProgram, String> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

/// Installs both filters on the calling process (single-threaded here).
pub(super) fn install(inet: bool) -> Result<(), String> {
    let deny = deny_list(inet)?;
    let clone3 = clone3_filter()?;
    seccompiler::apply_filter(&deny).map_err(|e| e.to_string())?;
    seccompiler::apply_filter(&clone3).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_profile_denies_the_same_calls() {
        let profile = docker_profile(false);
        let rules = profile["syscalls"].as_array().unwrap();
        let names: Vec<&str> = rules[0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, DENIED.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        assert!(names.contains(&"ptrace") && names.contains(&"io_uring_setup"));
        let clones = rules.iter().filter(|r| r["names"][0] == "clone").count();
        assert_eq!(clones, CLONE_NEW.len());
        // Without egress: family 0 and everything above AF_UNIX.
        let sockets = |profile: &serde_json::Value| -> Vec<(String, u64)> {
            profile["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"][0] == "socket")
                .map(|r| {
                    let arg = &r["args"].as_array().unwrap()[0];
                    (
                        arg["op"].as_str().unwrap().to_string(),
                        arg["value"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let eq = |v: u64| ("SCMP_CMP_EQ".to_string(), v);
        let gt = |v: u64| ("SCMP_CMP_GT".to_string(), v);
        assert_eq!(sockets(&profile), [eq(0), gt(1)]);
        // With egress: 0, 3..=9 and everything above AF_INET6 (10).
        let mut expected: Vec<_> = [0, 3, 4, 5, 6, 7, 8, 9].into_iter().map(eq).collect();
        expected.push(gt(10));
        assert_eq!(sockets(&docker_profile(true)), expected);
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
    }

    /// The Docker profile's socket rules, evaluated as libseccomp would
    /// (a rule matches when its one condition holds; any match refuses),
    /// refuse exactly the families the native filter refuses.
    #[test]
    fn the_docker_profile_refuses_exactly_the_other_families() {
        for inet in [false, true] {
            let profile = docker_profile(inet);
            let rules: Vec<(String, u64)> = profile["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"][0] == "socket")
                .map(|r| {
                    let args = r["args"].as_array().unwrap();
                    assert_eq!(args.len(), 1, "one condition per rule: {r}");
                    (
                        args[0]["op"].as_str().unwrap().to_string(),
                        args[0]["value"].as_u64().unwrap(),
                    )
                })
                .collect();
            let refused = |family: u64| {
                rules.iter().any(|(op, value)| match op.as_str() {
                    "SCMP_CMP_EQ" => family == *value,
                    "SCMP_CMP_GT" => family > *value,
                    other => panic!("unexpected comparison {other}"),
                })
            };
            let allowed = families(inet);
            for family in (0..=64).chain([255, 65_535, u64::from(u32::MAX), u64::MAX]) {
                assert_eq!(
                    refused(family),
                    !allowed.contains(&family),
                    "family {family} with inet={inet}"
                );
            }
        }
    }

    #[test]
    fn the_filters_compile() {
        assert!(!deny_list(false).unwrap().is_empty());
        assert!(!deny_list(true).unwrap().is_empty());
        assert!(!clone3_filter().unwrap().is_empty());
    }
}
