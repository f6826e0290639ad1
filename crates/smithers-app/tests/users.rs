//! The users service on both backends: who may add a user, and that a user
//! and its audit event are committed together or not at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role};
use smithers_app::{App, Config, Via};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends};

async fn app(db: &TestDb) -> App {
    App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn user_adds(app: &App) -> Vec<String> {
    let events = app
        .store()
        .audit()
        .query(&AuditQuery {
            organization_id: DEFAULT_ORGANIZATION.into(),
            action: Some("user.add".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    events
        .iter()
        .map(|e| format!("{} added {}", e.event.actor_id, e.event.resource_id))
        .collect()
}

async fn names(app: &App) -> Vec<String> {
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    let users = app.users().list(&admin).await.unwrap();
    users.into_iter().map(|u| u.name).collect()
}

on_both_backends!(an_admin_adds_a_user_with_its_event, |db| {
    let app = app(db).await;
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    let alice = app
        .users()
        .add(&admin, "alice", Role::Member)
        .await
        .unwrap();
    assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Member));
    assert_eq!(user_adds(&app).await, ["admin added alice"]);
    let json = serde_json::to_string(&alice).unwrap();
    assert!(
        json.starts_with(
            r#"{"organization":"local","name":"alice","role":"member","created_at":""#
        ),
        "{json}"
    );
});

on_both_backends!(a_member_cannot_add_users, |db| {
    let app = app(db).await;
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    app.users().add(&admin, "bob", Role::Member).await.unwrap();
    let bob = app
        .principal(DEFAULT_ORGANIZATION, "bob", Via::Cli)
        .await
        .unwrap();
    let e = app
        .users()
        .add(&bob, "mallory", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        "adding users needs an admin of \"local\"; bob is a member"
    );
    assert_eq!(names(&app).await, ["admin", "bob"]);
    assert_eq!(user_adds(&app).await, ["admin added bob"]);
    // A name the store does not know is nobody.
    let e = app
        .principal(DEFAULT_ORGANIZATION, "eve", Via::Cli)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
});

on_both_backends!(refusals_change_nothing, |db| {
    let app = app(db).await;
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    let e = app
        .users()
        .add(&admin, "carol", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    let e = app
        .users()
        .add(&admin, "no spaces", Role::Member)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert_eq!(names(&app).await, ["admin", "carol"]);
    assert_eq!(user_adds(&app).await, ["admin added carol"]);
});

on_both_backends!(no_user_without_its_audit_event, |db| {
    let app = app(db).await;
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    // The audit table goes away: the event cannot be committed.
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_gone")
        .execute(app.store().pool())
        .await
        .unwrap();
    let e = app
        .users()
        .add(&admin, "dave", Role::Member)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal, "{e}");
    assert_eq!(
        names(&app).await,
        ["admin"],
        "the user was not added either"
    );
    sqlx::query("ALTER TABLE audit_events_gone RENAME TO audit_events")
        .execute(app.store().pool())
        .await
        .unwrap();
    app.users().add(&admin, "dave", Role::Member).await.unwrap();
    assert_eq!(user_adds(&app).await, ["admin added dave"]);
});
