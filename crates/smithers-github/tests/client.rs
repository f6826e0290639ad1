#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The App's REST client against the GitHub stand-in (every request and
//! answer checked against GitHub's published description): tokens are
//! minted down-scoped, once for concurrent callers, and never recorded;
//! every request is audited; rate limits are waited out; a POST whose
//! answer was lost is not sent again.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use smithers_app::{App, Config};
use smithers_github::{
    Access, AppKey, Auth, Context, Error, Github, Request, RetryLimits, TokenScope,
};
use smithers_test_support::TestDb;
use smithers_test_support::audit::all_events;
use smithers_test_support::github::{APP_ID, APP_PRIVATE_KEY_PEM, GithubApi};

struct Fixture {
    db: TestDb,
    app: Arc<App>,
    api: GithubApi,
    github: Github,
    installation: i64,
    repository: i64,
}

async fn fixture() -> Fixture {
    let db = TestDb::sqlite().await;
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let api = GithubApi::start().await;
    let installation = api.add_installation(
        "acme",
        "Organization",
        &[
            ("contents", "write"),
            ("pull_requests", "write"),
            ("statuses", "write"),
        ],
    );
    let repository = api.add_repository(installation, "acme", "api", "main", true);
    let (log, _writer) = app.audit_log();
    let github = Github::new(
        api.url(),
        AppKey::from_pem(APP_ID, APP_PRIVATE_KEY_PEM.as_bytes()).unwrap(),
        log,
        "local",
        RetryLimits {
            max_wait: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    Fixture {
        db,
        app,
        api,
        github,
        installation: i64::try_from(installation).unwrap(),
        repository: i64::try_from(repository).unwrap(),
    }
}

fn get_repo(scope: TokenScope) -> Request<'static> {
    Request::new(
        Method::GET,
        "/repos/{owner}/{repo}",
        &["acme", "api"],
        Auth::Installation(scope),
    )
    .context(Context {
        repository: Some("acme/api"),
        delivery: None,
    })
}

fn mints(api: &GithubApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.path.ends_with("/access_tokens"))
        .count()
}

#[tokio::test]
async fn tokens_are_down_scoped_minted_once_and_never_recorded() {
    let f = fixture().await;
    let scope = TokenScope::contents_read(f.installation, f.repository);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let github = f.github.clone();
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            github.send(&get_repo(scope)).await.unwrap()
        }));
    }
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["full_name"], "acme/api");
        assert!(answer.request_id.is_some());
    }
    assert_eq!(mints(&f.api), 1, "concurrent callers share one mint");
    let tokens = f.api.tokens_issued();
    assert_eq!(tokens.len(), 1);
    let minted = f.api.token_scope(&tokens[0]).unwrap();
    assert_eq!(
        minted.repositories,
        Some(vec![u64::try_from(f.repository).unwrap()])
    );
    assert_eq!(minted.permissions.get("contents").unwrap(), "read");
    assert!(
        !minted.permissions.contains_key("pull_requests"),
        "{minted:?}"
    );

    // A wider scope is another token.
    let write = TokenScope::new(f.installation, &[f.repository]).with("contents", Access::Write);
    f.github.send(&get_repo(write)).await.unwrap();
    assert_eq!(mints(&f.api), 2);

    // Every request is in the audit log, and no token anywhere in it.
    let events = all_events(&f.app.store().clone()).await;
    let requests: Vec<_> = events
        .iter()
        .filter(|e| e.event.action == "github.request")
        .collect();
    assert_eq!(requests.len(), 8 + 1 + 2, "8 + 1 reads, 2 mints");
    let read = requests
        .iter()
        .find(|e| e.event.details["route"] == "/repos/{owner}/{repo}")
        .unwrap();
    assert_eq!(read.event.details["repository"], "acme/api");
    assert_eq!(read.event.details["status"], 200);
    assert!(read.event.details["request_id"].is_string());
    let everything =
        serde_json::to_string(&events.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    for token in f.api.tokens_issued() {
        assert!(!everything.contains(&token), "a token is in the audit log");
    }
    // Nor in the database file.
    let db_bytes = std::fs::read(f.db.dir.path().join("smithers.db")).unwrap();
    for token in f.api.tokens_issued() {
        assert!(
            !db_bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is in the database"
        );
    }
    f.api.assert_honest();
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let f = fixture().await;
    let scope = TokenScope::contents_read(f.installation, f.repository);
    f.github.send(&get_repo(scope.clone())).await.unwrap();
    let first = f.api.tokens_issued()[0].clone();
    f.api.expire_token(&first);
    let answer = f.github.send(&get_repo(scope)).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(f.api.tokens_issued().len(), 2, "a new token was minted");
    f.api.assert_honest();
}

#[tokio::test]
async fn a_scope_beyond_the_installation_is_refused_by_github() {
    let f = fixture().await;
    let scope = TokenScope::new(f.installation, &[f.repository]).with("members", Access::Read);
    let err = f.github.send(&get_repo(scope)).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 422, .. }), "{err}");
    assert!(f.api.tokens_issued().is_empty());
    f.api.assert_honest();
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let f = fixture().await;
    let scope = TokenScope::contents_read(f.installation, f.repository);
    f.api
        .secondary_rate_limit("GET", "/repos/{owner}/{repo}", 1, 1);
    let started = std::time::Instant::now();
    let answer = f.github.send(&get_repo(scope.clone())).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after was honoured"
    );

    // A wait longer than allowed is reported, not slept through.
    f.api
        .secondary_rate_limit("GET", "/repos/{owner}/{repo}", 3600, 1);
    let err = f.github.send(&get_repo(scope)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RateLimited {
                wait_secs: 3600,
                ..
            }
        ),
        "{err}"
    );
    f.api.assert_honest();
}

#[tokio::test]
async fn server_errors_are_retried_only_where_that_cannot_do_twice() {
    let f = fixture().await;
    let scope = TokenScope::contents_read(f.installation, f.repository);
    f.api.fail_next("GET", "/repos/{owner}/{repo}", 502, 1);
    assert_eq!(f.github.send(&get_repo(scope)).await.unwrap().status, 200);

    // A status whose answer is lost: not sent again.
    let sha = f
        .api
        .branch_sha(u64::try_from(f.repository).unwrap(), "main")
        .unwrap();
    let statuses = TokenScope::new(f.installation, &[f.repository]).with("statuses", Access::Write);
    f.api
        .fail_after_effect("POST", "/repos/{owner}/{repo}/statuses/{sha}", 502, 1);
    let post = Request::new(
        Method::POST,
        "/repos/{owner}/{repo}/statuses/{sha}",
        &["acme", "api", &sha],
        Auth::Installation(statuses),
    )
    .json(serde_json::json!({"state": "pending", "context": "smithers/test"}));
    let err = f.github.send(&post).await.unwrap_err();
    assert!(matches!(err, Error::Uncertain { .. }), "{err}");
    let posts = f
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/statuses/"))
        .count();
    assert_eq!(posts, 1, "the POST was sent once");
    f.api.assert_honest();
}

#[tokio::test]
async fn a_parameter_cannot_add_a_path_segment() {
    let f = fixture().await;
    let scope = TokenScope::contents_read(f.installation, f.repository);
    let request = Request::new(
        Method::GET,
        "/repos/{owner}/{repo}",
        &["acme", "api/../../app"],
        Auth::Installation(scope),
    );
    let err = f.github.send(&request).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 404, .. }), "{err}");
    let last = f.api.requests().last().unwrap().path.clone();
    assert!(last.contains("api%2F..%2F..%2Fapp"), "{last}");
}
