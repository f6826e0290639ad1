//! The audit log on both backends: appends, group commit, checkpoints,
//! append-only triggers, and tampering by someone with database access.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::collections::BTreeSet;
use std::time::Duration;

use smithers_audit::{Failure, Problem};
use smithers_store::{AuditLog, AuditLogConfig, AuditQuery, Backend, Role, Store};
use smithers_test_support::audit::{all_events, checkpoint_sizes, event, fill, start_log};
use smithers_test_support::{on_both_backends, signer};
use sqlx::Executor;

async fn verify(store: &Store) -> Result<u64, Failure> {
    store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap()
        .map(|r| r.events)
}

async fn failure(store: &Store) -> (u64, Problem) {
    let f = verify(store).await.expect_err("tampering must be detected");
    (f.seq, f.problem)
}

/// Removes the append-only protection the way an attacker with the
/// database's owner rights would.
async fn bypass_triggers(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
        }
    };
    store.pool().execute(sql).await.unwrap();
}

on_both_backends!(opening_twice_is_idempotent, |db| {
    let again = db.reopen().await;
    let orgs = again.organizations().list().await.unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["local"]
    );
    let users = again.organizations().users("local").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].role),
        ("admin", Role::Admin)
    );
    again.organizations().create("acme", "Acme").await.unwrap();
    assert!(again.organizations().create("acme", "Acme").await.is_err());
    assert!(again.organizations().create("bad id", "x").await.is_err());
    again
        .organizations()
        .add_user("acme", "alice", Role::Member)
        .await
        .unwrap();
    assert!(
        again
            .organizations()
            .add_user("nope", "bob", Role::Member)
            .await
            .is_err()
    );
    again.close().await;
});

on_both_backends!(concurrent_appends_get_a_gap_free_chain, |db| {
    let store = &db.store;
    let (log, writer) = start_log(store, 16);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25u64 {
                seqs.push(log.append(event("local", t * 100 + i)).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    drop(log);
    writer.join().await;
    assert_eq!(all, (1..=200).collect::<BTreeSet<u64>>());
    let report = store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.events, 200);
    let sizes = checkpoint_sizes(store).await;
    assert!(
        sizes.len() >= 12,
        "a checkpoint at least every 16 events: {sizes:?}"
    );
    assert_eq!(
        sizes.last(),
        Some(&200),
        "the writer checkpoints what is pending when it stops"
    );
    // What was read back is exactly what was written.
    let events = all_events(store).await;
    assert_eq!(events.len(), 200);
});

on_both_backends!(bad_events_are_refused_alone, |db| {
    let store = &db.store;
    let (log, writer) = start_log(store, 100);
    let mut empty = event("local", 1);
    empty.action = " ".into();
    assert!(log.append(empty).await.is_err());
    assert!(log.append(event("nowhere", 2)).await.is_err());
    assert_eq!(log.append(event("local", 3)).await.unwrap().seq, 1);
    drop(log);
    writer.join().await;
    assert_eq!(verify(store).await, Ok(1));
});

on_both_backends!(checkpoints_every_n_events_or_t_seconds, |db| {
    let store = &db.store;
    let (log, writer) = AuditLog::start(
        store.clone(),
        signer(),
        AuditLogConfig {
            checkpoint_every: 10,
            checkpoint_interval: Duration::from_millis(300),
            max_batch: 1,
        },
    );
    for i in 1..=25 {
        log.append(event("local", i)).await.unwrap();
    }
    assert_eq!(checkpoint_sizes(store).await[..2], [10, 20]);
    // No more events: the interval passes and the rest is checkpointed.
    let mut waited = Duration::ZERO;
    while checkpoint_sizes(store).await.last() != Some(&25) && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(checkpoint_sizes(store).await.last(), Some(&25));
    drop(log);
    writer.join().await;
    assert_eq!(verify(store).await, Ok(25));
});

on_both_backends!(queries_filter_the_log, |db| {
    let store = &db.store;
    fill(store, 30, 10).await;
    let q = |f: fn(&mut AuditQuery)| {
        let mut query = AuditQuery {
            organization_id: "local".into(),
            ..Default::default()
        };
        f(&mut query);
        let store = store.clone();
        async move { store.audit().query(&query).await.unwrap() }
    };
    assert_eq!(q(|q| q.action = Some("secret.read".into())).await.len(), 6);
    assert_eq!(q(|q| q.actor_id = Some("actor-0".into())).await.len(), 10);
    let since = q(|q| q.since = Some(1_700_000_000_000_000 + 21 * 1_000_000)).await;
    assert_eq!(since.first().map(|e| e.seq), Some(21));
    let page = q(|q| {
        q.after_seq = Some(5);
        q.limit = Some(3);
    })
    .await;
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7, 8]);
});

