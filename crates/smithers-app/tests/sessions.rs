//! Browser sessions on both backends: a one-time sign-in link opens one
//! session, once; a session speaks for its user until they sign out, it
//! expires, their role changes or they are removed; and each sign-in,
//! refusal, sign-out, role change and removal is in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role, Scope};
use smithers_app::{App, Client, Config, Via};
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

/// The actions of the organization's audit events named `prefix…`, in
/// order, with their resource.
async fn events(app: &App, prefix: &str) -> Vec<(String, String, serde_json::Value)> {
    app.store()
        .audit()
        .query(&AuditQuery {
            organization_id: DEFAULT_ORGANIZATION.into(),
            action: None,
            actor_id: None,
            since: None,
            after_seq: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.action.starts_with(prefix))
        .map(|e| (e.event.action, e.event.resource_id, e.event.details))
        .collect()
}

fn client() -> Client {
    Client {
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}

on_both_backends!(a_sign_in_link_opens_one_session_once, |db| {
    let app = app(db).await;
    let token = app
        .local_sign_in_token(DEFAULT_ORGANIZATION, "admin")
        .await
        .unwrap();
    // Two browsers race for the same link: one session, one refusal.
    let from = client();
    let (a, b) = tokio::join!(
        app.sign_in_with_token(&token, &from),
        app.sign_in_with_token(&token, &from)
    );
    let (opened, refused) = match (a, b) {
        (Ok(o), Err(e)) | (Err(e), Ok(o)) => (o, e),
        other => panic!("{other:?}"),
    };
    assert_eq!(refused.kind, ErrorKind::Unauthenticated, "{refused}");
    assert_eq!(refused.kind, ErrorKind::Unauthenticated);
    assert!(refused.message.contains("was used already"), "{refused}");
    assert!(!refused.message.contains(&token));
    assert_eq!(
        (
            opened.principal.user.as_str(),
            opened.principal.role,
            opened.principal.via
        ),
        ("admin", Role::Admin, Via::Session)
    );
    assert!(opened.secret.starts_with(smithers_app::SESSION_PREFIX));
    let who = app.principal_from_session(&opened.secret).await.unwrap();
    assert_eq!(
        (who.principal.user.as_str(), who.session.as_str()),
        ("admin", opened.id.as_str())
    );
    // Nothing but a live session's secret speaks for anyone.
    for bad in ["", "sms_", "sms_nothing", "smi_x", &token] {
        let e = app.principal_from_session(bad).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated, "{bad}");
    }
    // A link that is not one is refused, unrecorded.
    for bad in ["smi_nothing", "", &opened.secret] {
        let e = app.sign_in_with_token(bad, &client()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated, "{bad}");
    }
    app.sign_out(&who.principal, &who.session).await.unwrap();
    let e = app
        .principal_from_session(&opened.secret)
        .await
        .unwrap_err();
    assert!(e.message.contains("signed out"), "{e}");

    let log = events(&app, "user.log").await;
    // The race's two outcomes in either order, then the sign-out.
    let of = |action: &str| log.iter().find(|(a, _, _)| a == action).unwrap().2.clone();
    let mut actions: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions.pop(), Some("user.logout"));
    actions.sort_unstable();
    assert_eq!(actions, ["user.login", "user.login_failed"]);
    let login = of("user.login");
    assert_eq!(login["method"], "local");
    assert_eq!(login["session"], opened.id.as_str());
    assert_eq!(login["ip"], "127.0.0.1");
    assert_eq!(of("user.login_failed")["why"], "was used already");
    assert_eq!(of("user.logout")["session"], opened.id.as_str());
    // No secret in the log.
    let all = serde_json::to_string(&log).unwrap();
    assert!(!all.contains(&token) && !all.contains(&opened.secret));
});

on_both_backends!(a_role_change_or_removal_ends_the_users_sessions, |db| {
    let app = app(db).await;
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    for user in ["carol", "dave"] {
        app.users().add(&admin, user, Role::Member).await.unwrap();
    }
    let session_of = |user: &'static str| {
        let app = &app;
        async move {
            let token = app
                .local_sign_in_token(DEFAULT_ORGANIZATION, user)
                .await
                .unwrap();
            app.sign_in_with_token(&token, &client()).await.unwrap()
        }
    };
    let carol = session_of("carol").await;
    let dave = session_of("dave").await;
    let dave_token = app
        .tokens()
        .create(&dave.principal, "ci", &[Scope::RunsRead], None)
        .await
        .unwrap()
        .secret;

    // A member may neither change roles nor remove anyone.
    let e = app
        .users()
        .set_role(&dave.principal, "carol", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let e = app
        .users()
        .remove(&dave.principal, "carol")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);

    // Carol becomes an admin: her session ends; a new one has the new role.
    let promoted = app
        .users()
        .set_role(&admin, "carol", Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    let e = app.principal_from_session(&carol.secret).await.unwrap_err();
    assert!(e.message.contains("the role changed"), "{e}");
    let again = session_of("carol").await;
    assert_eq!(again.principal.role, Role::Admin);
    let e = app
        .users()
        .set_role(&admin, "carol", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);

    // Dave is removed: his session and his token stop working.
    app.users().remove(&admin, "dave").await.unwrap();
    assert_eq!(
        app.principal_from_session(&dave.secret)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        app.principal_from_token(&dave_token)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        app.users().remove(&admin, "dave").await.unwrap_err().kind,
        ErrorKind::NotFound
    );

    // The last admin stays one.
    app.users()
        .set_role(&again.principal, "admin", Role::Member)
        .await
        .unwrap();
    let carol_now = app
        .principal(DEFAULT_ORGANIZATION, "carol", Via::Cli)
        .await
        .unwrap();
    for e in [
        app.users()
            .set_role(&carol_now, "carol", Role::Member)
            .await
            .unwrap_err(),
        app.users().remove(&carol_now, "carol").await.unwrap_err(),
    ] {
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
        assert!(e.message.contains("last admin"), "{e}");
    }

    // A name that is only dots could not be named in a URL path.
    for name in [".", ".."] {
        let e = app
            .users()
            .add(&carol_now, name, Role::Member)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{name}");
    }
    let changes = events(&app, "user.r").await;
    assert_eq!(
        changes
            .iter()
            .map(|(a, r, d)| (a.as_str(), r.as_str(), d["sessions_ended"].as_u64()))
            .collect::<Vec<_>>(),
        [
            ("user.role_changed", "carol", Some(1)),
            ("user.removed", "dave", Some(1)),
            ("user.role_changed", "admin", Some(0)),
        ]
    );
    assert_eq!(changes[1].2["tokens_removed"], 1);

    // The default admin, once removed, stays removed when the store opens
    // again.
    app.users().remove(&carol_now, "admin").await.unwrap();
    drop(app);
    let again = self::app(db).await;
    let e = again
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
});
