//! Retention through the service on both backends: a 30-day organization
//! and a two-year one are pruned independently at an injected time, each
//! log still verifies and still proves its kept events, and only an admin
//! sets or applies a retention.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role};
use smithers_app::{App, Config, Principal, Via};
use smithers_audit::merkle::verify_inclusion;
use smithers_store::Role as StoreRole;
use smithers_test_support::{TestDb, on_both_backends};

const DAY: i64 = 86_400 * 1_000_000;

async fn app(db: &TestDb) -> App {
    App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        signing_key: Some(hex::encode([42u8; 32])),
        ..Config::default()
    })
    .await
    .unwrap()
}

/// Organization `org` with an admin `alice` and a member `bob`, as
/// principals.
async fn organization(app: &App, org: &str) -> (Principal, Principal) {
    let orgs = app.store().organizations();
    orgs.create(org, org).await.unwrap();
    orgs.add_user(org, "alice", StoreRole::Admin).await.unwrap();
    orgs.add_user(org, "bob", StoreRole::Member).await.unwrap();
    (
        app.principal(org, "alice", Via::Cli).await.unwrap(),
        app.principal(org, "bob", Via::Cli).await.unwrap(),
    )
}

fn decode(h: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    hex::decode_to_slice(h, &mut b).unwrap();
    b
}

on_both_backends!(pro_and_enterprise_are_pruned_apart_and_still_verify, |db| {
    let app = app(db).await;
    let (pro, pro_member) = organization(&app, "pro").await;
    let (ent, _) = organization(&app, "ent").await;
    let retention = app.retention();

    // Only an admin sets or applies a retention; a member reads it.
    let refused = retention.set(&pro_member, Some(86_400)).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Forbidden);
    let refused = retention.run(&pro_member, true).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Forbidden);
    let read = retention.get(&pro_member).await.unwrap();
    assert_eq!((read.logs.as_str(), read.logs_seconds), ("forever", None));
    assert_eq!(read.model_history, "destroyed when the run ends");

    let set = retention.set(&pro, Some(30 * 86_400)).await.unwrap();
    assert_eq!(set.logs, "30days");
    let set = retention
        .set(&ent, smithers_app::parse_retention("2y").unwrap())
        .await
        .unwrap();
    assert_eq!(set.logs, "2years");
    for (principal, n) in [(&pro, 20), (&ent, 20)] {
        for i in 0..n {
            app.users()
                .add(principal, &format!("user{i}"), Role::Member)
                .await
                .unwrap();
        }
    }

    // 31 days on: the Pro organization's log goes, the Enterprise one's
    // stays. A dry run first changes nothing.
    let later = smithers_store::now_micros() + 31 * DAY;
    let dry = retention.run_at("pro", later, true).await.unwrap();
    let planned = dry.audit.clone().unwrap();
    assert_eq!(planned.recorded_at, None);
    assert!(
        app.store()
            .audit()
            .prune_base("pro")
            .await
            .unwrap()
            .is_none()
    );
    let done = retention.run_at("pro", later, false).await.unwrap();
    let pruned = done.audit.unwrap();
    assert_eq!(
        (pruned.first, pruned.through),
        (planned.first, planned.through)
    );
    // The retention change and the 20 users added.
    assert_eq!((pruned.first, pruned.events), (1, 21), "{pruned:?}");
    let kept = retention.run_at("ent", later, false).await.unwrap();
    assert_eq!(kept.logs, "2years");
    assert_eq!(kept.audit, None);

    // Each log verifies; the Pro one from its prune base.
    let pro_check = app.audit().verify(&pro, &[]).await.unwrap();
    assert!(pro_check.intact, "{pro_check:?}");
    assert_eq!(pro_check.organizations[0].pruned, Some(pruned.through));
    let ent_check = app.audit().verify(&ent, &[]).await.unwrap();
    assert!(ent_check.intact, "{ent_check:?}");
    assert_eq!(ent_check.organizations[0].pruned, None);

    // A kept event still proves against a signed root; a pruned one says
    // it was dropped.
    // (The prune's own transaction signed a checkpoint over its event.)
    let last = pruned.recorded_at.unwrap();
    let proof = app.audit().prove(&pro, last).await.unwrap();
    assert_eq!(proof.problem, None);
    let path: Vec<[u8; 32]> = proof
        .proof
        .proof
        .inclusion
        .iter()
        .map(|h| decode(h))
        .collect();
    assert!(verify_inclusion(
        &decode(&proof.proof.leaf),
        last - 1,
        proof.proof.proof.tree_size,
        &path,
        &decode(&proof.proof.proof.checkpoint.root),
    ));
    let gone = app.audit().prove(&pro, 1).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
    assert!(gone.message.contains("dropped by retention"), "{gone}");
    // An export starts at the first kept event, each with its proof.
    let mut export = app.audit().export(&pro, 1).await.unwrap();
    let mut lines = Vec::new();
    while let Some(page) = export.next_page().await.unwrap() {
        lines.extend(page);
    }
    assert_eq!(lines[0].event.seq, pruned.through + 1);
    assert!(lines.iter().all(|l| l.leaf.is_some()));
    assert!(lines.last().unwrap().proof.is_some());

    // The change of retention is in the log that keeps it.
    let events = app
        .audit()
        .log(
            &ent,
            &smithers_app::AuditFilter {
                action: Some("organization.retention_changed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].details["logs"]["to"], 63_115_200);
});