on_both_backends!(the_database_refuses_updates_and_deletes, |db| {
    let store = &db.store;
    fill(store, 5, 5).await;
    for sql in [
        "UPDATE audit_events SET action = 'nothing' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 5",
        "UPDATE audit_checkpoints SET key_id = 'x'",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = store.pool().execute(sql).await.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if store.backend() == Backend::Postgres {
        let err = store
            .pool()
            .execute("TRUNCATE audit_events")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
    }
    assert_eq!(verify(store).await, Ok(5));
});

/// Seals 30 events (a checkpoint every 10), removes the triggers, runs the
/// attacker's statements, and returns what `verify` names.
async fn tampered(store: &Store, statements: &[String]) -> (u64, Problem) {
    fill(store, 30, 10).await;
    bypass_triggers(store).await;
    for sql in statements {
        store.pool().execute(sql.as_str()).await.unwrap();
    }
    failure(store).await
}

fn sql(statements: &[&str]) -> Vec<String> {
    statements.iter().map(ToString::to_string).collect()
}

on_both_backends!(a_changed_field_is_named, |db| {
    let edit = sql(&["UPDATE audit_events SET details = '{\"decision\":\"deny\"}' WHERE seq = 17"]);
    assert_eq!(
        tampered(&db.store, &edit).await,
        (17, Problem::HashMismatch)
    );
});

on_both_backends!(a_deleted_row_is_named, |db| {
    let edit = sql(&["DELETE FROM audit_events WHERE seq = 12"]);
    assert_eq!(
        tampered(&db.store, &edit).await,
        (12, Problem::Gap { found: 13 })
    );
});

on_both_backends!(an_inserted_row_is_named, |db| {
    // Make room at 15 (from the top down, so the key stays unique), then
    // slip in a row that copies 14's content under a new id.
    let mut edit: Vec<String> = (15..=30)
        .rev()
        .map(|seq| format!("UPDATE audit_events SET seq = seq + 1 WHERE seq = {seq}"))
        .collect();
    edit.push(
        "INSERT INTO audit_events (organization_id, seq, id, actor_type, actor_id, action, resource_type, resource_id, \
         details, ip_address, timestamp, prev_hash, hash) \
         SELECT organization_id, 15, '01900000-0000-7000-8000-000000000000', actor_type, actor_id, action, \
         resource_type, resource_id, details, ip_address, timestamp, hash, prev_hash FROM audit_events WHERE seq = 14"
            .to_string(),
    );
    assert_eq!(
        tampered(&db.store, &edit).await,
        (15, Problem::HashMismatch)
    );
});

on_both_backends!(swapped_rows_are_named, |db| {
    // Exchange the numbers of rows 8 and 9, so they come back in the other order.
    let edit = sql(&[
        "UPDATE audit_events SET seq = 1000 WHERE seq = 8",
        "UPDATE audit_events SET seq = 8 WHERE seq = 9",
        "UPDATE audit_events SET seq = 9 WHERE seq = 1000",
    ]);
    assert_eq!(tampered(&db.store, &edit).await, (8, Problem::ChainBroken));
});

on_both_backends!(a_truncated_tail_is_named, |db| {
    let edit = sql(&["DELETE FROM audit_events WHERE seq > 25"]);
    let expected = Problem::Truncated {
        tree_size: 30,
        events: 25,
    };
    assert_eq!(tampered(&db.store, &edit).await, (26, expected));
});

on_both_backends!(an_unreadable_row_is_named, |db| {
    let edit = sql(&["UPDATE audit_events SET details = 'not json' WHERE seq = 4"]);
    let (seq, problem) = tampered(&db.store, &edit).await;
    assert_eq!(seq, 4);
    assert!(matches!(problem, Problem::Unreadable { .. }), "{problem:?}");
});

on_both_backends!(a_forged_checkpoint_is_named, |db| {
    let edit = match db.store.backend() {
        Backend::Sqlite => "UPDATE audit_checkpoints SET root = zeroblob(32) WHERE tree_size = 20",
        Backend::Postgres => {
            "UPDATE audit_checkpoints SET root = decode(repeat('00', 32), 'hex') WHERE tree_size = 20"
        }
    };
    let expected = Problem::BadSignature { tree_size: 20 };
    assert_eq!(tampered(&db.store, &sql(&[edit])).await, (20, expected));
});

#[tokio::test]
async fn the_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("home");
    let resolved = smithers_store::resolve_data_dir(Some(&dir), Some("/ignored")).unwrap();
    assert_eq!(resolved.path(), dir);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let from_env = parent.path().join("env-home");
    let resolved =
        smithers_store::resolve_data_dir(None, Some(from_env.to_str().unwrap())).unwrap();
    assert_eq!(resolved.path(), from_env);
}

#[test]
fn the_signing_key_lives_outside_the_database() {
    use smithers_store::{KeySource, load_signing_key, resolve_data_dir};
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = resolve_data_dir(Some(parent.path()), None).unwrap();
    let (first, source) = load_signing_key(&dir, None).unwrap();
    let KeySource::Created(path) = source else {
        panic!("{source:?}")
    };
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (again, source) = load_signing_key(&dir, None).unwrap();
    assert!(matches!(source, KeySource::File(_)));
    assert_eq!(first.key_id(), again.key_id());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = load_signing_key(&dir, None).unwrap_err().to_string();
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );
    let seed = "2a".repeat(32);
    let (from_env, source) = load_signing_key(&dir, Some(&seed)).unwrap();
    assert_eq!(source, KeySource::Environment);
    assert_eq!(from_env.key_id(), signer().key_id());
    let err = load_signing_key(&dir, Some("not-hex-and-secret"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SMITHERS_AUDIT_SIGNING_KEY") && !err.contains("not-hex-and-secret"),
        "{err}"
    );
}

on_both_backends!(
    an_organizations_first_events_written_at_once_all_land,
    |db| {
        // No event yet, so no chain head: every writer may find none.
        db.store
            .organizations()
            .create("fresh", "Fresh")
            .await
            .unwrap();
        let signer = std::sync::Arc::new(signer());
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = db.store.clone();
            let signer = signer.clone();
            writes.spawn(async move {
                store
                    .sessions()
                    .record_failure(&signer, "fresh", None, serde_json::json!({"attempt": i}))
                    .await
            });
        }
        while let Some(written) = writes.join_next().await {
            written.unwrap().unwrap();
        }
        let events = db
            .store
            .audit()
            .query(&AuditQuery {
                organization_id: "fresh".into(),
                action: None,
                actor_id: None,
                since: None,
                after_seq: None,
                limit: None,
            })
            .await
            .unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
    }
);
