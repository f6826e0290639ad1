#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! `POST /github/webhook` end to end, on both backends: the GitHub
//! stand-in sends GitHub's recorded payloads, signed, to a served App
//! whose private key and webhook secret are Smithers secrets. A bad
//! signature stores nothing; a delivery is recorded once however often it
//! comes; installations connect and disconnect repositories, audited;
//! unknown events are recorded and ignored.

mod common;

use std::sync::Arc;

use common::github::{
    GithubFixture, KEYRING, WEBHOOK_SECRET, actions, admin, github_fixture, processed, settings,
    signature,
};
use smithers_app::{App, Config};
use smithers_github::{ForkSecrets, GithubApp};
use smithers_secrets::SecretValue;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::audit::all_events;
use smithers_test_support::on_both_backends;

/// The audit actions but the App's own requests to GitHub (its sweeper
/// and reconciles run in the background from the start).
async fn recorded(app: &App) -> Vec<String> {
    actions(app)
        .await
        .into_iter()
        .filter(|a| a != "github.request")
        .collect()
}

async fn fixture(db: &smithers_test_support::TestDb) -> GithubFixture {
    github_fixture(db, ForkSecrets::Withheld).await
}

async fn post(f: &GithubFixture, headers: &[(&str, &str)], body: &[u8]) -> reqwest::Response {
    let mut request = f
        .http
        .post(format!("{}/github/webhook", f.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

on_both_backends!(the_apps_credentials_are_read_once_recorded, |db| {
    let f = fixture(db).await;
    let events = all_events(f.app.store()).await;
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e.event.action == "secret.read")
        .collect();
    assert_eq!(reads.len(), 2);
    for read in reads {
        assert_eq!(read.event.actor_id, "smithers");
        assert_eq!(read.event.details["purpose"], "github-app");
    }
});

on_both_backends!(a_bad_signature_is_refused_and_nothing_is_stored, |db| {
    let f = fixture(db).await;
    let before = recorded(&f.app).await;
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let good = signature(WEBHOOK_SECRET, body);
    let wrong = signature("another secret", body);
    for headers in [
        vec![("x-github-event", "ping"), ("x-github-delivery", "d-1")],
        vec![
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-1"),
            ("x-hub-signature-256", wrong.as_str()),
        ],
        vec![
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-1"),
            ("x-hub-signature-256", "sha256=00"),
        ],
    ] {
        let response = post(&f, &headers, body).await;
        assert_eq!(response.status(), 401, "{headers:?}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "unauthenticated");
    }
    // The right signature over another body.
    let response = post(
        &f,
        &[
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-1"),
            ("x-hub-signature-256", good.as_str()),
        ],
        br#"{"zen":"Keep it logically awesome.","hook_id":2}"#,
    )
    .await;
    assert_eq!(response.status(), 401);
    assert!(
        f.app
            .store()
            .github()
            .delivery("d-1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(recorded(&f.app).await, before, "nothing was recorded");

    // Signed but malformed: 400, nothing stored.
    for (event, guid, body) in [
        ("ping", "d-2", &b"not json"[..]),
        ("Ping!", "d-3", &b"{}"[..]),
        ("ping", "d 4", &b"{}"[..]),
    ] {
        let sig = signature(WEBHOOK_SECRET, body);
        let response = post(
            &f,
            &[
                ("x-github-event", event),
                ("x-github-delivery", guid),
                ("x-hub-signature-256", sig.as_str()),
            ],
            body,
        )
        .await;
        assert_eq!(response.status(), 400, "{event} {guid}");
    }
    assert_eq!(recorded(&f.app).await, before);
});

on_both_backends!(a_delivery_sent_twice_is_carried_out_once, |db| {
    let f = fixture(db).await;
    let installation = f.api.add_installation(
        "acme",
        "Organization",
        &[("contents", "write"), ("pull_requests", "write")],
    );
    f.api
        .add_repository(installation, "acme", "api", "main", true);
    f.api
        .set_chaos(smithers_test_support::github::Chaos::Duplicate);
    let guid = f.api.installation_created(installation).await;
    processed(&f.app).await;
    let attempts: Vec<_> = f
        .api
        .deliveries()
        .into_iter()
        .filter(|d| d.guid == guid)
        .collect();
    assert_eq!(attempts.len(), 2, "the stand-in sent it twice");
    assert!(
        attempts.iter().all(|d| d.status_code == 202),
        "{attempts:?}"
    );
    let all = actions(&f.app).await;
    let count = |action: &str| all.iter().filter(|a| *a == action).count();
    assert_eq!(count("github.delivery_received"), 1);
    assert_eq!(count("github.installation_created"), 1);
    assert_eq!(count("repository.connected"), 1);
    let delivery = f
        .app
        .store()
        .github()
        .delivery(&guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.outcome.as_deref(), Some("handled"));
    f.api.assert_honest();
});

on_both_backends!(installations_connect_and_disconnect_repositories, |db| {
    let f = fixture(db).await;
    let installation = f.api.add_installation(
        "acme",
        "Organization",
        &[("contents", "write"), ("pull_requests", "write")],
    );
    let api_repo = f
        .api
        .add_repository(installation, "acme", "api", "main", true);
    f.api.installation_created(installation).await;
    let other = f.api.add_installation("elsewhere", "Organization", &[]);
    let web = f.api.add_repository(other, "acme", "web", "main", false);
    f.api
        .installation_repositories_added(installation, &[web])
        .await;
    f.api
        .installation_repositories_removed(installation, &[api_repo])
        .await;
    processed(&f.app).await;
    let repositories = f
        .app
        .store()
        .github()
        .repositories(DEFAULT_ORGANIZATION)
        .await
        .unwrap();
    let connected: Vec<_> = repositories
        .iter()
        .filter(|r| r.disconnected_at.is_none())
        .map(|r| r.full_name.as_str())
        .collect();
    assert_eq!(connected, ["acme/web"]);
    let events = all_events(f.app.store()).await;
    let disconnected = events
        .iter()
        .find(|e| e.event.action == "repository.disconnected")
        .unwrap();
    assert_eq!(disconnected.event.resource_id, "acme/api");
    assert_eq!(disconnected.event.actor_type.to_string(), "webhook");
    assert!(disconnected.event.details["delivery"].is_string());

    // Uninstalled: everything disconnected, its tokens forgotten.
    common::github::installation_event(&f, installation, "deleted").await;
    processed(&f.app).await;
    let repositories = f
        .app
        .store()
        .github()
        .repositories(DEFAULT_ORGANIZATION)
        .await
        .unwrap();
    assert!(repositories.iter().all(|r| r.disconnected_at.is_some()));
    assert!(
        f.app
            .store()
            .github()
            .installation(i64::try_from(installation).unwrap())
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some()
    );
    f.api.assert_honest();
});

on_both_backends!(
    installation_events_out_of_order_end_as_github_has_it,
    |db| {
        let f = fixture(db).await;
        let installation = f.api.add_installation(
            "acme",
            "Organization",
            &[("contents", "write"), ("metadata", "read")],
        );
        let api_repo = f
            .api
            .add_repository(installation, "acme", "api", "main", true);
        f.api.installation_created(installation).await;
        processed(&f.app).await;
        // On GitHub: acme/api removed then added again, the installation
        // suspended then unsuspended; each pair delivered in reverse.
        f.api
            .set_chaos(smithers_test_support::github::Chaos::Reorder { batch: 2, seed: 0 });
        f.api
            .installation_repositories_removed(installation, &[api_repo])
            .await;
        f.api
            .installation_repositories_added(installation, &[api_repo])
            .await;
        // Carried out before GitHub's state changes again: a read-back
        // made after the suspension would rightly see it.
        processed(&f.app).await;
        common::github::installation_event(&f, installation, "suspend").await;
        common::github::installation_event(&f, installation, "unsuspend").await;
        processed(&f.app).await;
        let github = f.app.store().github();
        assert_eq!(connected_repositories(&f).await, ["acme/api"]);
        let id = i64::try_from(installation).unwrap();
        assert_eq!(
            github.installation(id).await.unwrap().unwrap().suspended_at,
            None
        );
        // The late removal was corrected, saying so; the late suspension
        // was decided on GitHub's word and changed nothing, not even for
        // a moment.
        let details: Vec<String> = github
            .recent_deliveries(DEFAULT_ORGANIZATION, 10)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|d| d.detail)
            .collect();
        assert!(
            details.iter().any(|d| d
                .contains("corrected from GitHub: repositories of installation")
                && d.contains("added acme/api")),
            "{details:?}"
        );

        let actions: Vec<String> = all_events(f.app.store())
            .await
            .into_iter()
            .map(|e| e.event.action)
            .filter(|a| a.ends_with("connected") || a.starts_with("github.installation_"))
            .collect();
        assert_eq!(
            actions,
            [
                "github.installation_created",
                "repository.connected",
                "repository.disconnected",
                "repository.connected",
            ],
            "{actions:?}"
        );
        f.api.assert_honest();
    }
);

/// The names of the organization's connected repositories, in the
/// store's order.
async fn connected_repositories(f: &GithubFixture) -> Vec<String> {
    f.app
        .store()
        .github()
        .repositories(DEFAULT_ORGANIZATION)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.disconnected_at.is_none())
        .map(|r| r.full_name)
        .collect()
}

on_both_backends!(
    a_dropped_installation_event_is_corrected_at_the_sweep,
    |db| {
        let f = fixture(db).await;
        let installation = f.api.add_installation(
            "acme",
            "Organization",
            &[("contents", "write"), ("metadata", "read")],
        );
        f.api
            .add_repository(installation, "acme", "api", "main", true);
        f.api.installation_created(installation).await;
        processed(&f.app).await;
        let other = f.api.add_installation("elsewhere", "Organization", &[]);
        let web = f.api.add_repository(other, "acme", "web", "main", false);
        f.api.set_chaos(smithers_test_support::github::Chaos::Drop);
        f.api
            .installation_repositories_added(installation, &[web])
            .await;
        processed(&f.app).await;
        assert_eq!(connected_repositories(&f).await, ["acme/api"]);
        let stop = tokio_util::sync::CancellationToken::new();
        let pool = smithers_server::RunPool::new(f.app.clone(), 1, stop.clone());
        let corrected = f
            .github
            .webhooks()
            .reconcile_installations(&*pool)
            .await
            .unwrap();
        assert_eq!(
            corrected,
            [format!(
                "corrected from GitHub: repositories of installation {installation}: added acme/web"
            )]
        );
        let mut now = connected_repositories(&f).await;
        now.sort();
        assert_eq!(now, ["acme/api", "acme/web"]);
        // Nothing more to correct.
        assert!(
            f.github
                .webhooks()
                .reconcile_installations(&*pool)
                .await
                .unwrap()
                .is_empty()
        );
        stop.cancel();
        pool.stop().await;
        f.api.assert_honest();
    }
);

on_both_backends!(unknown_events_are_recorded_and_ignored, |db| {
    let f = fixture(db).await;
    let installation = f.api.add_installation("acme", "Organization", &[]);
    let repo = f
        .api
        .add_repository(installation, "acme", "api", "main", true);
    let guid = f
        .api
        .deliver("star", Some("created"), Some(repo), serde_json::json!({}))
        .await;
    let ping = f
        .api
        .deliver("ping", None, None, serde_json::json!({}))
        .await;
    processed(&f.app).await;
    let github = f.app.store().github();
    let star = github.delivery(&guid).await.unwrap().unwrap();
    assert_eq!(star.event, "star");
    assert_eq!(star.outcome.as_deref(), Some("ignored"));
    let ping = github.delivery(&ping).await.unwrap().unwrap();
    assert_eq!(ping.outcome.as_deref(), Some("handled"));
    assert!(
        f.api.deliveries().iter().all(|d| d.status_code == 202),
        "every delivery answered 2xx"
    );
    f.api.assert_honest();
});

on_both_backends!(a_server_without_the_app_does_not_take_webhooks, |db| {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(smithers_server::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    let response = reqwest::Client::new()
        .post(format!("{base}/github/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
});

on_both_backends!(missing_credentials_stop_the_app_from_starting, |db| {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            keyring: Some(KEYRING.into()),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let settings = settings("http://127.0.0.1:9", ForkSecrets::Withheld);
    let err = GithubApp::open(app.clone(), &settings).await.unwrap_err();
    assert!(err.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{err}");
    // A key that is not a key: refused, and never quoted.
    let who = admin(&app).await;
    app.secrets()
        .set(
            &who,
            "prod",
            "GITHUB_APP_PRIVATE_KEY",
            &SecretValue::from("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END RSA PRIVATE KEY-----\n"),
            None,
        )
        .await
        .unwrap();
    let err = GithubApp::open(app, &settings).await.unwrap_err();
    assert!(err.to_string().contains("not an RSA private key"), "{err}");
    assert!(!err.to_string().contains("c2VjcmV0LWJ5dGVz"), "{err}");
});

on_both_backends!(
    the_default_branchs_protection_is_checked_and_reported,
    |db| {
        let f = fixture(db).await;
        let installation = f
            .api
            .add_installation("acme", "Organization", &[("contents", "write")]);
        let api = f
            .api
            .add_repository(installation, "acme", "api", "main", true);
        f.api
            .add_repository(installation, "acme", "web", "trunk", true);
        f.api.protect_branch(api, "main");
        f.api.installation_created(installation).await;
        processed(&f.app).await;
        let who = admin(&f.app).await;
        let status = f.app.github_status(&who).await.unwrap();
        let protection: Vec<(String, Option<String>, Option<bool>)> = status
            .repositories
            .iter()
            .map(|r| {
                (
                    r.full_name.clone(),
                    r.default_branch.clone(),
                    r.default_branch_protected,
                )
            })
            .collect();
        assert_eq!(
            protection,
            [
                ("acme/api".to_string(), Some("main".to_string()), Some(true)),
                (
                    "acme/web".to_string(),
                    Some("trunk".to_string()),
                    Some(false)
                ),
            ]
        );
        assert_eq!(status.warnings.len(), 1, "{:?}", status.warnings);
        assert!(
            status.warnings[0].contains("acme/web"),
            "{:?}",
            status.warnings
        );
        assert_eq!(status.installations.len(), 1);
        assert!(!status.deliveries.is_empty());
        let unprotected: Vec<_> = all_events(f.app.store())
            .await
            .into_iter()
            .filter(|e| e.event.action == "repository.default_branch_unprotected")
            .map(|e| e.event.resource_id)
            .collect();
        assert_eq!(unprotected, ["acme/web"]);

        // The dashboard says so too.
        let token = f
            .app
            .local_sign_in_token(DEFAULT_ORGANIZATION, "admin")
            .await
            .unwrap();
        let session = f
            .app
            .sign_in_with_token(&token, &smithers_app::Client::default())
            .await
            .unwrap();
        let page = f
            .http
            .get(format!("{}/github", f.base))
            .header(
                "cookie",
                format!("{}={}", smithers_server::SESSION_COOKIE, session.secret),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let text = page.text().await.unwrap();
        assert!(text.contains("acme/web"), "{text}");
        assert!(text.contains("is not protected on GitHub"), "{text}");
        f.api.assert_honest();
    }
);
