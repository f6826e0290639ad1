//! `smithers users`: what it prints and how it exits (the rules behind it
//! are tested at the service layer, crates/smithers-app/tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::Path;
use std::process::{Command, Output};

fn smithers(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_USER")
        .env_remove("SMITHERS_NATS_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn users_are_added_by_admins_and_listed() {
    let home = tempfile::tempdir().unwrap();
    let out = smithers(home.path(), &["users", "add", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "added alice to \"local\" as member\n");
    assert!(text(&out.stderr).contains("created the audit signing key"));

    // A member may not add users: exit 3, nothing added.
    let out = smithers(home.path(), &["users", "add", "mallory", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "error: adding users needs an admin of \"local\"; alice is a member\n"
    );
    // Twice: a conflict, exit 4.
    let out = smithers(home.path(), &["users", "add", "alice", "--role", "admin"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    // Nobody by that name: exit 3.
    let out = smithers(home.path(), &["users", "list", "--as", "eve"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("no user \"eve\""),
        "{}",
        text(&out.stderr)
    );

    let out = smithers(home.path(), &["users", "list", "--json", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("admin", "admin"), ("alice", "member")]);
    let out = smithers(home.path(), &["users", "list"]);
    let listing = text(&out.stdout);
    assert!(listing.starts_with("admin "), "{listing}");
    assert!(listing.contains("\nalice "), "{listing}");

    // One user.add event, by the admin, and the log verifies.
    let out = smithers(home.path(), &["audit", "log", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let adds: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.add")
        .map(|e| {
            (
                e["actor_id"].as_str().unwrap(),
                e["resource_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(adds, [("admin", "alice")]);
    let out = smithers(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn users_change_role_and_are_removed_by_admins_never_the_last_admin() {
    let home = tempfile::tempdir().unwrap();
    for name in ["alice", "bob", "carol"] {
        let out = smithers(home.path(), &["users", "add", name]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    let out = smithers(home.path(), &["users", "role", "alice", "admin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "alice is now admin in \"local\"; their sessions have ended\n"
    );
    // The same role again is a conflict: exit 4.
    let out = smithers(home.path(), &["users", "role", "alice", "admin"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("admin already"),
        "{}",
        text(&out.stderr)
    );
    // A member may not change roles (exit 3), nor remove anyone.
    let out = smithers(
        home.path(),
        &["users", "role", "alice", "member", "--as", "bob"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "error: changing and removing users needs an admin of \"local\"; bob is a member\n"
    );
    let out = smithers(home.path(), &["users", "remove", "alice", "--as", "bob"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // Nobody by that name: exit 2.
    let out = smithers(home.path(), &["users", "role", "zed", "admin"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no user \"zed\""),
        "{}",
        text(&out.stderr)
    );
    let out = smithers(home.path(), &["users", "remove", "zed"]);
    assert_eq!(out.status.code(), Some(2));
    // Not a role: clap's usage error, exit 2, nothing changed.
    let out = smithers(home.path(), &["users", "role", "bob", "owner"]);
    assert_eq!(out.status.code(), Some(2));

    // --json: the user, in the API's shape.
    let out = smithers(
        home.path(),
        &[
            "users", "role", "admin", "member", "--as", "alice", "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&user["name"], &user["role"], &user["organization"]),
        (
            &serde_json::json!("admin"),
            &serde_json::json!("member"),
            &serde_json::json!("local")
        )
    );
    // alice is the last admin now: neither demoted nor removed.
    for args in [
        &["users", "role", "alice", "member", "--as", "alice"][..],
        &["users", "remove", "alice", "--as", "alice"][..],
    ] {
        let out = smithers(home.path(), args);
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        assert!(
            text(&out.stderr).contains("last admin"),
            "{}",
            text(&out.stderr)
        );
    }

    let out = smithers(home.path(), &["users", "remove", "bob", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "removed bob from \"local\"; their sessions have ended and their API tokens are gone\n"
    );
    let out = smithers(
        home.path(),
        &["users", "remove", "carol", "--as", "alice", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["name"], "carol");
    assert_eq!(user["role"], "member");

    let out = smithers(home.path(), &["users", "list", "--json", "--as", "alice"]);
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("admin", "member"), ("alice", "admin")]);

    // Each change recorded, by whom, and the log verifies.
    let out = smithers(home.path(), &["audit", "log", "--json", "--as", "alice"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.role_changed" || e["action"] == "user.removed")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor_id"].as_str().unwrap(),
                e["resource_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("user.role_changed", "admin", "alice"),
            ("user.role_changed", "alice", "admin"),
            ("user.removed", "alice", "bob"),
            ("user.removed", "alice", "carol"),
        ]
    );
    let out = smithers(home.path(), &["audit", "verify", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
