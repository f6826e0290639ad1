//! A reader that goes away (`smithers … | head -c1`) ends a command
//! quietly, as it ends any Unix filter: status 141 (128 + SIGPIPE) and
//! nothing on standard error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `smithers args` with standard output a pipe nobody reads: its read
/// end is closed before the command starts, so every write fails.
fn with_closed_output(home: &Path, args: &[&str], stdin: Stdio) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_USER")
        .env("TOKEN_FOR_TEST", "closed-output-secret")
        .stdin(stdin)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_output_ends_commands_quietly() {
    let home = tempfile::tempdir().unwrap();
    let policy = home.path().join("p");
    std::fs::write(&policy, "implementer read_file * -> allow\n").unwrap();
    let policy = policy.to_str().unwrap();
    // The first command creates the state (and says so on stderr).
    let first = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(["audit", "verify"])
        .env("SMITHERS_HOME", home.path())
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_USER")
        .output()
        .unwrap();
    assert!(first.status.success());
    for args in [
        &["runs", "list", "--json"][..],
        &["audit", "log", "--json"],
        &["policy", "check", policy],
        &[
            "policy",
            "eval",
            policy,
            "--subject",
            "implementer",
            "--action",
            "read_file",
            "--resource",
            "README.md",
            "--json",
        ],
    ] {
        let (code, stderr) = with_closed_output(home.path(), args, Stdio::null());
        assert_eq!(code, Some(141), "smithers {args:?}: {stderr}");
        assert!(stderr.is_empty(), "smithers {args:?}: {stderr}");
    }
    // The argument parser's help ends quietly too, with its own status.
    let (code, stderr) = with_closed_output(home.path(), &["--help"], Stdio::null());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn redact_ends_quietly_when_its_reader_goes_away() {
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("in");
    std::fs::write(&input, "a line of output\n".repeat(10_000)).unwrap();
    let (code, stderr) = with_closed_output(
        home.path(),
        &["redact", "--secrets-from-env", "TOKEN_FOR_TEST"],
        std::fs::File::open(&input).unwrap().into(),
    );
    assert_eq!(code, Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
