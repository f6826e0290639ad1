//! The secrets service on both backends: who may read, destroy, manage
//! keys and decide grants, that a refusal changes nothing, that another
//! organization sees nothing, and that without a keyring nothing is done.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, GrantBinding, GrantRequest, GrantState, Role, SecretVersionState};
use smithers_app::{App, Config, Principal, SecretReadOptions, Via};
use smithers_secrets::SecretValue;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::{TestDb, on_both_backends};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const VALUE: &str = "ghp_correct-horse-battery-staple";

async fn app(db: &TestDb, keyring: Option<&str>) -> App {
    App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        keyring: keyring.map(str::to_string),
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn principal(app: &App, organization: &str, user: &str) -> Principal {
    app.principal(organization, user, Via::Cli).await.unwrap()
}

fn purpose(single_use: bool) -> GrantRequest {
    GrantRequest {
        environment: "prod".into(),
        name: "GITHUB_TOKEN".into(),
        binding: GrantBinding::Purpose("debug the deploy".into()),
        ttl_seconds: 900,
        single_use,
    }
}

fn read() -> SecretReadOptions<'static> {
    SecretReadOptions::default()
}

on_both_backends!(who_may_do_what_with_a_secret, |db| {
    let app = app(db, Some(K1)).await;
    let admin = principal(&app, DEFAULT_ORGANIZATION, "admin").await;
    app.users().add(&admin, "bob", Role::Admin).await.unwrap();
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    let bob = principal(&app, DEFAULT_ORGANIZATION, "bob").await;
    let carol = principal(&app, DEFAULT_ORGANIZATION, "carol").await;
    let secrets = app.secrets();

    // A member writes, lists and asks; the value is never in the metadata.
    let v1 = secrets
        .set(
            &carol,
            "prod",
            "GITHUB_TOKEN",
            &SecretValue::from(VALUE),
            Some(0),
        )
        .await
        .unwrap();
    assert_eq!(
        (v1.version, v1.state, v1.key_id.as_deref()),
        (1, SecretVersionState::Active, Some("k1"))
    );
    let listed = secrets.list(&carol, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!serde_json::to_string(&listed).unwrap().contains("horse"));
    let grant = secrets.request_grant(&carol, &purpose(true)).await.unwrap();
    assert_eq!(grant.state, GrantState::Pending);

    // A member may not destroy, manage keys or decide grants; nothing changes.
    let refusals = [
        secrets
            .destroy(&carol, "prod", "GITHUB_TOKEN", 1)
            .await
            .map(drop),
        secrets.keys(&carol).await.map(drop),
        secrets.rewrap(&carol, &mut |_, _| {}).await.map(drop),
        secrets
            .decide_grant(&carol, &grant.id, true, None)
            .await
            .map(drop),
        secrets
            .decide_grant(&carol, &grant.id, false, Some("no"))
            .await
            .map(drop),
    ];
    for refused in refusals {
        let e = refused.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
        assert!(e.message.contains("needs an admin"), "{e}");
    }
    let versions = secrets
        .versions(&admin, "GITHUB_TOKEN", Some("prod"))
        .await
        .unwrap();
    assert_eq!(versions[0].state, SecretVersionState::Active);
    let open = secrets.grants(&admin, None, None, false).await.unwrap();
    assert_eq!((open.len(), open[0].state), (1, GrantState::Pending));
    // Missing keys are an admin's to hear about; a member is told nothing.
    assert!(secrets.missing_keys(&carol).await.unwrap().is_empty());

    // No grant yet: no value.
    let e = secrets
        .get(&carol, "prod", "GITHUB_TOKEN", &read())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");

    // Another admin approves; the requester reads the value, once.
    let approved = secrets
        .decide_grant(&bob, &grant.id, true, Some("ok"))
        .await
        .unwrap();
    assert_eq!(
        (approved.state, approved.decided_by.as_deref()),
        (GrantState::Approved, Some("bob"))
    );
    let value = secrets
        .get(&carol, "prod", "GITHUB_TOKEN", &read())
        .await
        .unwrap();
    assert_eq!(value.value.expose(), VALUE.as_bytes());
    assert_eq!(
        (value.version, value.grant.as_str()),
        (1, grant.id.as_str())
    );
    let e = secrets
        .get(&carol, "prod", "GITHUB_TOKEN", &read())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");

    // The requester cannot decide their own grant, admin or not.
    let own = secrets
        .request_grant(&admin, &purpose(false))
        .await
        .unwrap();
    let e = secrets
        .decide_grant(&admin, &own.id, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.message.contains("another admin must"), "{e}");
    // A denial needs a reason; decided once.
    let e = secrets
        .decide_grant(&bob, &own.id, false, Some(" "))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    let denied = secrets
        .decide_grant(&bob, &own.id, false, Some("not needed"))
        .await
        .unwrap();
    assert_eq!(denied.state, GrantState::Denied);
    let e = secrets
        .decide_grant(&bob, &own.id, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");

    // An admin destroys a version, once.
    let destroyed = secrets
        .destroy(&bob, "prod", "GITHUB_TOKEN", 1)
        .await
        .unwrap();
    assert_eq!(
        (
            destroyed.state,
            destroyed.key_id,
            destroyed.destroyed_by.as_deref()
        ),
        (SecretVersionState::Destroyed, None, Some("bob"))
    );
    let e = secrets
        .destroy(&bob, "prod", "GITHUB_TOKEN", 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    app.close().await;
});

on_both_backends!(another_organization_sees_and_decides_nothing, |db| {
    let app = app(db, Some(K1)).await;
    let admin = principal(&app, DEFAULT_ORGANIZATION, "admin").await;
    let secrets = app.secrets();
    secrets
        .set(
            &admin,
            "prod",
            "GITHUB_TOKEN",
            &SecretValue::from(VALUE),
            None,
        )
        .await
        .unwrap();
    let grant = secrets
        .request_grant(&admin, &purpose(false))
        .await
        .unwrap();
    let orgs = app.store().organizations();
    orgs.create("acme", "Acme").await.unwrap();
    orgs.add_user("acme", "eve", smithers_store::Role::Admin)
        .await
        .unwrap();
    let eve = principal(&app, "acme", "eve").await;

    // Eve, an admin of acme, neither sees nor decides nor reads default's.
    assert!(secrets.list(&eve, None).await.unwrap().is_empty());
    let e = secrets
        .versions(&eve, "GITHUB_TOKEN", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = secrets
        .decide_grant(&eve, &grant.id, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        secrets
            .grants(&eve, None, None, true)
            .await
            .unwrap()
            .is_empty()
    );
    let e = secrets
        .get(&eve, "prod", "GITHUB_TOKEN", &read())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    let e = secrets
        .request_grant(&eve, &purpose(false))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    // The grant is still default's to decide.
    let open = secrets.grants(&admin, None, None, false).await.unwrap();
    assert_eq!(open[0].state, GrantState::Pending);

    // A principal no store knows is refused by the store all the same.
    let mallory = Principal {
        organization: DEFAULT_ORGANIZATION.into(),
        user: "mallory".into(),
        role: Role::Admin,
        via: Via::Cli,
        scopes: None,
    };
    let e = secrets
        .set(&mallory, "prod", "OTHER", &SecretValue::from(VALUE), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert_eq!(secrets.list(&admin, None).await.unwrap().len(), 1);
    app.close().await;
});

on_both_backends!(without_a_keyring_nothing_is_done, |db| {
    let app = app(db, None).await;
    let admin = principal(&app, DEFAULT_ORGANIZATION, "admin").await;
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    let carol = principal(&app, DEFAULT_ORGANIZATION, "carol").await;
    let secrets = app.secrets();
    let e = secrets.list(&admin, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    assert!(
        e.message.contains("SECRET_ENCRYPTION_KEYS is not set"),
        "{e}"
    );
    let e = secrets
        .set(
            &admin,
            "prod",
            "GITHUB_TOKEN",
            &SecretValue::from(VALUE),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    // Who may not is told so first.
    let e = secrets.keys(&carol).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    app.close().await;
});

on_both_backends!(keys_missing_and_rewrap, |db| {
    let first = app(db, Some(K1)).await;
    let admin = principal(&first, DEFAULT_ORGANIZATION, "admin").await;
    first
        .users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    first
        .secrets()
        .set(&admin, "dev", "A_TOKEN", &SecretValue::from(VALUE), None)
        .await
        .unwrap();
    first.close().await;

    // k1 left the keyring too early: an admin is told, a member is not.
    let second = app(db, Some(K2)).await;
    let carol = principal(&second, DEFAULT_ORGANIZATION, "carol").await;
    let missing = second.secrets().missing_keys(&admin).await.unwrap();
    assert_eq!(
        missing
            .iter()
            .map(|k| (k.key_id.as_str(), k.versions, k.in_keyring))
            .collect::<Vec<_>>(),
        [("k1", 1, false)]
    );
    assert!(
        second
            .secrets()
            .missing_keys(&carol)
            .await
            .unwrap()
            .is_empty()
    );
    second.close().await;

    // Put back behind the new primary key, rewrap moves it; then k1 can go.
    let third = app(db, Some(&format!("{K2},{K1}"))).await;
    let summary = third
        .secrets()
        .rewrap(&admin, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!((summary.primary_key.as_str(), summary.rewrapped), ("k2", 1));
    assert_eq!(summary.by_old_key.get("k1"), Some(&1));
    assert!(summary.failed.is_empty());
    let keys = third.secrets().keys(&admin).await.unwrap();
    let k1 = keys.iter().find(|k| k.key_id == "k1").unwrap();
    assert!(k1.removable, "{keys:?}");
    third.close().await;
});
