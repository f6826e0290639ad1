//! Git for tests that build repositories: commits under a fixed author, so
//! that no test depends on the machine's git configuration.

use std::path::Path;
use std::process::Command;

/// Runs `git args` in `dir` as author `t <t@example.com>` and returns what
/// it printed, trimmed; a failing git is the test's failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether commit `ancestor` is `descendant` or one of its ancestors in
/// the repository at `dir` (`false` too when either is unknown).
pub fn is_ancestor(dir: &Path, ancestor: &str, descendant: &str) -> bool {
    Command::new("git")
        .args(["merge-base", "--is-ancestor", ancestor, descendant])
        .current_dir(dir)
        .output()
        .is_ok_and(|out| out.status.success())
}
