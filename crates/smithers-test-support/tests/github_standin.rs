//! The GitHub App stand-in answers as GitHub does and tells apart what
//! GitHub's OpenAPI description allows from what it does not. These
//! tests need `SMITHERS_TEST_GITHUB_OPENAPI` and
//! `SMITHERS_TEST_GITHUB_WEBHOOK_EXAMPLES` (`scripts/test` sets them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use smithers_test_support::github::openapi;
use smithers_test_support::github::{
    APP_ID, APP_PRIVATE_KEY_PEM, AuthKind, GithubApi, TOKEN_PREFIX, app_jwt, sign_app_jwt,
};

const UA: &str = "smithers-test";

fn client() -> reqwest::Client {
    reqwest::Client::builder().user_agent(UA).build().unwrap()
}

/// A request with GitHub's recommended headers and `Authorization:
/// Bearer {auth}`; the status, headers and JSON body (`Null` if none).
async fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = client()
        .request(method.parse().unwrap(), url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28");
    if let Some(a) = auth {
        r = r.header("authorization", format!("Bearer {a}"));
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, json)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An installation `acme` (an organization) with one repository, and a
/// token for it from the App.
async fn installed(gh: &GithubApi, permissions: &[(&str, &str)]) -> (u64, u64, String) {
    let inst = gh.add_installation("acme", "Organization", permissions);
    let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
    let (status, _, body) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&app_jwt(APP_ID)),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (inst, repo, body["token"].as_str().unwrap().to_string())
}

// ---- 1. the description as the yardstick -------------------------------

#[test]
fn the_description_tells_a_valid_body_from_an_invalid_one() {
    let d = openapi::description();
    let op = d
        .find("POST", "/repos/acme/widgets/statuses/0123abc")
        .expect("create a commit status is described");
    assert_eq!(op.id, "repos/create-commit-status");
    assert_eq!(op.template, "/repos/{owner}/{repo}/statuses/{sha}");
    assert_eq!(op.params["sha"], "0123abc");
    let good = json!({"state": "success", "context": "smithers", "target_url": null});
    assert!(d.check_request(&op, &[], Some(&good)).is_empty());
    let bad = json!({"state": "fine", "context": 3});
    let wrong = d.check_request(&op, &[], Some(&bad));
    assert!(wrong.iter().any(|w| w.contains("fine")), "{wrong:?}");
    let none = d.check_request(&op, &[], None);
    assert!(!none.is_empty(), "the body is required: {none:?}");
    // Literal segments win over parameters.
    let op = d.find("GET", "/repos/a/b/pulls/comments").unwrap();
    assert_eq!(op.id, "pulls/list-review-comments-for-repo");
    // A branch name with a slash is one parameter.
    let op = d.find("GET", "/repos/a/b/branches/feature/x").unwrap();
    assert_eq!(op.params["branch"], "feature/x");
    assert!(d.find("GET", "/no/such/route/anywhere").is_none());
    // Unknown and ill-typed query parameters are told.
    let op = d.find("GET", "/repos/a/b/pulls").unwrap();
    let q = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    assert!(d.check_request(&op, &q("state", "all"), None).is_empty());
    assert!(!d.check_request(&op, &q("state", "merged"), None).is_empty());
    assert!(!d.check_request(&op, &q("colour", "red"), None).is_empty());
    // Answers: the schema of the status, basic-error for undocumented
    // errors, and an undocumented success is wrong.
    let op = d.find("GET", "/app").unwrap();
    assert!(
        !d.check_response(&op, 200, Some(&json!({"id": "x"})))
            .is_empty()
    );
    assert!(
        d.check_response(&op, 401, Some(&json!({"message": "Bad credentials"})))
            .is_empty()
    );
    assert!(!d.check_response(&op, 204, None).is_empty());
}

