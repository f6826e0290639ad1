//! `smithers org retention` and `smithers retention run` as a user runs
//! them, on the embedded store in a temporary data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn smithers(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_USER")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(home: &Path, args: &[&str]) -> Value {
    let out = smithers(home, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_retention_is_set_by_an_admin_shown_and_applied() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let shown = json(home, &["org", "retention", "--json"]);
    assert_eq!(shown["logs"], "forever");
    assert_eq!(shown["logs_seconds"], Value::Null);
    assert_eq!(shown["model_history"], "destroyed when the run ends");
    // Nothing to drop while logs are kept for ever.
    let out = smithers(home, &["retention", "run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("keeps its logs forever"),
        "{}",
        text(&out.stdout)
    );

    let set = json(home, &["org", "retention", "--logs", "30d", "--json"]);
    assert_eq!(
        (set["logs"].as_str(), set["logs_seconds"].as_u64()),
        (Some("30days"), Some(2_592_000))
    );
    let out = smithers(home, &["org", "retention"]);
    assert!(
        text(&out.stdout).contains("kept for 30days"),
        "{}",
        text(&out.stdout)
    );

    // Refused plainly: under a day, or not a duration; a member may not.
    for bad in ["12h", "soon"] {
        let out = smithers(home, &["org", "retention", "--logs", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).contains("retention"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = smithers(home, &["users", "add", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(home, &["org", "retention", "--logs", "1d", "--as", "bob"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = smithers(home, &["retention", "run", "--as", "bob"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // A member reads it.
    let read = json(home, &["org", "retention", "--as", "bob", "--json"]);
    assert_eq!(read["logs"], "30days");

    // Everything is fresh: a pass drops nothing, and says so.
    let pass = json(home, &["retention", "run", "--dry-run", "--json"]);
    assert_eq!(pass["dry_run"], true);
    assert_eq!(
        (pass["runs"].as_u64(), pass["audit"].clone()),
        (Some(0), Value::Null)
    );
    let out = smithers(home, &["retention", "run"]);
    assert!(
        text(&out.stdout).contains("audit log: nothing due"),
        "{}",
        text(&out.stdout)
    );

    // The change is audited, and the log verifies.
    let events = json(
        home,
        &[
            "audit",
            "log",
            "--action",
            "organization.retention_changed",
            "--json",
        ],
    );
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["details"]["logs"]["to"], 2_592_000);
    let out = smithers(home, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
