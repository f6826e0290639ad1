//! `smithers init` and `smithers workflow check` as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn smithers(home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env("SECRET_ENCRYPTION_KEYS", KEYRING)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_USER")
        .env_remove("SMITHERS_NATS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_a_starter_that_checks_and_never_overwrites() {
    let home = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Cargo.toml"), "[package]\n").unwrap();
    let dir = repo.path().to_str().unwrap();
    let out = smithers(home.path(), &["init", dir], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let workflow = std::fs::read_to_string(repo.path().join("smithers.toml")).unwrap();
    assert!(workflow.contains("run = \"cargo test\""), "{workflow}");
    assert!(repo.path().join(".smithers/policy").exists());
    // What it wrote is valid, policy included.
    let out = smithers(home.path(), &["workflow", "check", dir, "--json"], b"");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["workflows"][0]["name"], "test");
    assert_eq!(report["workflows"][0]["policy"], ".smithers/policy");
    let out = smithers(
        home.path(),
        &["policy", "check", &format!("{dir}/.smithers/policy")],
        b"",
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // A second init changes nothing, and says why.
    std::fs::write(repo.path().join("smithers.toml"), "# mine\n").unwrap();
    let out = smithers(home.path(), &["init", dir], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exist"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("smithers.toml")).unwrap(),
        "# mine\n"
    );
    let out = smithers(home.path(), &["init", dir, "--force"], b"");
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(repo.path().join("smithers.toml"))
            .unwrap()
            .contains("[workflows.test]")
    );
    // Not a directory.
    let out = smithers(home.path(), &["init", "/nonexistent/repo"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reports_every_problem_with_its_place_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    std::fs::write(
        repo.path().join("smithers.toml"),
        "[workflows.w]\non = [\"schedule\"]\nschedule = \"0 25 * * *\"\negress = [\"*.com\"]\n\
         [[workflows.w.steps]]\nid = \"a\"\nrun = \"make\"\n\
         [[workflows.w.steps]]\nid = \"a\"\nrun = \"make\"\nif = \"c.failed\"\n",
    )
    .unwrap();
    let out = smithers(home.path(), &["workflow", "check", dir], b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for expected in [
        "smithers.toml:3:12: error: schedule \"0 25 * * *\" is not valid cron",
        "smithers.toml:4:11: error:",
        "smithers.toml:9:6: error: step id \"a\" is used twice (first at line 5)",
        "smithers.toml:11:6: error: `if` refers to step \"c\"",
        "4 problems in",
    ] {
        assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
    }
    // A missing file is a problem too, with what to do.
    let empty = tempfile::tempdir().unwrap();
    let out = smithers(
        home.path(),
        &["workflow", "check", empty.path().to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("smithers init"));
}

#[test]
fn check_knows_which_secrets_exist_when_there_is_a_store() {
    let home = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    std::fs::write(
        repo.path().join("smithers.toml"),
        "[workflows.w]\nsecrets = [{ name = \"DEPLOY_TOKEN\", env = \"prod\" }]\n\
         [[workflows.w.steps]]\nid = \"a\"\nrun = \"make\"\n",
    )
    .unwrap();
    // No store yet: not checked, and none is created by the check.
    let out = smithers(home.path(), &["workflow", "check", dir, "--json"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["secrets_checked"], false);
    assert!(!home.path().join("smithers.db").exists());
    // A store without the secret: the check says which and where to set it.
    let out = smithers(
        home.path(),
        &["secrets", "set", "OTHER", "--env", "prod"],
        b"some-other-value\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(home.path(), &["workflow", "check", dir], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "smithers.toml:2:21: error: secret DEPLOY_TOKEN does not exist in environment prod"
        ),
        "{}",
        text(&out.stderr)
    );
    // Once it exists (in that environment), the file is valid.
    let out = smithers(
        home.path(),
        &["secrets", "set", "DEPLOY_TOKEN", "--env", "prod"],
        b"deploy-token-value\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(home.path(), &["workflow", "check", dir, "--json"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["secrets_checked"], true);
    assert_eq!(report["workflows"][0]["secrets"][0]["name"], "DEPLOY_TOKEN");
}