#[tokio::test]
async fn an_unknown_route_and_an_unimplemented_operation_are_violations() {
    let gh = GithubApi::start().await;
    let (status, _, body) = call("GET", &format!("{}/no/such/thing", gh.url()), None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "Not Found");
    assert_eq!(gh.violations().len(), 1, "{:?}", gh.violations());
    assert!(gh.violations()[0].contains("no such operation"));
    gh.clear_violations();
    // Described by GitHub, not implemented here.
    let (status, _, _) = call(
        "GET",
        &format!("{}/gitignore/templates", gh.url()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(gh.violations()[0].contains("not one the stand-in implements"));
    gh.clear_violations();
    // A body GitHub would not take is a violation, and refused.
    let (_, repo, token) = installed(&gh, &[("statuses", "write")]).await;
    let _ = repo;
    let (status, _, _) = call(
        "POST",
        &format!(
            "{}/repos/acme/widgets/statuses/{}",
            gh.url(),
            "a".repeat(40)
        ),
        Some(&token),
        Some(json!({"state": "fine"})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        gh.violations().iter().any(|v| v.contains("request body")),
        "{:?}",
        gh.violations()
    );
    gh.clear_violations();
    // No User-Agent: GitHub refuses.
    let resp = reqwest::Client::new()
        .get(format!("{}/app", gh.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(gh.violations()[0].contains("User-Agent"));
    gh.clear_violations();
    gh.assert_honest();
}

#[tokio::test]
async fn the_loader_says_what_to_do_without_the_description() {
    // The variable is read once per process; what the message says is
    // checked on the text itself.
    if std::env::var(openapi::OPENAPI_ENV).is_err() {
        let e = openapi::load().err().unwrap();
        assert!(
            e.contains("scripts/test") && e.contains(openapi::OPENAPI_ENV),
            "{e}"
        );
    } else {
        assert!(openapi::load().is_ok());
    }
}

// ---- 2. App authentication and installation tokens ---------------------

#[tokio::test]
async fn the_app_jwt_is_checked_as_github_checks_it() {
    let gh = GithubApi::start().await;
    let url = format!("{}/app", gh.url());
    let (status, headers, body) = call("GET", &url, Some(&app_jwt(APP_ID)), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], APP_ID);
    assert!(headers.contains_key("x-github-request-id"));
    let t = now();
    let jwt = |claims: Value| sign_app_jwt(claims, APP_PRIVATE_KEY_PEM);
    let refused = [
        // Expired.
        jwt(json!({"iat": t - 700, "exp": t - 100, "iss": APP_ID.to_string()})),
        // Longer than ten minutes.
        jwt(json!({"iat": t - 30, "exp": t + 600, "iss": APP_ID.to_string()})),
        // Issued in the future beyond the drift GitHub allows.
        jwt(json!({"iat": t + 120, "exp": t + 300, "iss": APP_ID.to_string()})),
        // Another App.
        jwt(json!({"iat": t - 30, "exp": t + 300, "iss": "42"})),
        // No times.
        jwt(json!({"iss": APP_ID.to_string()})),
    ];
    for bad in refused {
        let (status, _, body) = call("GET", &url, Some(&bad), None).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["message"].as_str().unwrap().len() > 5);
    }
    // Signed by another key.
    let other = "a.b.c";
    let (status, _, _) = call("GET", &url, Some(other), None).await;
    assert_eq!(status, 401);
    // Drift within a minute is taken; iss as a number too.
    let ok = jwt(json!({"iat": t + 30, "exp": t + 500, "iss": APP_ID}));
    let (status, _, _) = call("GET", &url, Some(&ok), None).await;
    assert_eq!(status, 200);
    assert!(gh.requests().iter().all(|r| r.auth == AuthKind::Jwt));
    gh.assert_honest();
}

#[tokio::test]
async fn installation_tokens_are_minted_down_scoped_and_never_beyond() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation(
        "acme",
        "Organization",
        &[("contents", "write"), ("pull_requests", "write")],
    );
    let widgets = gh.add_repository(inst, "acme", "widgets", "main", true);
    let _gadgets = gh.add_repository(inst, "acme", "gadgets", "main", false);
    let other = gh.add_installation("umbrella", "Organization", &[("contents", "read")]);
    let foreign = gh.add_repository(other, "umbrella", "secret", "main", true);
    let jwt = app_jwt(APP_ID);
    let mint = |body: Value| {
        let url = format!("{}/app/installations/{inst}/access_tokens", gh.url());
        let jwt = jwt.clone();
        async move { call("POST", &url, Some(&jwt), Some(body)).await }
    };
    let (status, _, body) = mint(json!({
        "repository_ids": [widgets],
        "permissions": {"contents": "read"},
    }))
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(
        token.starts_with(TOKEN_PREFIX) && token.len() == 40,
        "{token}"
    );
    assert_eq!(body["permissions"]["contents"], "read");
    assert_eq!(body["repository_selection"], "selected");
    assert_eq!(body["repositories"][0]["full_name"], "acme/widgets");
    let expires: SystemTime =
        humantime::parse_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
    assert_eq!(gh.tokens_issued(), vec![token.to_string()]);
    let scope = gh.token_scope(token).unwrap();
    assert_eq!(scope.repositories, Some(vec![widgets]));
    // More than granted, or a repository outside the installation: 422.
    for body in [
        json!({"permissions": {"administration": "write"}}),
        json!({"permissions": {"issues": "read"}}),
        json!({"repository_ids": [foreign]}),
        json!({"repositories": ["secret"]}),
    ] {
        let (status, _, answer) = mint(body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
    }
    assert_eq!(gh.tokens_issued().len(), 1);
    // A token, not the JWT, mints nothing.
    let url = format!("{}/app/installations/{inst}/access_tokens", gh.url());
    let (status, _, _) = call("POST", &url, Some(token), None).await;
    assert_eq!(status, 403);
    // An installation that does not exist.
    let url = format!("{}/app/installations/999999/access_tokens", gh.url());
    let (status, _, _) = call("POST", &url, Some(&jwt), None).await;
    assert_eq!(status, 404);
    // The App sees its installations.
    let (status, _, list) = call(
        "GET",
        &format!("{}/app/installations", gh.url()),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, _, one) = call(
        "GET",
        &format!("{}/app/installations/{inst}", gh.url()),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(one["account"]["login"], "acme");
    assert_eq!(one["permissions"]["contents"], "write");
    gh.assert_honest();
}

#[tokio::test]
async fn tokens_reach_their_repositories_with_their_permissions_only() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation(
        "acme",
        "Organization",
        &[("contents", "write"), ("statuses", "write")],
    );
    let widgets = gh.add_repository(inst, "acme", "widgets", "main", true);
    gh.add_repository(inst, "acme", "gadgets", "main", true);
    let jwt = app_jwt(APP_ID);
    let (_, _, body) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&jwt),
        Some(json!({"repository_ids": [widgets], "permissions": {"contents": "read"}})),
    )
    .await;
    let token = body["token"].as_str().unwrap().to_string();
    let get = |path: &str| {
        let url = format!("{}{path}", gh.url());
        let token = token.clone();
        async move { call("GET", &url, Some(&token), None).await }
    };
    let (status, headers, repo) = get("/repos/acme/widgets").await;
    assert_eq!(status, 200, "{repo}");
    assert_eq!(repo["full_name"], "acme/widgets");
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["id"], widgets);
    assert_eq!(repo["clone_url"], gh.clone_url(widgets));
    let remaining = |h: &reqwest::header::HeaderMap| -> u64 {
        h["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
    ] {
        assert!(headers.contains_key(name), "{name}");
    }
    let first = remaining(&headers);
    let (_, headers, _) = get("/repos/acme/widgets").await;
    assert_eq!(remaining(&headers), first - 1);
    // Outside the token's repositories, or nowhere: 404.
    assert_eq!(get("/repos/acme/gadgets").await.0, 404);
    assert_eq!(get("/repos/acme/nothing").await.0, 404);
    // An unknown or expired token: 401 Bad credentials.
    let (status, _, body) = call(
        "GET",
        &format!("{}/repos/acme/widgets", gh.url()),
        Some("ghs_nope"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    gh.expire_token(&token);
    assert_eq!(get("/repos/acme/widgets").await.0, 401);
    // A suspended installation's tokens: 403; and no new ones.
    let (_, _, body) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&jwt),
        None,
    )
    .await;
    let fresh = body["token"].as_str().unwrap().to_string();
    gh.suspend_installation(inst);
    let (status, _, _) = call(
        "GET",
        &format!("{}/repos/acme/widgets", gh.url()),
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let kinds: Vec<AuthKind> = gh.requests().iter().map(|r| r.auth).collect();
    assert!(kinds.contains(&AuthKind::Jwt) && kinds.contains(&AuthKind::Token));
    gh.assert_honest();
}

#[tokio::test]
async fn scripted_faults_and_rate_limits() {
    let gh = GithubApi::start().await;
    let (inst, _, token) = installed(&gh, &[("contents", "read")]).await;
    let url = format!("{}/repos/acme/widgets", gh.url());
    gh.fail_next("GET", "/repos/{owner}/{repo}", 502, 2);
    assert_eq!(call("GET", &url, Some(&token), None).await.0, 502);
    assert_eq!(call("GET", &url, Some(&token), None).await.0, 502);
    assert_eq!(call("GET", &url, Some(&token), None).await.0, 200);
    gh.secondary_rate_limit("*", "/repos/", 7, 1);
    let (status, headers, body) = call("GET", &url, Some(&token), None).await;
    assert_eq!(status, 403);
    assert_eq!(headers["retry-after"], "7");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    gh.primary_rate_limit("GET", "/repos/acme", 429, 1);
    let (status, headers, _) = call("GET", &url, Some(&token), None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(call("GET", &url, Some(&token), None).await.0, 200);
    // A spent window refuses until it resets.
    gh.set_rate_remaining(inst, 1);
    let (status, headers, _) = call("GET", &url, Some(&token), None).await;
    assert_eq!(
        (status, headers["x-ratelimit-remaining"].to_str().unwrap()),
        (200, "0")
    );
    let (status, headers, body) = call("GET", &url, Some(&token), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );
    gh.assert_honest();
}

// ---- 3. webhooks --------------------------------------------------------

/// A webhook receiver: every request's headers and raw body.
struct Receiver {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = got.clone();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
                let keep = keep.clone();
                async move {
                    keep.lock().unwrap().push((headers, body));
                    axum::http::StatusCode::OK
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<(axum::http::HeaderMap, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap()))
            .collect()
    }

    fn raw(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

const SECRET: &str = "webhook-secret-for-tests";

#[tokio::test]
async fn pull_request_webhooks_are_sent_signed_as_github_sends_them() {
    let gh = GithubApi::start().await;
    let rx = Receiver::start().await;
    gh.set_webhook(&rx.url, SECRET);
    let inst = gh.add_installation("acme", "Organization", &[("contents", "read")]);
    let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
    let head = gh.commit(repo, "feature", &[("src/a.rs", "fn a() {}\n")], "Add a");
    let number = gh.open_pull_request(repo, "feature", "main", false).await;
    assert_eq!(number, 1);
    let got = rx.raw();
    assert_eq!(got.len(), 1);
    let (headers, raw) = &got[0];
    let h = |n: &str| headers[n].to_str().unwrap().to_string();
    assert_eq!(h("x-github-event"), "pull_request");
    assert_eq!(h("x-github-hook-installation-target-type"), "integration");
    assert_eq!(
        h("x-github-hook-installation-target-id"),
        APP_ID.to_string()
    );
    assert!(h("user-agent").starts_with("GitHub-Hookshot/"));
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("x-github-delivery").len(), 36);
    assert!(!h("x-github-hook-id").is_empty());
    assert_eq!(
        h("x-hub-signature-256"),
        format!(
            "sha256={}",
            smithers_test_support::github::signature(SECRET, raw.as_bytes())
        )
    );
    let p: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(p["action"], "opened");
    assert_eq!(p["number"], 1);
    assert_eq!(p["installation"]["id"], inst);
    assert_eq!(p["repository"]["id"], repo);
    assert_eq!(p["repository"]["full_name"], "acme/widgets");
    assert_eq!(p["pull_request"]["number"], 1);
    assert_eq!(p["pull_request"]["head"]["sha"], head);
    assert_eq!(p["pull_request"]["head"]["ref"], "feature");
    assert_eq!(p["pull_request"]["base"]["ref"], "main");
    assert_eq!(
        p["pull_request"]["base"]["sha"],
        gh.branch_sha(repo, "main").unwrap()
    );
    assert_eq!(p["pull_request"]["head"]["repo"]["fork"], false);
    // A push to it: synchronize with before and after.
    let after = gh
        .push_to_pull_request(repo, 1, &[("src/b.rs", "")], "Add b")
        .await;
    let (_, p) = rx.got().pop().unwrap();
    assert_eq!(p["action"], "synchronize");
    assert_eq!(p["before"], head);
    assert_eq!(p["after"], after);
    assert_eq!(p["pull_request"]["head"]["sha"], after);
    // From a fork: the head lives in the contributor's repository.
    gh.commit(repo, "theirs", &[("x", "y")], "Theirs");
    let n = gh.open_pull_request(repo, "theirs", "main", true).await;
    let (_, p) = rx.got().pop().unwrap();
    assert_eq!(p["pull_request"]["number"], n);
    assert_eq!(p["pull_request"]["head"]["repo"]["fork"], true);
    assert_eq!(
        p["pull_request"]["head"]["repo"]["owner"]["login"],
        "outside-contributor"
    );
    assert_eq!(
        p["pull_request"]["head"]["label"],
        "outside-contributor:theirs"
    );
    assert_eq!(
        gh.branch_sha(repo, "theirs"),
        None,
        "the branch moved to the fork"
    );
    // Installation events.
    gh.installation_created(inst).await;
    let (h, p) = rx.got().pop().unwrap();
    assert_eq!(h["x-github-event"], "installation");
    assert_eq!(p["action"], "created");
    assert_eq!(p["installation"]["id"], inst);
    assert_eq!(p["installation"]["account"]["login"], "acme");
    assert_eq!(p["repositories"][0]["full_name"], "acme/widgets");
    gh.installation_repositories_removed(inst, &[repo]).await;
    let (_, p) = rx.got().pop().unwrap();
    assert_eq!(p["action"], "removed");
    assert_eq!(p["repositories_removed"][0]["id"], repo);
    assert_eq!(p["repositories_added"], json!([]));
    // Any event, filled in by the test.
    let guid = gh
        .deliver(
            "ping",
            None,
            None,
            json!({"zen": "Keep it logically awesome."}),
        )
        .await;
    let (h, p) = rx.got().pop().unwrap();
    assert_eq!(h["x-github-delivery"], guid.as_str());
    assert_eq!(p["zen"], "Keep it logically awesome.");
    assert!(
        gh.deliveries()
            .iter()
            .all(|d| d.status_code == 200 && d.status == "OK")
    );
    gh.assert_honest();
    // A payload GitHub's description does not allow is a violation.
    gh.deliver(
        "pull_request",
        Some("opened"),
        Some(repo),
        json!({"number": "one"}),
    )
    .await;
    let v = gh.violations();
    assert!(
        v.iter().any(|v| v.contains("pull-request-opened webhook")),
        "{v:?}"
    );
}

#[tokio::test]
async fn deliveries_are_listed_paged_and_redelivered() {
    let gh = GithubApi::start().await;
    let rx = Receiver::start().await;
    gh.set_webhook(&rx.url, SECRET);
    let inst = gh.add_installation("acme", "Organization", &[("contents", "read")]);
    let repo = gh.add_repository(inst, "acme", "widgets", "main", false);
    let mut guids = Vec::new();
    for _ in 0..5 {
        guids.push(
            gh.deliver("push", None, Some(repo), json!({"ref": "refs/heads/main"}))
                .await,
        );
    }
    let jwt = app_jwt(APP_ID);
    let mut url = format!("{}/app/hook/deliveries?per_page=2", gh.url());
    let mut seen = Vec::new();
    loop {
        let (status, headers, page) = call("GET", &url, Some(&jwt), None).await;
        assert_eq!(status, 200, "{page}");
        for d in page.as_array().unwrap() {
            assert_eq!(d["event"], "push");
            assert_eq!(d["installation_id"], inst);
            assert_eq!(d["repository_id"], repo);
            assert_eq!(d["redelivery"], false);
            seen.push(d["guid"].as_str().unwrap().to_string());
        }
        let Some(link) = headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with("rel=\"next\""), "{link}");
        url = link[1..link.find('>').unwrap()].to_string();
    }
    guids.reverse();
    assert_eq!(seen, guids, "newest first, each once");
    // A token may not list them.
    let (_, _, token_body) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&jwt),
        None,
    )
    .await;
    let token = token_body["token"].as_str().unwrap();
    let (status, _, _) = call(
        "GET",
        &format!("{}/app/hook/deliveries", gh.url()),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Redelivery: the same body and GUID, marked.
    let first = gh.deliveries()[0].clone();
    let (status, _, _) = call(
        "POST",
        &format!("{}/app/hook/deliveries/{}/attempts", gh.url(), first.id),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 202);
    gh.settle().await;
    let last = gh.deliveries().pop().unwrap();
    assert_eq!(
        (last.guid.as_str(), last.redelivery),
        (first.guid.as_str(), true)
    );
    assert_eq!(last.body, first.body);
    let raw = rx.raw();
    assert_eq!(raw.len(), 6);
    assert_eq!(raw[5].1, raw[0].1);
    let (status, _, one) = call(
        "GET",
        &format!("{}/app/hook/deliveries/{}", gh.url(), last.id),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["request"]["payload"]["ref"], "refs/heads/main");
    gh.assert_honest();
}

#[tokio::test]
async fn chaos_drops_duplicates_delays_and_reorders() {
    let gh = GithubApi::start().await;
    let rx = Receiver::start().await;
    gh.set_webhook(&rx.url, SECRET);
    let inst = gh.add_installation("acme", "Organization", &[]);
    let repo = gh.add_repository(inst, "acme", "widgets", "main", false);
    let push = |n: u64| {
        gh.deliver(
            "push",
            None,
            Some(repo),
            json!({"ref": format!("refs/heads/b{n}")}),
        )
    };
    gh.set_chaos(smithers_test_support::github::Chaos::Drop);
    push(0).await;
    assert!(rx.raw().is_empty());
    let dropped = gh.deliveries().pop().unwrap();
    assert_eq!(dropped.status_code, 504);
    let (_, _, failures) = call(
        "GET",
        &format!("{}/app/hook/deliveries?status=failure", gh.url()),
        Some(&app_jwt(APP_ID)),
        None,
    )
    .await;
    assert_eq!(failures.as_array().unwrap().len(), 1);
    gh.set_chaos(smithers_test_support::github::Chaos::Duplicate);
    push(1).await;
    let raw = rx.raw();
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0].0["x-github-delivery"], raw[1].0["x-github-delivery"]);
    gh.set_chaos(smithers_test_support::github::Chaos::Late);
    push(2).await;
    push(3).await;
    assert_eq!(rx.raw().len(), 2);
    gh.flush_late().await;
    let refs: Vec<String> = rx.got()[2..]
        .iter()
        .map(|(_, p)| p["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refs, ["refs/heads/b2", "refs/heads/b3"]);
    gh.set_chaos(smithers_test_support::github::Chaos::Reorder { batch: 3, seed: 0 });
    push(4).await;
    push(5).await;
    assert_eq!(rx.raw().len(), 4);
    push(6).await;
    let refs: Vec<String> = rx.got()[4..]
        .iter()
        .map(|(_, p)| p["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refs, ["refs/heads/b6", "refs/heads/b5", "refs/heads/b4"]);
    gh.assert_honest();
}

// ---- 4. repositories over git smart HTTP --------------------------------

/// git, run off the runtime's threads (the stand-in answers on them);
/// its success and what it printed on either stream.
async fn git(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(&args)
            .current_dir(&dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// `clone_url` with `x-access-token:{token}` in it.
fn with_token(clone_url: &str, token: &str) -> String {
    clone_url.replacen("http://", &format!("http://x-access-token:{token}@"), 1)
}

async fn mint(gh: &GithubApi, inst: u64, body: Value) -> String {
    let (status, _, answer) = call(
        "POST",
        &format!("{}/app/installations/{inst}/access_tokens", gh.url()),
        Some(&app_jwt(APP_ID)),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_are_cloned_and_pushed_over_http_with_installation_tokens() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation("acme", "Organization", &[("contents", "write")]);
    let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
    let other = gh.add_repository(inst, "acme", "gadgets", "main", true);
    let sha = gh.commit(repo, "main", &[("src/lib.rs", "pub fn f() {}\n")], "Add f");
    let read = mint(
        &gh,
        inst,
        json!({"repository_ids": [repo], "permissions": {"contents": "read"}}),
    )
    .await;
    let write = mint(
        &gh,
        inst,
        json!({"repository_ids": [repo], "permissions": {"contents": "write"}}),
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let url = gh.clone_url(repo);
    assert!(url.ends_with("/acme/widgets.git"), "{url}");
    // Read: clone with a read token.
    let (ok, out) = git(w, &["clone", "-q", &with_token(&url, &read), "c"]).await;
    assert!(ok, "{out}");
    let c = w.join("c");
    assert_eq!(
        std::fs::read_to_string(c.join("src/lib.rs")).unwrap(),
        "pub fn f() {}\n"
    );
    assert_eq!(git(&c, &["rev-parse", "HEAD"]).await.1.trim(), sha);
    // No credentials, bad ones, or a repository outside the token: refused.
    let (ok, out) = git(w, &["clone", "-q", &url, "anon"]).await;
    assert!(!ok, "{out}");
    let (ok, _) = git(w, &["clone", "-q", &with_token(&url, "ghs_wrong"), "bad"]).await;
    assert!(!ok);
    let (ok, out) = git(
        w,
        &["clone", "-q", &with_token(&gh.clone_url(other), &read), "o"],
    )
    .await;
    assert!(!ok && out.contains("not found"), "{out}");
    // Push: refused with a read token, taken with a write one.
    std::fs::write(c.join("new.txt"), "new\n").unwrap();
    git(&c, &["add", "."]).await;
    git(&c, &["commit", "-q", "-m", "New"]).await;
    let (ok, out) = git(
        &c,
        &[
            "push",
            "-q",
            &with_token(&url, &read),
            "HEAD:refs/heads/work",
        ],
    )
    .await;
    assert!(
        !ok && out.contains("Write access to repository not granted"),
        "{out}"
    );
    let (ok, out) = git(
        &c,
        &[
            "push",
            "-q",
            &with_token(&url, &write),
            "HEAD:refs/heads/work",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let head = git(&c, &["rev-parse", "HEAD"]).await.1.trim().to_string();
    assert_eq!(gh.branch_sha(repo, "work"), Some(head.clone()));
    // A protected branch refuses pushes (GH006); the helper still writes.
    gh.protect_branch(repo, "main");
    let (ok, out) = git(
        &c,
        &[
            "push",
            "-q",
            &with_token(&url, &write),
            "HEAD:refs/heads/main",
        ],
    )
    .await;
    assert!(
        !ok && out.contains("GH006: Protected branch update failed for refs/heads/main"),
        "{out}"
    );
    assert_eq!(gh.branch_sha(repo, "main"), Some(sha.clone()));
    let again = gh.commit(repo, "main", &[("b", "b")], "As an administrator");
    assert_eq!(gh.branch_sha(repo, "main"), Some(again));
    // An expired token no longer reaches it.
    gh.expire_token(&write);
    let (ok, _) = git(
        &c,
        &[
            "push",
            "-q",
            &with_token(&url, &write),
            "HEAD:refs/heads/late",
        ],
    )
    .await;
    assert!(!ok);
    let git_requests: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.operation.is_none())
        .collect();
    assert!(
        git_requests
            .iter()
            .any(|r| r.auth == AuthKind::Token && r.status == 200)
    );
    assert!(git_requests.iter().any(|r| r.status == 401));
    gh.assert_honest();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_and_branches_over_rest() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation("acme", "Organization", &[("contents", "read")]);
    let repo = gh.add_repository(inst, "acme", "widgets", "trunk", false);
    let token = mint(&gh, inst, json!({})).await;
    let (status, _, r) = call(
        "GET",
        &format!("{}/repos/acme/widgets", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["default_branch"], "trunk");
    assert_eq!(r["private"], false);
    assert_eq!(r["owner"]["login"], "acme");
    assert_eq!(r["owner"]["type"], "Organization");
    let sha = gh.commit(repo, "feature/x", &[("f", "f")], "On a branch with a slash");
    gh.protect_branch(repo, "trunk");
    let (status, _, b) = call(
        "GET",
        &format!("{}/repos/acme/widgets/branches/trunk", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["name"], "trunk");
    assert_eq!(b["protected"], true);
    assert_eq!(b["protection"]["enabled"], true);
    assert_eq!(b["commit"]["sha"], gh.branch_sha(repo, "trunk").unwrap());
    let (status, _, b) = call(
        "GET",
        &format!("{}/repos/acme/widgets/branches/feature/x", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        (b["commit"]["sha"].as_str(), b["protected"].as_bool()),
        (Some(sha.as_str()), Some(false))
    );
    let (status, _, b) = call(
        "GET",
        &format!("{}/repos/acme/widgets/branches/none", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (status, b["message"].as_str()),
        (404, Some("Branch not found"))
    );
    gh.assert_honest();
}

// ---- 5. statuses and pull requests ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_statuses_are_set_and_listed() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation(
        "acme",
        "Organization",
        &[("statuses", "write"), ("contents", "read")],
    );
    let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
    let sha = gh.branch_sha(repo, "main").unwrap();
    let token = mint(&gh, inst, json!({"permissions": {"statuses": "write"}})).await;
    let url = format!("{}/repos/acme/widgets/statuses/{sha}", gh.url());
    for state in ["pending", "success"] {
        let (status, _, s) = call(
            "POST",
            &url,
            Some(&token),
            Some(json!({"state": state, "context": "smithers/ci", "description": "Run 1", "target_url": "https://smithers.example/runs/1"})),
        )
        .await;
        assert_eq!(status, 201, "{s}");
        assert_eq!(s["state"], state);
        assert_eq!(s["creator"]["login"], "smithers-test[bot]");
    }
    let (status, _, list) = call(
        "GET",
        &format!("{}/repos/acme/widgets/commits/main/statuses", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["success", "pending"], "newest first");
    let kept = gh.statuses();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        (kept[1].sha.as_str(), kept[1].context.as_str()),
        (sha.as_str(), "smithers/ci")
    );
    // A commit that is not there.
    let (status, _, body) = call(
        "POST",
        &format!(
            "{}/repos/acme/widgets/statuses/{}",
            gh.url(),
            "0".repeat(40)
        ),
        Some(&token),
        Some(json!({"state": "success"})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("No commit found for SHA")
    );
    // Without statuses: write.
    let read_only = mint(&gh, inst, json!({"permissions": {"contents": "read"}})).await;
    let (status, _, body) = call(
        "POST",
        &url,
        Some(&read_only),
        Some(json!({"state": "failure"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], "Resource not accessible by integration");
    assert_eq!(gh.statuses().len(), 2);
    gh.assert_honest();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_are_opened_found_and_updated_as_github_refuses_them() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation(
        "acme",
        "Organization",
        &[("pull_requests", "write"), ("contents", "write")],
    );
    let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
    let head = gh.commit(repo, "smithers/run-1", &[("a", "a")], "Run 1");
    let token = mint(&gh, inst, json!({})).await;
    let pulls = format!("{}/repos/acme/widgets/pulls", gh.url());
    let create = |body: Value| {
        let (pulls, token) = (pulls.clone(), token.clone());
        async move { call("POST", &pulls, Some(&token), Some(body)).await }
    };
    let body = json!({"title": "Run 1", "head": "smithers/run-1", "base": "main", "body": "Made by Smithers"});
    // The answer is lost but the pull request is made: a blind retry
    // finds it already there.
    gh.fail_after_effect("POST", "/repos/{owner}/{repo}/pulls", 502, 1);
    let (status, _, _) = create(body.clone()).await;
    assert_eq!(status, 502);
    assert_eq!(gh.pulls().len(), 1);
    let (status, _, refused) = create(body.clone()).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["errors"][0]["message"],
        "A pull request already exists for acme:smithers/run-1."
    );
    // A 502 before the effect makes nothing.
    gh.fail_next("POST", "/repos/{owner}/{repo}/pulls", 502, 1);
    gh.commit(repo, "smithers/run-2", &[("b", "b")], "Run 2");
    let (status, _, _) =
        create(json!({"title": "Run 2", "head": "smithers/run-2", "base": "main"})).await;
    assert_eq!(status, 502);
    assert_eq!(gh.pulls().len(), 1);
    // A head that does not exist, or nothing between head and base.
    let (status, _, b) = create(json!({"title": "x", "head": "nope", "base": "main"})).await;
    assert_eq!(
        (status, b["errors"][0]["field"].as_str()),
        (422, Some("head"))
    );
    gh.commit(repo, "empty", &[], "Nothing");
    let main = gh.branch_sha(repo, "main").unwrap();
    let (ok, _) = git(
        &gh.repo_path(repo),
        &["update-ref", "refs/heads/empty", &main],
    )
    .await;
    assert!(ok);
    let (status, _, b) = create(json!({"title": "x", "head": "empty", "base": "main"})).await;
    assert_eq!(status, 422);
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("No commits between"),
        "{b}"
    );
    // Found by head, read, closed, reopened.
    let (status, _, list) = call(
        "GET",
        &format!("{pulls}?head=acme:smithers/run-1&state=open"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["head"]["sha"], head);
    let n = list[0]["number"].as_u64().unwrap();
    let (_, _, none) = call(
        "GET",
        &format!("{pulls}?head=acme:other&state=all"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(none, json!([]));
    let (status, _, pr) = call("GET", &format!("{pulls}/{n}"), Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            pr["title"].as_str(),
            pr["body"].as_str(),
            pr["state"].as_str()
        ),
        (Some("Run 1"), Some("Made by Smithers"), Some("open"))
    );
    assert_eq!(pr["user"]["login"], "smithers-test[bot]");
    let (status, _, pr) = call(
        "PATCH",
        &format!("{pulls}/{n}"),
        Some(&token),
        Some(json!({"state": "closed", "title": "Run 1 (closed)"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (pr["state"].as_str(), pr["title"].as_str()),
        (Some("closed"), Some("Run 1 (closed)"))
    );
    assert!(pr["closed_at"].is_string());
    let (_, _, open) = call(
        "GET",
        &format!("{pulls}?head=acme:smithers/run-1"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(open, json!([]));
    let (status, _, pr) = call(
        "PATCH",
        &format!("{pulls}/{n}"),
        Some(&token),
        Some(json!({"state": "open"})),
    )
    .await;
    assert_eq!((status, pr["state"].as_str()), (200, Some("open")));
    assert_eq!(
        call("GET", &format!("{pulls}/99"), Some(&token), None)
            .await
            .0,
        404
    );
    // Without pull_requests: write.
    let read = mint(&gh, inst, json!({"permissions": {"pull_requests": "read"}})).await;
    let (status, _, _) = call(
        "POST",
        &pulls,
        Some(&read),
        Some(json!({"title": "t", "head": "smithers/run-2", "base": "main"})),
    )
    .await;
    assert_eq!(status, 403);
    gh.assert_honest();
}

// ---- 6. members and teams -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_teams_are_listed_paged_and_conditionally() {
    let gh = GithubApi::start().await;
    let inst = gh.add_installation("acme", "Organization", &[("members", "read")]);
    for (i, login) in ["ada", "brian", "carol", "dennis", "edsger"]
        .iter()
        .enumerate()
    {
        gh.add_member("acme", login, 500 + i as u64);
    }
    gh.add_team("acme", "platform");
    gh.add_team_member("acme", "platform", "ada");
    gh.add_team_member("acme", "platform", "carol");
    let token = mint(&gh, inst, json!({})).await;
    let mut url = format!("{}/orgs/acme/members?per_page=2", gh.url());
    let mut logins = Vec::new();
    loop {
        let (status, headers, page) = call("GET", &url, Some(&token), None).await;
        assert_eq!(status, 200, "{page}");
        logins.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|u| u["login"].as_str().unwrap().to_string()),
        );
        let Some(link) = headers.get("link").map(|l| l.to_str().unwrap().to_string()) else {
            break;
        };
        let next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .unwrap();
        url = next[1..next.find('>').unwrap()].to_string();
    }
    assert_eq!(logins, ["ada", "brian", "carol", "dennis", "edsger"]);
    // A conditional request: 304, not counted.
    let url = format!("{}/orgs/acme/members", gh.url());
    let (_, headers, _) = call("GET", &url, Some(&token), None).await;
    let etag = headers["etag"].to_str().unwrap().to_string();
    let remaining = headers["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = client()
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);
    assert_eq!(
        resp.headers()["x-ratelimit-remaining"].to_str().unwrap(),
        remaining
    );
    // A change: a new ETag.
    gh.remove_member("acme", "brian");
    let resp = client()
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, _, teams) = call(
        "GET",
        &format!("{}/orgs/acme/teams", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{teams}");
    assert_eq!(teams[0]["slug"], "platform");
    let (status, _, members) = call(
        "GET",
        &format!("{}/orgs/acme/teams/platform/members", gh.url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let logins: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["ada", "carol"]);
    assert_eq!(
        call(
            "GET",
            &format!("{}/orgs/acme/teams/none/members", gh.url()),
            Some(&token),
            None
        )
        .await
        .0,
        404
    );
    // Another organization, or no members: read.
    gh.add_member("umbrella", "wesker", 9);
    assert_eq!(
        call(
            "GET",
            &format!("{}/orgs/umbrella/members", gh.url()),
            Some(&token),
            None
        )
        .await
        .0,
        404
    );
    let other = gh.add_installation("initech", "Organization", &[("contents", "read")]);
    gh.add_member("initech", "peter", 10);
    let no_members = mint(&gh, other, json!({})).await;
    let (status, _, body) = call(
        "GET",
        &format!("{}/orgs/initech/members", gh.url()),
        Some(&no_members),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Resource not accessible by integration"))
    );
    gh.assert_honest();
}
