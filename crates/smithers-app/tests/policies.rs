//! Organization policies on both backends: versions, their audit events in
//! the same transaction, who may change them, and what is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, PolicyState, Role};
use smithers_app::{App, Config, Principal, Via};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends};

const V1: &str = "implementer run_command * -> ask\n";
const V2: &str = "implementer run_command \"curl *\" -> deny\n\
                  test implementer run_command \"curl x\" -> deny\n";

async fn app(db: &TestDb) -> (App, Principal) {
    let app = App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
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

/// The policy events: (action, resource, details.version).
async fn policy_events(app: &App) -> Vec<(String, String, u64)> {
    let events = app
        .store()
        .audit()
        .query(&AuditQuery {
            organization_id: DEFAULT_ORGANIZATION.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| e.event.action.starts_with("policy."))
        .map(|e| {
            (
                e.event.action.clone(),
                e.event.actor_id.clone(),
                e.event.details["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

on_both_backends!(versions_with_their_events, |db| {
    let (app, admin) = app(db).await;
    let policies = app.policies();
    let e = policies.show(&admin, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);

    let v1 = policies.publish(&admin, "org.policy", V1).await.unwrap();
    assert_eq!((v1.version, v1.state), (1, PolicyState::Published));
    let v2 = policies.publish(&admin, "org.policy", V2).await.unwrap();
    assert_eq!(v2.version, 2);
    // The same text again changes nothing.
    let e = policies
        .publish(&admin, "org.policy", V2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");

    let shown = policies.show(&admin, None).await.unwrap();
    assert_eq!((shown.version, shown.text.as_deref()), (2, Some(V2)));
    let old = policies.show(&admin, Some(1)).await.unwrap();
    assert_eq!(old.text.as_deref(), Some(V1));
    let e = policies.show(&admin, Some(9)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);

    let gone = policies.unpublish(&admin).await.unwrap();
    assert_eq!((gone.version, gone.state), (3, PolicyState::Unpublished));
    let e = policies.unpublish(&admin).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        policies.show(&admin, None).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    // Publishing after an unpublish creates a policy again.
    let v4 = policies.publish(&admin, "org.policy", V1).await.unwrap();
    assert_eq!(v4.version, 4);

    let history = policies.history(&admin).await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|v| (v.version, v.state, v.text.is_none(), v.created_by.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, PolicyState::Published, true, "admin"),
            (2, PolicyState::Published, true, "admin"),
            (3, PolicyState::Unpublished, true, "admin"),
            (4, PolicyState::Published, true, "admin"),
        ]
    );
    assert_eq!(
        policy_events(&app).await,
        [
            ("policy.created".into(), "admin".into(), 1),
            ("policy.modified".into(), "admin".into(), 2),
            ("policy.deleted".into(), "admin".into(), 3),
            ("policy.created".into(), "admin".into(), 4),
        ]
    );
});

on_both_backends!(refused_changes_change_nothing, |db| {
    let (app, admin) = app(db).await;
    let policies = app.policies();
    // Not a policy: the diagnostics, nothing stored.
    let e = policies
        .publish(&admin, "org.policy", "implementer run_command\n")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("org.policy:1"), "{}", e.message);
    assert!(e.message.contains("nothing was published"), "{}", e.message);
    // A failing inline test.
    let e = policies
        .publish(
            &admin,
            "org.policy",
            "implementer read_file * -> allow\ntest implementer read_file a -> deny\n",
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("FAIL org.policy:2"), "{}", e.message);
    // A member may read, not publish or unpublish.
    app.users().add(&admin, "bob", Role::Member).await.unwrap();
    let bob = app
        .principal(DEFAULT_ORGANIZATION, "bob", Via::Cli)
        .await
        .unwrap();
    let e = policies.publish(&bob, "org.policy", V1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    policies.publish(&admin, "org.policy", V1).await.unwrap();
    let e = policies.unpublish(&bob).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(policies.show(&bob, None).await.unwrap().version, 1);
    assert_eq!(policies.history(&bob).await.unwrap().len(), 1);
    assert_eq!(
        policy_events(&app).await,
        [("policy.created".into(), "admin".into(), 1)]
    );
    // The events and the log verify.
    let report = app
        .store()
        .audit()
        .verify(DEFAULT_ORGANIZATION, &[])
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
});
