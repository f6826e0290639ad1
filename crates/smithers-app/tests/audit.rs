//! The audit service on both backends: only an organization's admins read,
//! verify, prove and export its log; an intact log verifies and its events
//! prove against signed checkpoints; a tampered one is reported, not
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role};
use smithers_app::{App, AuditFilter, Config, Principal, Via};
use smithers_audit::merkle::verify_inclusion;
use smithers_store::{AuditLog, AuditLogConfig, Backend, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends, signer};
use sqlx::Executor;

/// The app, signing with the test key, and the default organization's admin.
async fn app(db: &TestDb) -> (App, Principal) {
    let app = App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        signing_key: Some(hex::encode([42u8; 32])),
        ..Config::default()
    })
    .await
    .unwrap();
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    (app, admin)
}

/// Signs a checkpoint over every organization's events so far, as a
/// process's audit log does when it closes.
async fn checkpoint(app: &App) {
    let (log, writer) = AuditLog::start(app.store().clone(), signer(), AuditLogConfig::default());
    drop(log);
    writer.join().await;
}

/// Adds users `names` to the principal's organization: one `user.add`
/// event each.
async fn add_users(app: &App, by: &Principal, names: &[&str]) {
    for name in names {
        app.users().add(by, name, Role::Member).await.unwrap();
    }
}

fn decode(h: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    hex::decode_to_slice(h, &mut b).unwrap();
    b
}

on_both_backends!(only_an_admin_of_the_organization_reads_its_log, |db| {
    let (app, admin) = app(db).await;
    add_users(&app, &admin, &["bob"]).await;
    checkpoint(&app).await;
    let bob = app
        .principal(DEFAULT_ORGANIZATION, "bob", Via::Cli)
        .await
        .unwrap();
    let audit = app.audit();
    let refusals = [
        audit
            .log(&bob, &AuditFilter::default())
            .await
            .map(|_| ())
            .unwrap_err(),
        audit.export(&bob, 1).await.map(|_| ()).unwrap_err(),
        audit.prove(&bob, 1).await.map(|_| ()).unwrap_err(),
        audit.verify(&bob, &[]).await.map(|_| ()).unwrap_err(),
        audit.verify_all(&bob, &[]).await.map(|_| ()).unwrap_err(),
        audit
            .publish(&bob, "nats://127.0.0.1:1")
            .await
            .map(|_| ())
            .unwrap_err(),
    ];
    for e in &refusals {
        assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
        assert!(e.message.contains("bob is a member"), "{e}");
    }

    // Another organization with a log of its own, and its admin.
    let orgs = app.store().organizations();
    orgs.create("acme", "Acme").await.unwrap();
    orgs.add_user("acme", "ann", smithers_store::Role::Admin)
        .await
        .unwrap();
    let ann = app.principal("acme", "ann", Via::Cli).await.unwrap();
    add_users(&app, &ann, &["carl"]).await;
    // Each admin reads their own organization's log only.
    let acme = audit.log(&ann, &AuditFilter::default()).await.unwrap();
    assert_eq!(
        acme.iter()
            .map(|e| (e.organization_id.as_str(), e.resource_id.as_str()))
            .collect::<Vec<_>>(),
        [("acme", "carl")]
    );
    let local = audit.log(&admin, &AuditFilter::default()).await.unwrap();
    assert!(
        local
            .iter()
            .all(|e| e.organization_id == DEFAULT_ORGANIZATION)
    );
    // Every organization's log is more than either admin may verify.
    let e = audit.verify_all(&admin, &[]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.message.contains("\"acme\""), "{e}");
    let e = audit.verify_all(&ann, &[]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(
        e.message.contains(&format!("{DEFAULT_ORGANIZATION:?}")),
        "{e}"
    );
    // One organization at a time, each by its admin.
    assert!(audit.verify(&admin, &[]).await.unwrap().intact);
    let report = audit.verify(&ann, &[]).await.unwrap();
    assert_eq!(
        (report.intact, report.organizations[0].organization.as_str()),
        (true, "acme")
    );
    app.close().await;
});

on_both_backends!(an_intact_log_verifies_and_its_events_prove, |db| {
    let (app, admin) = app(db).await;
    let audit = app.audit();
    let before = audit
        .log(&admin, &AuditFilter::default())
        .await
        .unwrap()
        .len() as u64;
    add_users(&app, &admin, &["u1", "u2", "u3"]).await;
    checkpoint(&app).await;
    add_users(&app, &admin, &["u4", "u5"]).await;
    checkpoint(&app).await;
    add_users(&app, &admin, &["u6"]).await;
    let total = before + 6;

    let report = audit.verify_all(&admin, &[]).await.unwrap();
    assert!(report.intact, "{report:?}");
    let local = &report.organizations[0];
    assert_eq!(
        (local.organization.as_str(), local.events, local.checkpoints),
        (DEFAULT_ORGANIZATION, Some(total), Some(2))
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        json.starts_with(&format!(
            "{{\"intact\":true,\"organizations\":[{{\"organization\":\"{DEFAULT_ORGANIZATION}\",\"intact\":true,\"events\":{total},\"checkpoints\":2,\"root\":\""
        )),
        "{json}"
    );

    // The log, filtered.
    let filter = AuditFilter {
        action: Some("user.add".into()),
        limit: Some(2),
        ..AuditFilter::default()
    };
    let two = audit.log(&admin, &filter).await.unwrap();
    assert_eq!(
        two.iter()
            .map(|e| e.resource_id.as_str())
            .collect::<Vec<_>>(),
        ["u1", "u2"]
    );

    // An event proves against the first checkpoint covering it, with the
    // application's key.
    let key = app.audit().public_key();
    assert_eq!(
        key.public_key,
        hex::encode(signer().verifying_key().as_bytes())
    );
    let seq = before + 2;
    let checked = audit.prove(&admin, seq).await.unwrap();
    assert_eq!(checked.problem, None);
    let p = &checked.proof;
    assert_eq!(
        (p.seq, p.proof.tree_size, p.proof.leaf_index),
        (seq, before + 3, seq - 1)
    );
    assert_eq!(p.event.resource_id, "u2");
    let path: Vec<[u8; 32]> = p.proof.inclusion.iter().map(|h| decode(h)).collect();
    assert!(verify_inclusion(
        &decode(&p.leaf),
        p.proof.leaf_index,
        p.proof.tree_size,
        &path,
        &decode(&p.proof.checkpoint.root)
    ));
    let json = serde_json::to_string(p).unwrap();
    assert!(
        json.starts_with("{\"tree_size\":") && json.contains("\"checkpoint\":{\"organization_id\""),
        "{json}"
    );
    // Not covered by a checkpoint yet, and not there at all.
    let e = audit.prove(&admin, total).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("no checkpoint covers"), "{e}");
    let e = audit.prove(&admin, total + 1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains(&format!("has no event {}", total + 1)),
        "{e}"
    );

    // The export, a page at a time, from `since` on: each line's leaf and
    // proof, the last line without one.
    let mut export = audit.export(&admin, before + 2).await.unwrap();
    let mut lines = Vec::new();
    while let Some(page) = export.next_page().await.unwrap() {
        lines.extend(page);
    }
    assert_eq!(
        lines.iter().map(|l| l.event.seq).collect::<Vec<_>>(),
        (before + 2..=total).collect::<Vec<_>>()
    );
    for line in &lines[..lines.len() - 1] {
        let proof = line.proof.as_ref().unwrap();
        let path: Vec<[u8; 32]> = proof.inclusion.iter().map(|h| decode(h)).collect();
        assert!(verify_inclusion(
            &decode(line.leaf.as_deref().unwrap()),
            proof.leaf_index,
            proof.tree_size,
            &path,
            &decode(&proof.checkpoint.root)
        ));
    }
    assert_eq!(lines.last().unwrap().proof, None);
    let json = serde_json::to_string(&lines[0]).unwrap();
    let at = |key: &str| json.find(&format!("\"{key}\":")).unwrap();
    assert!(json.starts_with("{\"seq\":"), "{json}");
    assert!(
        at("hash") < at("leaf") && at("leaf") < at("proof") && at("proof") < at("tree_size"),
        "{json}"
    );

    // A trusted key must be an Ed25519 public key in hex.
    let e = audit
        .verify(&admin, &["not hex".to_string()])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    app.close().await;
});

