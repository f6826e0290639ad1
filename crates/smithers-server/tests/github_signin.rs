//! Signing in with GitHub, on both backends, against the GitHub stand-in
//! of `smithers_test_support::github_oauth` (GitHub cannot be reached from
//! a test; the stand-in's answers are checked against GitHub's published
//! shapes in that crate's tests). The test is the browser: it follows
//! every redirect itself. GitHub's web and API are at the stand-in, the
//! API under `/api/v3` as on a GitHub Enterprise Server.
//!
//! A GitHub user who is a user of the organization signs in (`user.login`,
//! method `github`, the GitHub login and id); the same callback again, a
//! state this server never gave and a callback from another browser are
//! refused; a verifier GitHub does not take, GitHub's own refusals and a
//! GitHub user who is no user here are refused and recorded
//! (`user.login_failed`). No user access token is ever in the audit log
//! or an answer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::sync::Arc;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use smithers_api::Role;
use smithers_app::{Config, GithubSettings, GithubSignIn};
use smithers_server::{SESSION_COOKIE, Settings};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION};
use smithers_test_support::github_oauth::{CLIENT_ID, CLIENT_SECRET, GithubStandIn};
use smithers_test_support::{TestDb, on_both_backends};

const STATE_COOKIE: &str = "__Host-smithers-github-state";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    assert!(
        response.status() == 303 || response.status() == 302,
        "{response:?}"
    );
    response.headers()[LOCATION].to_str().unwrap().to_string()
}

/// Everything an answer said: status, headers and body.
async fn said(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let body = response.text().await.unwrap();
    (status, format!("{headers}\n{body}"))
}

/// The `user.login*` events of the default organization: action, actor
/// and details.
async fn logins(app: &smithers_app::App) -> Vec<(String, String, Value)> {
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
        .filter(|e| e.event.action.starts_with("user.login"))
        .map(|e| (e.event.action, e.event.actor_id, e.event.details))
        .collect()
}

/// Smithers with the stand-in as its GitHub, and the user `octocat`.
async fn served(db: &TestDb) -> (common::Server, GithubStandIn) {
    let github = GithubStandIn::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sign_in = GithubSignIn::new(GithubSettings {
        web_url: github.base.clone(),
        api_url: format!("{}/api/v3", github.base),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        organization: DEFAULT_ORGANIZATION.into(),
        redirect_uri: format!("{base}/sign-in/github/callback"),
    })
    .unwrap();
    let settings = Settings {
        github: Some(Arc::new(sign_in)),
        ..Settings::default()
    };
    let server = common::serve_on(db, Config::default(), listener, settings).await;
    let admin = common::principal(&server.app, "admin").await;
    server
        .app
        .users()
        .add(&admin, "octocat", Role::Member)
        .await
        .unwrap();
    (server, github)
}

