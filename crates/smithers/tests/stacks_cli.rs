//! `smithers stacks`: what it prints and how it exits (the rules behind it
//! are tested at the service layer, crates/smithers-app/tests/stacks.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::Path;
use std::process::{Command, Output};

use std::sync::Arc;

use smithers_store::{Runs, Store};
use smithers_test_support::signer;
use smithers_test_support::stacks::recorded_stack;

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

#[tokio::test]
async fn stacks_are_listed_shown_and_synced() {
    let home = tempfile::tempdir().unwrap();
    let out = smithers(home.path(), &["stacks", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no active or paused stacks"));

    let store = Store::open(home.path(), None).await.unwrap();
    let runs = Runs::new(store.clone(), Arc::new(signer()));
    let (id, run) = recorded_stack(
        &store,
        &runs,
        &signer(),
        3,
        &[
            ("smithers/parts/1", "Add part a"),
            ("smithers/parts/2", "Add part b"),
        ],
    )
    .await;
    drop(store);

    let out = smithers(home.path(), &["stacks", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["run"], run.as_str());
    assert_eq!(list[0]["members"][1]["pull"], 302);
    assert_eq!(list[0]["members"][1]["based_on"], "smithers/parts/1");

    let out = smithers(home.path(), &["stacks", "show", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("stack {id} of acme/api (active)")),
        "{shown}"
    );
    assert!(
        shown.contains("2. #302 smithers/parts/2 (open) onto smithers/parts/1"),
        "{shown}"
    );

    let out = smithers(home.path(), &["stacks", "sync", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let synced: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(synced["sync_requested"], true);

    let out = smithers(home.path(), &["stacks", "show", "stk_none"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no stack"),
        "{}",
        text(&out.stderr)
    );
    let out = smithers(home.path(), &["stacks", "list", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses a limit of 0");
}
