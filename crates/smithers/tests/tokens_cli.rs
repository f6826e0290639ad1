//! `smithers tokens`: what it prints and how it exits (the rules behind it
//! are tested at the service layer, crates/smithers-app/tests/tokens.rs).

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
fn a_token_is_shown_once_listed_without_its_secret_and_revoked_once() {
    let home = tempfile::tempdir().unwrap();
    let out = smithers(
        home.path(),
        &[
            "tokens",
            "create",
            "ci",
            "--scope",
            "runs:read,approvals:write",
            "--ttl",
            "12h",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The secret alone on stdout, for `TOKEN=$(smithers tokens create …)`.
    let secret = text(&out.stdout).trim_end().to_string();
    assert!(
        secret.starts_with("smt_") && !secret.contains(' '),
        "{secret}"
    );
    assert!(text(&out.stderr).contains("it is shown only now"));

    let out = smithers(home.path(), &["tokens", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains(&secret));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = &list[0];
    let keys: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "organization",
            "user",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_by"
        ]
    );
    assert_eq!(
        token["scopes"],
        serde_json::json!(["approvals:write", "runs:read"])
    );
    let id = token["id"].as_str().unwrap();

    let out = smithers(home.path(), &["tokens", "revoke", id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Twice: a conflict, exit 4.
    let out = smithers(home.path(), &["tokens", "revoke", id]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("is revoked already"));
    let out = smithers(home.path(), &["tokens", "list"]);
    assert!(
        text(&out.stdout).contains(" revoked "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bad_requests_exit_with_their_codes() {
    let home = tempfile::tempdir().unwrap();
    // An unknown scope names the known ones; nothing is made.
    let out = smithers(
        home.path(),
        &["tokens", "create", "ci", "--scope", "runs:all"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a scope (one of runs:read"));
    // Longer than allowed.
    let out = smithers(
        home.path(),
        &[
            "tokens",
            "create",
            "ci",
            "--scope",
            "runs:read",
            "--ttl",
            "400days",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Nobody by that name: exit 3.
    let out = smithers(home.path(), &["tokens", "list", "--as", "nobody"]);
    assert_eq!(out.status.code(), Some(3));
    let out = smithers(home.path(), &["tokens", "list", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}
