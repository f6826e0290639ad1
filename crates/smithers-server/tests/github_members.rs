#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Members become seats, on both backends against the GitHub stand-in:
//! the GitHub organization's members become users (admins from the
//! admin team), a member who leaves is removed at the `organization`
//! webhook — their session is refused at once —, users added by hand are
//! left alone, every change is audited, and an unchanged organization is
//! read with conditional requests (304).

mod common;

use common::github::{admin, github_fixture, processed};
use smithers_api::Role;
use smithers_app::{Client, Via};
use smithers_github::ForkSecrets;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::audit::all_events;
use smithers_test_support::on_both_backends;

on_both_backends!(members_become_users_and_leavers_lose_their_sessions, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let installation = f.api.add_installation(
        "acme",
        "Organization",
        &[("contents", "read"), ("members", "read")],
    );
    f.api.add_member("acme", "alice", 501);
    f.api.add_member("acme", "bob", 502);
    f.api.add_team("acme", "platform-admins");
    f.api.add_team_member("acme", "platform-admins", "alice");
    // Someone added by hand, who is no member: left alone.
    let who = admin(&f.app).await;
    f.app
        .users()
        .add(&who, "carol", Role::Member)
        .await
        .unwrap();

    f.api.installation_created(installation).await;
    processed(&f.app).await;
    let changes = f.github.reconcile_seats().await.unwrap();
    assert_eq!(changes.added, ["alice", "bob"], "{changes:?}");
    let users: Vec<(String, Role)> = f
        .app
        .users()
        .list(&who)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.role))
        .collect();
    assert!(users.contains(&("alice".into(), Role::Admin)), "{users:?}");
    assert!(users.contains(&("bob".into(), Role::Member)), "{users:?}");
    assert!(users.contains(&("carol".into(), Role::Member)), "{users:?}");

    // Nothing changed on GitHub: every list answered 304, nothing done.
    let again = f.github.reconcile_seats().await.unwrap();
    assert!(again.unchanged, "{again:?}");
    assert!(again.added.is_empty() && again.removed.is_empty());
    assert!(
        f.api
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/orgs/acme/members") && r.status == 304)
    );

    // bob signs in; then leaves the organization.
    let token = f
        .app
        .local_sign_in_token(DEFAULT_ORGANIZATION, "bob")
        .await
        .unwrap();
    let session = f
        .app
        .sign_in_with_token(&token, &Client::default())
        .await
        .unwrap();
    assert_eq!(session.principal.via, Via::Session);
    f.app.principal_from_session(&session.secret).await.unwrap();
    f.api.remove_member("acme", "bob");
    // GitHub records no `organization.member_removed` example to start
    // from; leaving the organization also takes bob out of his teams,
    // which GitHub announces with `membership.removed`, and any of these
    // events reconciles.
    f.api
        .deliver(
            "membership",
            Some("removed"),
            None,
            serde_json::json!({
                "member": {"login": "bob", "id": 502},
                "installation": {
                    "id": installation,
                    "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMTAwMQ==",
                },
            }),
        )
        .await;
    processed(&f.app).await;
    let refused = f
        .app
        .principal_from_session(&session.secret)
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind,
        smithers_api::ErrorKind::Unauthenticated,
        "{refused:?}"
    );
    let names: Vec<String> = f
        .app
        .users()
        .list(&who)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert!(!names.contains(&"bob".to_string()), "{names:?}");
    assert!(names.contains(&"carol".to_string()), "{names:?}");

    // A member who joins, in the admin team: an admin at the next reconcile.
    f.api.add_member("acme", "dave", 503);
    f.api.add_team_member("acme", "platform-admins", "dave");
    let changes = f.github.reconcile_seats().await.unwrap();
    assert_eq!(changes.added, ["dave"]);

    let events = all_events(f.app.store()).await;
    let removed = events
        .iter()
        .find(|e| e.event.action == "user.removed" && e.event.resource_id == "bob")
        .expect("bob's removal is recorded");
    assert_eq!(removed.event.actor_id, "github");
    assert_eq!(removed.event.actor_type.to_string(), "webhook");
    f.api.assert_honest();
});
