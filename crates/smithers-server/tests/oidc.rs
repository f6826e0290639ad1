//! Signing in with an OpenID Connect provider, on both backends, against a
//! real one: panva's `oidc-provider` (npm, pinned in tests/oidc/), started
//! on a loopback port with two clients, one whose ID tokens are RS256 and
//! one ES256, PKCE required. The test is the browser: it follows every
//! redirect itself and fills in the provider's login and consent pages.
//!
//! A user of the organization signs in (`user.login`, method `oidc`, the
//! issuer and subject); the same callback again, a state this server never
//! gave, a callback from another browser and the provider's own refusal
//! are refused; a person who is no user is refused and recorded
//! (`user.login_failed` with the provider's subject). Tokens that are
//! tampered with or carry another nonce are the service layer's unit
//! tests (`smithers_app`'s `oidc` module): this provider signs only what
//! it should.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use smithers_api::Role;
use smithers_app::{Config, OidcSettings, OidcSignIn, UserClaim};
use smithers_server::{SESSION_COOKIE, Settings};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends};

/// The environment variable naming the `node_modules` directory that holds
/// `oidc-provider` (`scripts/test` installs it and sets this).
const MODULES_ENV: &str = "SMITHERS_TEST_OIDC_MODULES";

const STATE_COOKIE: &str = "__Host-smithers-oidc-state";