on_both_backends!(a_tampered_log_is_reported, |db| {
    let (app, admin) = app(db).await;
    let audit = app.audit();
    let before = audit
        .log(&admin, &AuditFilter::default())
        .await
        .unwrap()
        .len() as u64;
    add_users(&app, &admin, &["u1", "u2", "u3"]).await;
    checkpoint(&app).await;
    // What someone with the database owner's rights could do.
    let store = app.store();
    let bypass = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER",
    };
    store.pool().execute(bypass).await.unwrap();
    let seq = before + 2;
    store
        .pool()
        .execute(
            format!(
                "UPDATE audit_events SET actor_id = 'someone-else' \
                 WHERE organization_id = '{DEFAULT_ORGANIZATION}' AND seq = {seq}"
            )
            .as_str(),
        )
        .await
        .unwrap();

    // A finding, not an error.
    let report = audit.verify(&admin, &[]).await.unwrap();
    assert!(!report.intact);
    let local = &report.organizations[0];
    assert_eq!((local.intact, local.seq), (false, Some(seq)));
    assert!(
        local.problem.as_deref().unwrap().contains("hash mismatch"),
        "{local:?}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["organizations"][0].get("events"), None);
    assert!(!audit.verify_all(&admin, &[]).await.unwrap().intact);
    // The changed event no longer proves against the signed root.
    let checked = audit.prove(&admin, seq).await.unwrap();
    assert_eq!(
        checked.problem.as_deref(),
        Some("the inclusion proof does not reach the signed root")
    );
    app.close().await;
});
