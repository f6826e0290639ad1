//! What a killed Smithers leaves of native sandboxes: bubblewrap dies with
//! it (`--die-with-parent`), but the sandbox's directory and its (empty)
//! cgroups stay. Each sandbox's groups are claimed in `<state>/<id>.owner`
//! with the owner's mark; a provider starting later purges the sandboxes
//! whose owner is gone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroup::Cgroup;
use crate::provider::{PurgeReport, SandboxId};
use crate::{Error, owner};

const SUFFIX: &str = ".owner";

#[derive(Serialize, Deserialize)]
struct Record {
    owner: String,
    cgroup: Cgroup,
}

pub(super) fn record_path(state_dir: &Path, id: &SandboxId) -> PathBuf {
    state_dir.join(format!("{id}{SUFFIX}"))
}

/// Writes the claim (whole or not at all).
pub(super) fn claim(state_dir: &Path, id: &SandboxId, cgroup: &Cgroup) -> Result<(), Error> {
    let record = Record {
        owner: owner::current(),
        cgroup: cgroup.clone(),
    };
    let json = serde_json::to_vec(&record)
        .map_err(|e| Error::Invalid(format!("cannot write the owner record: {e}")))?;
    let path = record_path(state_dir, id);
    let partial = state_dir.join(format!(".{id}{SUFFIX}"));
    std::fs::write(&partial, json)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(Error::io(format!("cannot write {}", path.display())))
}

pub(super) fn release(state_dir: &Path, id: &SandboxId) {
    let _ = std::fs::remove_file(record_path(state_dir, id));
}

/// Kills what runs in a sandbox's groups, removes the groups and its
/// directory, then looks again for anything left; a clean purge releases
/// the claim. What is already gone (another purge of the same orphan got
/// there first) is not a failure.
pub(super) fn purge_sandbox(
    state_dir: &Path,
    id: &SandboxId,
    cgroup: &Cgroup,
    dir: &Path,
) -> PurgeReport {
    let mut report = PurgeReport {
        processes_killed: cgroup.kill_all(),
        ..PurgeReport::default()
    };
    match cgroup.remove() {
        Ok(removed) => report.removed.extend(removed),
        Err(e) => report.remaining.push(e.to_string()),
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => report.removed.push(format!("directory {}", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => report
            .remaining
            .push(format!("directory {}: {e}", dir.display())),
    }
    // The check: look again for everything the sandbox could have left.
    report.remaining.extend(cgroup.leftovers());
    let pids = cgroup.pids();
    if !pids.is_empty() {
        report.remaining.push(format!("processes {pids:?}"));
    }
    if dir.exists() {
        report
            .remaining
            .push(format!("directory {}", dir.display()));
    }
    report.remaining.sort();
    report.remaining.dedup();
    if report.is_clean() {
        release(state_dir, id);
    }
    report
}

/// Purges every sandbox under `state_dir` whose owner is gone.
pub(super) fn purge(state_dir: &Path) -> Vec<(SandboxId, PurgeReport)> {
    let mut purged = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return purged;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(SUFFIX).filter(|n| !n.starts_with('.')) else {
            continue;
        };
        let Ok(text) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<Record>(&text) else {
            tracing::warn!(file = %entry.path().display(), "an owner record that does not parse");
            continue;
        };
        if !owner::is_gone(&record.owner) {
            continue;
        }
        let id = SandboxId(id.to_string());
        let report = purge_sandbox(state_dir, &id, &record.cgroup, &state_dir.join(&id.0));
        // Empty: a purge elsewhere took it all first.
        if report != PurgeReport::default() {
            purged.push((id, report));
        }
    }
    purged.sort_by(|a, b| a.0.cmp(&b.0));
    purged
}