/// The provider, stopped when dropped.
struct Provider {
    issuer: String,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider with `clients` (oidc-provider client metadata) and
/// more `options` of its configuration, and waits for it to say its
/// issuer.
async fn provider(clients: Value, options: Value) -> Provider {
    let modules = std::env::var(MODULES_ENV).unwrap_or_else(|_| {
        panic!(
            "{MODULES_ENV} is not set: these tests need the OpenID provider that \
             scripts/test installs (scripts/lib.sh ensure_oidc_provider) and names there"
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(script)
            .arg(clients.to_string())
            .arg(options.to_string())
            .env(MODULES_ENV, modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (scripts/lib.sh ensure_oidc_provider installs it)");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let Some(issuer) = line.trim().strip_prefix("issuer ") else {
            let _ = child.kill();
            let mut said = String::new();
            let _ = stderr.read_to_string(&mut said);
            panic!("the OpenID provider did not start: {line}{said}");
        };
        // Both pipes drained to the end: a provider that cannot write
        // would stop, or die of a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Provider {
            issuer: issuer.to_string(),
            child,
        }
    })
    .await
    .unwrap()
}

/// A browser's cookies, by name (the provider's; Smithers' are read from
/// the responses).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_string()).unwrap();
            let gone =
                cookie.max_age().is_some_and(|age| age.is_zero()) || cookie.value().is_empty();
            if gone {
                self.0.remove(cookie.name());
            } else {
                self.0
                    .insert(cookie.name().to_string(), cookie.value().to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "{response:?}");
    response.headers()[LOCATION].to_str().unwrap().to_string()
}

/// `to`, made absolute against `base` when it is a path.
fn absolute(base: &str, to: &str) -> String {
    if to.starts_with('/') {
        format!("{base}{to}")
    } else {
        to.to_string()
    }
}

/// A sign-in begun at Smithers: the provider's authorization URL and the
/// state cookie Smithers set.
async fn begin(http: &reqwest::Client, base: &str) -> (String, String) {
    let answer = http
        .get(format!("{base}/sign-in/oidc"))
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

/// At the provider, as `login`: from the authorization URL through its
/// login and consent pages to the redirect back to Smithers (its URL).
async fn at_provider(http: &reqwest::Client, issuer: &str, authorize: &str, login: &str) -> String {
    let mut jar = Jar::default();
    let mut url = authorize.to_string();
    for _ in 0..10 {
        let answer = http
            .get(&url)
            .header(COOKIE, jar.header())
            .send()
            .await
            .unwrap();
        jar.take(&answer);
        if answer.status().is_redirection() {
            let to = answer.headers()[LOCATION].to_str().unwrap().to_string();
            if to.contains("/sign-in/oidc/callback") {
                return to;
            }
            url = absolute(issuer, &to);
            continue;
        }
        // An interaction page: the login form, then the consent form,
        // each posted back to the page's own address.
        assert_eq!(answer.status(), 200, "{url}");
        let page = answer.text().await.unwrap();
        let form: &[(&str, &str)] = if page.contains(r#"name="login""#) {
            &[("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            assert!(page.contains(r#"value="consent""#), "{page}");
            &[("prompt", "consent")]
        };
        let posted = http
            .post(&url)
            .header(COOKIE, jar.header())
            .form(form)
            .send()
            .await
            .unwrap();
        jar.take(&posted);
        assert!(posted.status().is_redirection(), "{url}: {posted:?}");
        url = absolute(issuer, posted.headers()[LOCATION].to_str().unwrap());
    }
    panic!("the provider never sent the browser back");
}

/// The callback at Smithers with the state cookie `state`.
async fn callback(http: &reqwest::Client, url: &str, state: &str) -> reqwest::Response {
    http.get(url)
        .header(COOKIE, format!("{STATE_COOKIE}={state}"))
        .send()
        .await
        .unwrap()
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

/// Smithers and the provider (with more `options`), with the client
/// `client_id` of the provider configured.
async fn served(
    db: &TestDb,
    client_id: &str,
    alg: &str,
    options: Value,
) -> (common::Server, Provider) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let redirect_uri = format!("{base}/sign-in/oidc/callback");
    let provider = provider(
        json!([{
            "client_id": client_id,
            "client_secret": "a-test-client-secret",
            "redirect_uris": [redirect_uri],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": alg,
        }]),
        options,
    )
    .await;
    let oidc = OidcSignIn::new(OidcSettings {
        issuer: provider.issuer.clone(),
        client_id: client_id.into(),
        client_secret: Some("a-test-client-secret".into()),
        organization: DEFAULT_ORGANIZATION.into(),
        user_claim: UserClaim::PreferredUsername,
        redirect_uri,
    })
    .unwrap();
    let settings = Settings {
        oidc: Some(Arc::new(oidc)),
        ..Settings::default()
    };
    let server = common::serve_on(db, Config::default(), listener, settings).await;
    (server, provider)
}

on_both_backends!(a_user_signs_in_with_the_provider_once, |db| {
    // The name comes from the user info endpoint (the provider's default:
    // profile claims are not in the ID token), then from the ID token.
    let runs = [
        ("smithers-rs", "RS256", json!({})),
        (
            "smithers-es",
            "ES256",
            json!({"conformIdTokenClaims": false}),
        ),
    ];
    for (client_id, alg, options) in runs {
        let (s, provider) = served(db, client_id, alg, options).await;
        let http = no_redirects();
        let before = logins(&s.app).await.len();

        // The sign-in page offers the provider.
        let page = http
            .get(format!("{}/sign-in", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let host = provider.issuer.trim_start_matches("http://");
        assert!(page.contains(&format!("Sign in with {host}")), "{page}");

        let (authorize, state) = begin(&http, &s.base).await;
        assert!(authorize.starts_with(&provider.issuer), "{authorize}");
        for parameter in [
            "response_type=code",
            "code_challenge_method=S256",
            "code_challenge=",
            "nonce=",
            "scope=openid+profile",
            &format!("client_id={client_id}"),
        ] {
            assert!(authorize.contains(parameter), "{parameter}: {authorize}");
        }
        let back = at_provider(&http, &provider.issuer, &authorize, "admin").await;
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
        let secret = session.split(';').next().unwrap();
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
        // The session reaches the API.
        let runs = http
            .get(format!("{}/api/v1/runs", s.base))
            .header(COOKIE, format!("{SESSION_COOKIE}={secret}"))
            .send()
            .await
            .unwrap();
        assert_eq!(runs.status(), 200);

        // The same callback again is refused, and recorded.
        let again = callback(&http, &back, &state).await;
        assert_eq!(again.status(), 401);
        assert!(again.text().await.unwrap().contains("was used already"));

        let log = logins(&s.app).await.split_off(before);
        let actions: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(actions, ["user.login", "user.login_failed"], "{log:?}");
        let (_, actor, details) = &log[0];
        assert_eq!(actor, "admin");
        assert_eq!(details["method"], "oidc");
        assert_eq!(details["issuer"], provider.issuer.as_str());
        assert_eq!(details["subject"], "admin");
        assert_eq!(log[1].2["why"], "was used already");
        // No code, state or secret in the log.
        let all = serde_json::to_string(&log).unwrap();
        let code = back
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        for secret in [code, state.as_str(), "a-test-client-secret", secret] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }
});

on_both_backends!(forged_or_foreign_callbacks_are_refused, |db| {
    let (s, provider) = served(db, "smithers-rs", "RS256", json!({})).await;
    let http = no_redirects();

    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_provider(&http, &provider.issuer, &authorize, "admin").await;
    let before = logins(&s.app).await.len();

    // A state this server never gave (with a cookie to match): refused,
    // with nobody to record it against.
    let forged = back.replace(&state, "forged-state");
    assert_ne!(forged, back);
    let answer = callback(&http, &forged, "forged-state").await;
    assert_eq!(answer.status(), 401);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("is not one of this server's")
    );
    // The right state from a browser that did not begin it (login CSRF):
    // no cookie, or another one.
    for cookie in ["", "another-browsers-state"] {
        let answer = callback(&http, &back, cookie).await;
        assert_eq!(answer.status(), 401);
        assert!(
            answer
                .text()
                .await
                .unwrap()
                .contains("not begun in this browser")
        );
    }
    // No state at all.
    let answer = callback(
        &http,
        &format!("{}/sign-in/oidc/callback?code=x", s.base),
        "",
    )
    .await;
    assert_eq!(answer.status(), 401);
    assert_eq!(logins(&s.app).await.len(), before, "nothing recorded");

    // The sign-in itself was left alone: its own browser still signs in.
    let answer = callback(&http, &back, &state).await;
    assert_eq!(location(&answer), "/");

    // The provider's refusal (the person cancelled): a page, recorded.
    let (authorize, state) = begin(&http, &s.base).await;
    let denied = format!(
        "{}/sign-in/oidc/callback?error=access_denied&error_description=End-User+aborted&state={state}",
        s.base
    );
    let _ = authorize;
    let answer = callback(&http, &denied, &state).await;
    assert_eq!(answer.status(), 401);
    assert!(answer.text().await.unwrap().contains("access_denied"));
    let log = logins(&s.app).await;
    let (action, _, details) = log.last().unwrap();
    assert_eq!(action, "user.login_failed");
    assert_eq!(details["method"], "oidc");
    assert!(
        details["why"].as_str().unwrap().contains("access_denied"),
        "{details}"
    );
});

on_both_backends!(a_person_who_is_no_user_is_refused_and_recorded, |db| {
    let (s, provider) = served(db, "smithers-rs", "RS256", json!({})).await;
    let http = no_redirects();
    let admin = common::principal(&s.app, "admin").await;
    s.app
        .users()
        .add(&admin, "alice", Role::Member)
        .await
        .unwrap();

    // A user added is a user who signs in.
    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_provider(&http, &provider.issuer, &authorize, "alice").await;
    assert_eq!(location(&callback(&http, &back, &state).await), "/");

    // Nobody is made: a person the organization does not know is refused.
    let before = logins(&s.app).await.len();
    let (authorize, state) = begin(&http, &s.base).await;
    let back = at_provider(&http, &provider.issuer, &authorize, "mallory").await;
    let answer = callback(&http, &back, &state).await;
    assert_eq!(answer.status(), 401);
    let page = answer.text().await.unwrap();
    assert!(page.contains("not a user of organization"), "{page}");
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
    assert_eq!(details["subject"], "mallory");
    assert_eq!(details["claimed_user"], "mallory");
    assert_eq!(details["issuer"], provider.issuer.as_str());
    assert!(
        details["why"].as_str().unwrap().contains("not a user"),
        "{details}"
    );
});
