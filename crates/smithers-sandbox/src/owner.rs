//! Who made a sandbox, so that what a killed Smithers left behind can be
//! told from what a running one still uses: this boot, this PID namespace,
//! this process id and its start time (a reused pid starts later).

/// The owner mark of this process: `boot:pidns:pid:start`.
pub fn current() -> String {
    mark(std::process::id()).unwrap_or_else(|| format!("unknown:{}", std::process::id()))
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|l| l.to_string_lossy().trim_start_matches("pid:").to_string())
}

/// A process's start time in clock ticks since boot (field 22 of its
/// stat); `None` for a process that has ended, though its parent has not
/// reaped it yet (state `Z` or `X`, field 3): it holds nothing any more.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18).map(str::to_string)
}

fn mark(pid: u32) -> Option<String> {
    Some(format!(
        "{}:{}:{pid}:{}",
        boot_id()?,
        pid_namespace()?,
        start_time(pid)?
    ))
}

/// Whether the owner `mark` is known to be gone: made in an earlier boot,
/// or in this boot and PID namespace by a process that no longer runs (or
/// whose pid a later process reuses). A mark from another PID namespace,
/// or one that does not parse, cannot be judged here and counts as alive.
pub fn is_gone(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split(':').collect();
    let [boot, namespace, pid, start] = parts[..] else {
        return false;
    };
    if boot_id().is_some_and(|b| b != boot) {
        return true;
    }
    if pid_namespace().is_none_or(|n| n != namespace) {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    start_time(pid).is_none_or(|now| now != start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let me = current();
        assert!(!is_gone(&me), "{me}");
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let theirs = mark(child.id()).unwrap_or_default();
        // Ended but not reaped yet (a zombie) is gone already.
        let ended = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !theirs.is_empty() && !is_gone(&theirs) && std::time::Instant::now() < ended {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !theirs.is_empty() {
            assert!(is_gone(&theirs), "{theirs}");
        }
        child.wait().unwrap();
        if !theirs.is_empty() {
            assert!(is_gone(&theirs), "{theirs}");
        }
        // Same pid, another start time: a reused pid.
        let parts: Vec<&str> = me.split(':').collect();
        let reused = format!("{}:{}:{}:1", parts[0], parts[1], parts[2]);
        assert!(is_gone(&reused));
        // Another boot's sandboxes are gone; another namespace's are not ours to judge.
        assert!(is_gone(&format!(
            "other-boot:{}:{}:{}",
            parts[1], parts[2], parts[3]
        )));
        assert!(!is_gone(&format!("{}:4026530000:1:1", parts[0])));
        assert!(!is_gone("garbage"));
    }
}
