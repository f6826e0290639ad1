//! API tokens on both backends: made once and kept only as a hash, acting
//! as their user narrowed to their scopes, refused (and the refusal
//! audited) once revoked or expired, each change with its audit event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::time::Duration;

use smithers_api::{ErrorKind, Role, Scope};
use smithers_app::{App, Config, Principal, TOKEN_PREFIX, Via};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends};
use sqlx::Row as _;

async fn app(db: &TestDb) -> App {
    App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn principal(app: &App, user: &str) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, user, Via::Cli)
        .await
        .unwrap()
}

async fn actions(app: &App) -> Vec<String> {
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
        .filter(|e| e.event.action.starts_with("token."))
        .map(|e| format!("{} {}", e.event.actor_id, e.event.action))
        .collect()
}

on_both_backends!(a_token_acts_as_its_user_within_its_scopes, |db| {
    let app = app(db).await;
    let admin = principal(&app, "admin").await;
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    let carol = principal(&app, "carol").await;

    let made = app
        .tokens()
        .create(&carol, "ci", &[Scope::RunsRead, Scope::RunsRead], None)
        .await
        .unwrap();
    assert!(made.secret.starts_with(TOKEN_PREFIX));
    assert_eq!(made.token.user, "carol");
    assert_eq!(made.token.scopes, vec![Scope::RunsRead]);
    let lives = made.token.expires_at.0 - made.token.created_at.0;
    assert!(
        (lives - 30 * 24 * 3600 * 1_000_000).abs() < 5_000_000,
        "{lives}"
    );

    // Only a hash is stored: the secret is nowhere in the table.
    let rows = sqlx::query("SELECT * FROM api_tokens")
        .fetch_all(app.store().pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].try_get("token_sha256").unwrap();
    assert_ne!(stored, made.secret);
    assert!(!stored.contains(&made.secret[TOKEN_PREFIX.len()..]));

    let bearer = app.principal_from_token(&made.secret).await.unwrap();
    assert_eq!(bearer.user, "carol");
    assert_eq!(bearer.role, Role::Member);
    assert_eq!(bearer.via, Via::ApiToken);
    assert_eq!(bearer.scopes, Some(vec![Scope::RunsRead]));
    // What its scope names, it may; anything else is refused by scope.
    assert!(app.runs().list(&bearer, true, 10).await.unwrap().is_empty());
    let e = app.approvals().list(&bearer, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(e.message.contains("approvals:read"), "{e}");
    // A token never makes or lists tokens.
    let e = app
        .tokens()
        .create(&bearer, "more", &[Scope::RunsRead], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        app.tokens().list(&bearer).await.unwrap_err().kind,
        ErrorKind::Forbidden
    );
    // Scopes narrow a role, never widen it.
    let wide = app
        .tokens()
        .create(&carol, "wide", &[Scope::UsersWrite], None)
        .await
        .unwrap();
    let wide = app.principal_from_token(&wide.secret).await.unwrap();
    let e = app
        .users()
        .add(&wide, "mallory", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);

    // Anything but a live token is unauthenticated, and says nothing of it.
    for bad in [
        "",
        "smt_",
        "Bearer x",
        &format!("{}x", made.secret),
        "smt_AAAA",
    ] {
        let e = app.principal_from_token(bad).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated, "{bad:?}");
        assert!(bad.len() < 6 || !e.message.contains(bad), "{e}");
    }
    assert_eq!(
        actions(&app).await,
        vec!["carol token.created", "carol token.created"]
    );
});

on_both_backends!(
    revoked_and_expired_tokens_are_refused_and_the_refusal_recorded,
    |db| {
        let app = app(db).await;
        let admin = principal(&app, "admin").await;
        app.users()
            .add(&admin, "carol", Role::Member)
            .await
            .unwrap();
        app.users().add(&admin, "dave", Role::Member).await.unwrap();
        let carol = principal(&app, "carol").await;
        let dave = principal(&app, "dave").await;
        let tokens = app.tokens();

        let made = tokens
            .create(&carol, "ci", &[Scope::RunsRead], None)
            .await
            .unwrap();
        // A member sees and revokes only their own; another's is not found.
        assert!(tokens.list(&dave).await.unwrap().is_empty());
        assert_eq!(tokens.list(&carol).await.unwrap().len(), 1);
        let e = tokens.revoke(&dave, &made.token.id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        // An admin sees and revokes any of the organization's.
        assert_eq!(tokens.list(&admin).await.unwrap().len(), 1);
        let revoked = tokens.revoke(&admin, &made.token.id).await.unwrap();
        assert_eq!(revoked.revoked_by.as_deref(), Some("admin"));
        assert!(revoked.revoked_at.is_some());
        let e = tokens.revoke(&carol, &made.token.id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        let e = app.principal_from_token(&made.secret).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
        assert!(e.message.ends_with("is revoked"), "{e}");

        // An expired one: its expiry moved into the past.
        let short = tokens
            .create(
                &carol,
                "short",
                &[Scope::RunsRead],
                Some(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE id = $1")
            .bind(&short.token.id)
            .execute(app.store().pool())
            .await
            .unwrap();
        let e = app.principal_from_token(&short.secret).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
        assert!(e.message.ends_with("is expired"), "{e}");

        // Bad requests change nothing.
        for (name, scopes, ttl) in [
            ("", vec![Scope::RunsRead], None),
            ("x", vec![], None),
            ("x", vec![Scope::RunsRead], Some(Duration::ZERO)),
            (
                "x",
                vec![Scope::RunsRead],
                Some(Duration::from_secs(400 * 24 * 3600)),
            ),
        ] {
            let e = tokens.create(&carol, name, &scopes, ttl).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{name:?} {scopes:?} {ttl:?}");
        }
        assert_eq!(tokens.list(&admin).await.unwrap().len(), 2);
        assert_eq!(
            actions(&app).await,
            vec![
                "carol token.created",
                "admin token.revoked",
                "api token.refused",
                "carol token.created",
                "api token.refused",
            ]
        );
    }
);