/// A sign-in begun at Smithers: GitHub's authorization URL and the state
/// cookie Smithers set.
async fn begin(http: &reqwest::Client, base: &str) -> (String, String) {
    let answer = http
        .get(format!("{base}/sign-in/github"))
        .send()
        .await
        .unwrap();
    let to = location(&answer);
    let set = answer.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = cookie::Cookie::parse(set.clone()).unwrap();
    assert_eq!(cookie.name(), STATE_COOKIE, "{set}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    (to, cookie.value().to_string())
}

/// At GitHub, as `login`: the redirect back to Smithers (its URL).
async fn at_github(
    http: &reqwest::Client,
    github: &GithubStandIn,
    authorize: &str,
    login: &str,
) -> String {
    github.sign_in_as(login);
    let answer = http.get(authorize).send().await.unwrap();
    location(&answer)
}

/// The callback at Smithers with the state cookie `state`.
async fn callback(http: &reqwest::Client, url: &str, state: &str) -> reqwest::Response {
    http.get(url)
        .header(COOKIE, format!("{STATE_COOKIE}={state}"))
        .send()
        .await
        .unwrap()
}

on_both_backends!(a_github_user_signs_in_once, |db| {
    let (s, github) = served(db).await;
    let http = no_redirects();
    let before = logins(&s.app).await.len();
    let mut answers = Vec::new();

    // The sign-in page offers GitHub.
    let page = http
        .get(format!("{}/sign-in", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with GitHub"), "{page}");
    assert!(page.contains(r#"href="/sign-in/github""#), "{page}");

    let (authorize, state) = begin(&http, &s.base).await;
    let url = reqwest::Url::parse(&authorize).unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/login/oauth/authorize", github.base)
    );
    let query: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(
        query["redirect_uri"],
        format!("{}/sign-in/github/callback", s.base)
    );
    assert_eq!(query["state"], state);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);

    let back = at_github(&http, &github, &authorize, "octocat").await;
    assert!(back.starts_with(&s.base), "{back}");
    let answer = callback(&http, &back, &state).await;
    assert_eq!(location(&answer), "/");
    let cookies: Vec<String> = answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    let secret = session.split(';').next().unwrap().to_string();
    assert!(
        secret.starts_with(smithers_app::SESSION_PREFIX),
        "{session}"
    );
    // The state cookie is spent.
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{STATE_COOKIE}=;"))),
        "{cookies:?}"
    );
    answers.push(said(answer).await.1);
    // The session reaches the API, as octocat.
    let me = http
        .get(format!("{}/api/v1/runs", s.base))
        .header(COOKIE, format!("{SESSION_COOKIE}={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // What GitHub was sent: the code redeemed with the verifier, asking
    // for JSON; the user asked for with the token and the API version.
    let requests = github.requests();
    let redeem = requests
        .iter()
        .find(|r| r.path == "/login/oauth/access_token")
        .unwrap();
    for field in [
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "code_verifier",
    ] {
        assert!(redeem.form.contains_key(field), "{field}: {redeem:?}");
    }
    let header = |r: &smithers_test_support::github_oauth::Request, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header(redeem, "accept"), "application/json");
    let user = requests.iter().find(|r| r.path == "/user").unwrap();
    assert_eq!(header(user, "accept"), "application/vnd.github+json");
    assert_eq!(header(user, "x-github-api-version"), "2022-11-28");
    let tokens = github.tokens();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        header(user, "authorization"),
        format!("Bearer {}", tokens[0])
    );

    // The same callback again is refused, and recorded.
    let (status, again) = said(callback(&http, &back, &state).await).await;
    assert_eq!(status, 401);
    assert!(again.contains("was used already"), "{again}");
    answers.push(again);

    let log = logins(&s.app).await.split_off(before);
    let actions: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions, ["user.login", "user.login_failed"], "{log:?}");
    let (_, actor, details) = &log[0];
    assert_eq!(actor, "octocat");
    assert_eq!(details["method"], "github");
    assert_eq!(details["github_login"], "octocat");
    assert_eq!(details["github_id"], 1);
    assert_eq!(details["github"], github.base.as_str());
    assert_eq!(log[1].2["method"], "github");
    assert_eq!(log[1].2["why"], "was used already");

    // No token, code, state or secret in the log or an answer.
    let all = serde_json::to_string(&log).unwrap();
    let code = redeem.form["code"].clone();
    for secret in [
        tokens[0].as_str(),
        code.as_str(),
        state.as_str(),
        CLIENT_SECRET,
        secret.as_str(),
    ] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
    for answer in &answers {
        assert!(!answer.contains(&tokens[0]), "{answer}");
        assert!(!answer.contains(CLIENT_SECRET), "{answer}");
    }
});

on_both_backends!(forged_or_foreign_callbacks_are_refused, |db| {
    let (s, github) = served(db).await;
    let http = no_redirects();
    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_github(&http, &github, &authorize, "octocat").await;
    let before = logins(&s.app).await.len();

    // A state this server never gave (with a cookie to match): refused,
    // with nobody to record it against.
    let forged = back.replace(&state, "forged-state");
    assert_ne!(forged, back);
    let (status, page) = said(callback(&http, &forged, "forged-state").await).await;
    assert_eq!(status, 401);
    assert!(
        page.contains("is not one of this server&#39;s")
            || page.contains("is not one of this server's"),
        "{page}"
    );
    // The right state from a browser that did not begin it (login CSRF).
    for cookie in ["", "another-browsers-state"] {
        let (status, page) = said(callback(&http, &back, cookie).await).await;
        assert_eq!(status, 401);
        assert!(page.contains("not begun in this browser"), "{page}");
    }
    assert_eq!(logins(&s.app).await.len(), before, "nothing recorded");
    // The code was never redeemed: its own browser still signs in.
    assert_eq!(location(&callback(&http, &back, &state).await), "/");

    // GitHub's refusal (the person cancelled): a page, recorded.
    let (_, state) = begin(&http, &s.base).await;
    let denied = format!(
        "{}/sign-in/github/callback?error=access_denied&error_description=The+user+has+denied+your+application+access.&state={state}",
        s.base
    );
    let (status, page) = said(callback(&http, &denied, &state).await).await;
    assert_eq!(status, 401);
    assert!(page.contains("access_denied"), "{page}");
    let log = logins(&s.app).await;
    let (action, _, details) = log.last().unwrap();
    assert_eq!(action, "user.login_failed");
    assert_eq!(details["method"], "github");
    assert!(
        details["why"].as_str().unwrap().contains("access_denied"),
        "{details}"
    );
});

on_both_backends!(
    a_verifier_github_does_not_take_is_refused_and_recorded,
    |db| {
        let (s, github) = served(db).await;
        let http = no_redirects();
        // GitHub will check the code against another verifier's challenge.
        github.expect_verifier("not-the-verifier-this-server-began-with-0000");
        let before = logins(&s.app).await.len();
        let (authorize, state) = begin(&http, &s.base).await;
        let back = at_github(&http, &github, &authorize, "octocat").await;
        let (status, page) = said(callback(&http, &back, &state).await).await;
        assert_eq!(status, 401);
        assert!(page.contains("bad_verification_code"), "{page}");
        assert!(github.tokens().is_empty());
        let log = logins(&s.app).await.split_off(before);
        assert_eq!(log.len(), 1, "{log:?}");
        let (action, actor, details) = &log[0];
        assert_eq!(action, "user.login_failed");
        assert_eq!(actor, "anonymous");
        assert_eq!(details["method"], "github");
        assert!(
            details["why"]
                .as_str()
                .unwrap()
                .contains("bad_verification_code"),
            "{details}"
        );
    }
);

on_both_backends!(githubs_error_answer_is_refused_and_recorded, |db| {
    let (s, github) = served(db).await;
    let http = no_redirects();
    // The App's secret was changed at GitHub: every code is refused, with
    // HTTP 200 and an `error` member.
    github.set_client_secret("a-secret-rotated-at-github");
    let before = logins(&s.app).await.len();
    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_github(&http, &github, &authorize, "octocat").await;
    let (status, page) = said(callback(&http, &back, &state).await).await;
    assert_eq!(status, 401);
    assert!(page.contains("incorrect_client_credentials"), "{page}");
    assert!(!page.contains(CLIENT_SECRET));
    let log = logins(&s.app).await.split_off(before);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, "user.login_failed");
    assert!(
        log[0].2["why"]
            .as_str()
            .unwrap()
            .contains("incorrect_client_credentials"),
        "{log:?}"
    );
    assert!(!serde_json::to_string(&log).unwrap().contains(CLIENT_SECRET));
});

on_both_backends!(a_github_user_who_is_no_user_is_refused_and_recorded, |db| {
    let (s, github) = served(db).await;
    let http = no_redirects();
    let before = logins(&s.app).await.len();
    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_github(&http, &github, &authorize, "mallory").await;
    let (status, page) = said(callback(&http, &back, &state).await).await;
    assert_eq!(status, 401);
    assert!(page.contains("not a user of organization"), "{page}");
    // Nobody is made.
    assert!(
        s.app
            .principal(DEFAULT_ORGANIZATION, "mallory", smithers_app::Via::Cli)
            .await
            .is_err()
    );
    let log = logins(&s.app).await.split_off(before);
    assert_eq!(log.len(), 1, "{log:?}");
    let (action, actor, details) = &log[0];
    assert_eq!(action, "user.login_failed");
    assert_eq!(actor, "anonymous");
    assert_eq!(details["method"], "github");
    assert_eq!(details["github_login"], "mallory");
    assert_eq!(details["github_id"], 666);
    // The token was issued, and used once, and is nowhere here.
    let tokens = github.tokens();
    assert_eq!(tokens.len(), 1);
    assert!(!serde_json::to_string(&log).unwrap().contains(&tokens[0]));
    assert!(!page.contains(&tokens[0]));
});
