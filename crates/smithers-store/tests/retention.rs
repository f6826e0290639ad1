//! Retention on both backends: the audit log pruned behind a signed prune
//! base still verifies, names tampering with the base or with a kept
//! event, never prunes over tampering or past what NATS has not had, and
//! organizations are pruned independently.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_audit::{CheckpointSigner, Failure, Problem, Report};
use smithers_store::{AuditLog, Backend, Error, Store};
use smithers_test_support::audit::{event, start_log};
use smithers_test_support::{on_both_backends, signer};
use sqlx::Executor;

/// The time of test event `i` (see [`event`]).
fn at(i: i64) -> i64 {
    1_700_000_000_000_000 + i * 1_000_000
}

const NOW: i64 = 1_800_000_000_000_000;

async fn fill(store: &Store, org: &str, n: u64) {
    let (log, writer): (AuditLog, _) = start_log(store, 16);
    for i in 1..=n {
        log.append(event(org, i)).await.unwrap();
    }
    drop(log);
    writer.join().await;
}

async fn verify(store: &Store, org: &str) -> Result<Report, Failure> {
    store
        .audit()
        .verify(org, &[signer().verifying_key()])
        .await
        .unwrap()
}

async fn prune(
    store: &Store,
    org: &str,
    before: i64,
    dry_run: bool,
) -> Option<smithers_store::Pruned> {
    store
        .audit()
        .prune(
            org,
            before,
            &signer(),
            &[signer().verifying_key()],
            dry_run,
            NOW,
        )
        .await
        .unwrap()
}

async fn count(store: &Store, org: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE organization_id = $1")
            .bind(org)
            .fetch_one(store.pool())
            .await
            .unwrap();
    n
}

async fn bypass_triggers(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER audit_prune_bases_no_update; DROP TRIGGER audit_prune_bases_no_delete;"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; \
             ALTER TABLE audit_prune_bases DISABLE TRIGGER USER;"
        }
    };
    store.pool().execute(sql).await.unwrap();
}

