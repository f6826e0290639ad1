//! `smithers audit …` and `policy eval --audit` as a user runs them, on the
//! embedded store in a temporary data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use smithers_audit::merkle::{leaf_hash, verify_inclusion};
use smithers_audit::{AuditEvent, Checkpoint};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies/default.policy")
}

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

fn audited_eval(home: &Path, subject: &str, resource: &str) -> Output {
    let policy = example();
    smithers(
        home,
        &[
            "policy",
            "eval",
            policy.to_str().unwrap(),
            "--subject",
            subject,
            "--action",
            "write_file",
            "--resource",
            resource,
            "--audit",
            "--json",
        ],
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn seeded_home(n: usize) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    for i in 0..n {
        let o = audited_eval(
            home.path(),
            if i % 2 == 0 {
                "reviewer"
            } else {
                "implementer"
            },
            &format!("src/f{i}.rs"),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    home
}

#[test]
fn audited_decisions_land_in_the_log_and_verify() {
    let home = seeded_home(4);
    let o = smithers(home.path(), &["audit", "log", "--json"]);
    let events: Value = serde_json::from_slice(&o.stdout).unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["action"], "capability_check");
    assert_eq!(events[0]["details"]["decision"]["decision"], "deny");
    assert_eq!(events[1]["details"]["decision"]["decision"], "ask");
    assert_eq!(events[3]["seq"], 4);
    let o = smithers(home.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "verified 4 events, 4 checkpoints\n");
    let o = smithers(
        home.path(),
        &["audit", "log", "--since", "1h", "--actor", "nobody"],
    );
    assert!(text(&o.stdout).is_empty());
    let o = smithers(home.path(), &["audit", "log", "--since", "yesterday-ish"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("neither an RFC 3339 time nor a duration"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_tampered_row_fails_verify_naming_its_sequence_number() {
    let home = seeded_home(3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}", home.path().join("smithers.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("DROP TRIGGER audit_events_no_update")
            .await
            .unwrap();
        conn.execute("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 2")
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let o = smithers(home.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("sequence 2: hash mismatch"), "{err}");
    let o = smithers(home.path(), &["audit", "verify", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["intact"].as_bool(), v["organizations"][0]["seq"].as_u64()),
        (Some(false), Some(2))
    );
}

#[test]
fn a_failed_checkpoint_is_logged_not_lost() {
    let home = seeded_home(1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}", home.path().join("smithers.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute(
            "CREATE TRIGGER refuse_checkpoints BEFORE INSERT ON audit_checkpoints \
             BEGIN SELECT RAISE(FAIL, 'checkpoints refused here'); END",
        )
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
    // The event is committed; the checkpoint after it fails, and says so.
    let o = audited_eval(home.path(), "implementer", "src/a.rs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("ERROR"), "{err}");
    assert!(err.contains("final audit checkpoint failed"), "{err}");
    assert!(err.contains("checkpoints refused here"), "{err}");
    // As one JSON object a line for a log collector.
    let mut args = vec!["--log-format", "json"];
    let policy = example();
    args.extend([
        "policy",
        "eval",
        policy.to_str().unwrap(),
        "--subject",
        "implementer",
        "--action",
        "write_file",
        "--resource",
        "src/b.rs",
        "--audit",
    ]);
    let o = smithers(home.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let line = text(&o.stderr)
        .lines()
        .find(|l| l.starts_with('{'))
        .map(str::to_string)
        .unwrap_or_default();
    let event: Value = serde_json::from_str(&line).unwrap_or_default();
    assert_eq!(event["level"], "ERROR", "{}", text(&o.stderr));
    assert_eq!(event["fields"]["message"], "final audit checkpoint failed");
    assert_eq!(event["target"], "smithers_store::appender");
    // Both events are in the log, which verifies (unsigned, but whole).
    let o = smithers(home.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn exported_lines_verify_on_their_own() {
    let home = seeded_home(5);
    let o = smithers(home.path(), &["audit", "pubkey", "--json"]);
    let key: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut public = [0u8; 32];
    hex::decode_to_slice(key["public_key"].as_str().unwrap(), &mut public).unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let o = smithers(
        home.path(),
        &["audit", "export", "--format", "jsonl", "--since", "2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let lines: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let seq = line["seq"].as_u64().unwrap();
        let event: AuditEvent = serde_json::from_value(line.clone()).unwrap();
        let leaf = leaf_hash(&event.canonical_bytes(seq));
        assert_eq!(hex::encode(leaf), line["leaf"].as_str().unwrap());
        let proof = &line["proof"];
        let checkpoint: Checkpoint = serde_json::from_value(proof["checkpoint"].clone()).unwrap();
        assert!(checkpoint.signature_is_valid(&public));
        let inclusion: Vec<[u8; 32]> = proof["inclusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(h.as_str().unwrap(), &mut b).unwrap();
                b
            })
            .collect();
        assert!(
            verify_inclusion(
                &leaf,
                seq - 1,
                checkpoint.tree_size,
                &inclusion,
                &checkpoint.root
            ),
            "seq {seq}"
        );
    }
}

#[test]
fn prove_and_pubkey() {
    let home = seeded_home(3);
    let o = smithers(home.path(), &["audit", "prove", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(signature valid)"),
        "{}",
        text(&o.stdout)
    );
    let o = smithers(home.path(), &["audit", "prove", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("has no event 9"),
        "{}",
        text(&o.stderr)
    );
    let o = smithers(home.path(), &["audit", "pubkey"]);
    assert!(
        text(&o.stdout).starts_with("ed25519 "),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_decision_that_cannot_be_audited_is_not_given() {
    let home = tempfile::tempdir().unwrap();
    let policy = example();
    let o = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args([
            "policy",
            "eval",
            policy.to_str().unwrap(),
            "--subject",
            "reviewer",
            "--action",
            "read_file",
            "--resource",
            "x",
            "--audit",
        ])
        .env("SMITHERS_HOME", home.path())
        .env(
            "SMITHERS_DATABASE_URL",
            "postgres://nobody:nothing@127.0.0.1:1/none",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stdout).is_empty(),
        "no decision without its audit record: {}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("PostgreSQL"),
        "{}",
        text(&o.stderr)
    );
}

/// The keys of a JSON object, in the order they were written.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

const EVENT_KEYS: [&str; 14] = [
    "seq",
    "id",
    "organization_id",
    "actor_type",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "details",
    "ip_address",
    "timestamp",
    "time",
    "prev_hash",
    "hash",
];

const CHECKPOINT_KEYS: [&str; 7] = [
    "organization_id",
    "tree_size",
    "root",
    "chain_head",
    "timestamp",
    "key_id",
    "signature",
];

#[test]
fn json_shapes_keep_their_names_and_order() {
    let home = seeded_home(2);
    let o = smithers(home.path(), &["audit", "log", "--json"]);
    let events: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys(&events[0]), EVENT_KEYS);
    assert!(events[0]["actor_type"].is_string());
    assert_eq!(events[0]["ip_address"], Value::Null);
    assert!(events[0]["timestamp"].is_i64());
    assert!(events[0]["time"].as_str().unwrap().ends_with('Z'));

    let o = smithers(home.path(), &["audit", "export"]);
    let line: Value = serde_json::from_str(text(&o.stdout).lines().next().unwrap()).unwrap();
    let mut expected = EVENT_KEYS.to_vec();
    expected.extend(["leaf", "proof"]);
    assert_eq!(keys(&line), expected);
    let proof_keys = ["tree_size", "leaf_index", "inclusion", "checkpoint"];
    assert_eq!(keys(&line["proof"]), proof_keys);
    assert_eq!(keys(&line["proof"]["checkpoint"]), CHECKPOINT_KEYS);

    let o = smithers(home.path(), &["audit", "prove", "1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let proof: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut expected = proof_keys.to_vec();
    expected.extend(["seq", "leaf", "event"]);
    assert_eq!(keys(&proof), expected);
    assert_eq!(keys(&proof["event"]), EVENT_KEYS);

    let o = smithers(home.path(), &["audit", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys(&report), ["intact", "organizations"]);
    assert_eq!(
        keys(&report["organizations"][0]),
        ["organization", "intact", "events", "checkpoints", "root"]
    );

    let o = smithers(home.path(), &["audit", "pubkey", "--json"]);
    let key: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys(&key), ["key_id", "algorithm", "public_key"]);
    assert_eq!(key["algorithm"], "ed25519");
}

#[test]
fn only_an_admin_reads_the_log() {
    let home = seeded_home(1);
    let o = smithers(home.path(), &["users", "add", "bob"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for args in [
        &["audit", "log", "--as", "bob"][..],
        &["audit", "verify", "--as", "bob"],
        &["audit", "export", "--as", "bob"],
        &["audit", "prove", "1", "--as", "bob"],
    ] {
        let o = smithers(home.path(), args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stdout).is_empty(), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.starts_with("error: ") && err.contains("needs an admin"),
            "{args:?}: {err}"
        );
    }
    // Nobody by that name: not allowed either.
    let o = smithers(home.path(), &["audit", "log", "--as", "nobody"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    // The public key is public.
    let o = smithers(home.path(), &["audit", "pubkey", "--as", "bob"]);
    assert_eq!(o.status.code(), Some(2), "pubkey takes no --as");
    let o = smithers(home.path(), &["audit", "pubkey"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}