on_both_backends!(
    a_pruned_log_still_verifies_and_orgs_are_pruned_apart,
    |db| {
        db.store
            .organizations()
            .create("acme", "Acme")
            .await
            .unwrap();
        fill(&db.store, "local", 120).await;
        fill(&db.store, "acme", 40).await;

        // A dry run says what would go and changes nothing.
        let would = prune(&db.store, "local", at(50), true).await.unwrap();
        assert_eq!((would.first, would.through, would.events), (1, 49, 49));
        assert_eq!(would.recorded_at, None);
        assert_eq!(count(&db.store, "local").await, 120);
        assert!(
            db.store
                .audit()
                .prune_base("local")
                .await
                .unwrap()
                .is_none()
        );

        let done = prune(&db.store, "local", at(50), false).await.unwrap();
        assert_eq!((done.first, done.through, done.events), (1, 49, 49));
        assert_eq!(done.recorded_at, Some(121));
        assert_eq!(done.held_back_from, None);
        // 71 kept and the audit.pruned event.
        assert_eq!(count(&db.store, "local").await, 72);
        let report = verify(&db.store, "local").await.unwrap();
        assert_eq!((report.events, report.pruned), (121, 49));
        let pruned = db
            .store
            .audit()
            .query(&smithers_store::AuditQuery {
                organization_id: "local".into(),
                action: Some("audit.pruned".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(pruned.len(), 1);
        let base = db.store.audit().prune_base("local").await.unwrap().unwrap();
        assert_eq!(pruned[0].event.details["through"], 49);
        assert_eq!(pruned[0].event.details["count"], 49);
        assert_eq!(
            pruned[0].event.details["root"],
            hex::encode(base.checkpoint.root)
        );
        assert_eq!(
            pruned[0].event.details["chain_head"],
            hex::encode(base.checkpoint.chain_head)
        );

        // The other organization was not touched.
        assert_eq!(count(&db.store, "acme").await, 40);
        assert_eq!(verify(&db.store, "acme").await.unwrap().pruned, 0);

        // Nothing more is due at the same cutoff; a later one goes on from
        // the base.
        assert!(prune(&db.store, "local", at(50), false).await.is_none());
        let next = prune(&db.store, "local", at(100), false).await.unwrap();
        assert_eq!((next.first, next.through), (50, 99));
        let report = verify(&db.store, "local").await.unwrap();
        assert_eq!((report.events, report.pruned), (122, 99));

        // Everything after the base is still append-only, and so are bases.
        for refused in [
            "DELETE FROM audit_events WHERE organization_id = 'local' AND seq = 110",
            "DELETE FROM audit_events WHERE organization_id = 'acme'",
            "UPDATE audit_events SET actor_id = 'x' WHERE organization_id = 'local' AND seq = 110",
            "DELETE FROM audit_prune_bases",
            "UPDATE audit_prune_bases SET tree_size = 120",
        ] {
            assert!(db.store.pool().execute(refused).await.is_err(), "{refused}");
        }

        // Everything older than now: all but the audit.pruned events
        // (sealed at NOW) go, and the log still verifies.
        let all = prune(&db.store, "local", NOW, false).await.unwrap();
        assert_eq!(all.through, 120);
        let report = verify(&db.store, "local").await.unwrap();
        assert_eq!((report.events, report.pruned), (123, 120));
    }
);

on_both_backends!(tampering_with_the_base_or_a_kept_event_is_named, |db| {
    fill(&db.store, "local", 60).await;
    prune(&db.store, "local", at(30), false).await.unwrap();
    verify(&db.store, "local").await.unwrap();
    bypass_triggers(&db.store).await;

    // A kept event changed.
    db.store
        .pool()
        .execute("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 40")
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert_eq!((failure.seq, failure.problem), (40, Problem::HashMismatch));
    db.store
        .pool()
        .execute("UPDATE audit_events SET actor_id = 'actor-1' WHERE seq = 40")
        .await
        .unwrap();
    verify(&db.store, "local").await.unwrap();

    // The base's root changed: its signature no longer holds.
    let base = db.store.audit().prune_base("local").await.unwrap().unwrap();
    let mut root = base.checkpoint.root;
    root[0] ^= 1;
    let set_root =
        |root: [u8; 32]| sqlx::query("UPDATE audit_prune_bases SET root = $1").bind(root.to_vec());
    set_root(root).execute(db.store.pool()).await.unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert!(
        matches!(failure.problem, Problem::BadPruneBase { tree_size: 29, .. }),
        "{failure}"
    );
    set_root(base.checkpoint.root)
        .execute(db.store.pool())
        .await
        .unwrap();

    // Its Merkle range changed: it no longer gives the signed root.
    let mut frontier = base.frontier.concat();
    frontier[5] ^= 1;
    sqlx::query("UPDATE audit_prune_bases SET frontier = $1")
        .bind(frontier)
        .execute(db.store.pool())
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert!(failure.to_string().contains("Merkle range"), "{failure}");
    sqlx::query("UPDATE audit_prune_bases SET frontier = $1")
        .bind(base.frontier.concat())
        .execute(db.store.pool())
        .await
        .unwrap();
    verify(&db.store, "local").await.unwrap();

    // An event put back under the base (as if never pruned): named.
    db.store
        .pool()
        .execute(
            "INSERT INTO audit_events (organization_id, seq, id, actor_type, actor_id, action, \
               resource_type, resource_id, details, ip_address, timestamp, prev_hash, hash) \
             SELECT organization_id, 7, 'forged-7', actor_type, actor_id, action, resource_type, \
               resource_id, details, ip_address, timestamp, prev_hash, hash \
             FROM audit_events WHERE seq = 40",
        )
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert_eq!(
        (failure.seq, failure.problem),
        (7, Problem::BelowPruneBase { tree_size: 29 })
    );
    db.store
        .pool()
        .execute("DELETE FROM audit_events WHERE seq = 7")
        .await
        .unwrap();
    verify(&db.store, "local").await.unwrap();

    // Kept events deleted right after the base: a gap.
    db.store
        .pool()
        .execute("DELETE FROM audit_events WHERE seq IN (30, 31)")
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert_eq!(
        (failure.seq, failure.problem),
        (30, Problem::Gap { found: 32 })
    );
});

on_both_backends!(a_checkpoint_passed_off_as_a_prune_base_is_refused, |db| {
    fill(&db.store, "local", 40).await;
    bypass_triggers(&db.store).await;
    // Someone with the database but not the key takes a real checkpoint,
    // stores it as a prune base and drops the events it covers.
    let checkpoint = db.store.audit().checkpoints("local").await.unwrap()[0].clone();
    assert_eq!(checkpoint.tree_size, 16);
    let mut acc = smithers_audit::merkle::Accumulator::new();
    for e in smithers_test_support::audit::all_events(&db.store)
        .await
        .iter()
        .take(16)
    {
        acc.push(e.leaf());
    }
    sqlx::query(
        "INSERT INTO audit_prune_bases (organization_id, tree_size, root, chain_head, timestamp, \
           key_id, signature, frontier) VALUES ('local', 16, $1, $2, $3, $4, $5, $6)",
    )
    .bind(checkpoint.root.to_vec())
    .bind(checkpoint.chain_head.to_vec())
    .bind(checkpoint.timestamp)
    .bind(&checkpoint.key_id)
    .bind(checkpoint.signature.to_vec())
    .bind(acc.frontier().concat())
    .execute(db.store.pool())
    .await
    .unwrap();
    db.store
        .pool()
        .execute("DELETE FROM audit_events WHERE seq <= 16")
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert!(
        matches!(failure.problem, Problem::BadPruneBase { tree_size: 16, .. }),
        "{failure}"
    );

    // A base signed with another key is refused the same way.
    let other = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
    let forged = smithers_audit::PruneBase::sign(&other, "local", &acc, checkpoint.chain_head, 1);
    sqlx::query("UPDATE audit_prune_bases SET key_id = $1, signature = $2")
        .bind(&forged.checkpoint.key_id)
        .bind(forged.checkpoint.signature.to_vec())
        .execute(db.store.pool())
        .await
        .unwrap();
    let failure = verify(&db.store, "local").await.unwrap_err();
    assert!(failure.to_string().contains("signature"), "{failure}");
});

on_both_backends!(nothing_is_pruned_over_tampering_or_past_nats, |db| {
    fill(&db.store, "local", 60).await;
    // NATS has had up to 20: the prune stops there.
    db.store
        .pool()
        .execute("INSERT INTO audit_publish_cursor (organization_id, published_seq) VALUES ('local', 20)")
        .await
        .unwrap();
    let held = prune(&db.store, "local", at(50), false).await.unwrap();
    assert_eq!((held.through, held.held_back_from), (20, Some(49)));
    verify(&db.store, "local").await.unwrap();

    // A changed event in the range due: refused, and nothing goes.
    bypass_triggers(&db.store).await;
    db.store
        .pool()
        .execute("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 25")
        .await
        .unwrap();
    db.store
        .pool()
        .execute("UPDATE audit_publish_cursor SET published_seq = 60")
        .await
        .unwrap();
    let before = count(&db.store, "local").await;
    let refused = db
        .store
        .audit()
        .prune(
            "local",
            at(50),
            &signer(),
            &[signer().verifying_key()],
            false,
            NOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Invalid(m) if m.contains("does not verify") && m.contains("sequence 25")),
        "{refused}"
    );
    assert_eq!(count(&db.store, "local").await, before);
});
