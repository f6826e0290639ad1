//! A local stand-in for GitHub's side of a GitHub App's web application
//! flow (GitHub cannot be reached from a test), answering as GitHub Docs
//! describe it ("Generating a user access token for a GitHub App";
//! "Troubleshooting OAuth app access token request errors"; REST API
//! "Get the authenticated user"):
//!
//! - `GET /login/oauth/authorize`: the person (set by
//!   [`GithubStandIn::sign_in_as`]) authorizes at once; the browser is
//!   sent back to `redirect_uri` with a `code` and the `state`, the code
//!   remembering the client, the redirect URI and the PKCE challenge
//!   (only `S256` is taken);
//! - `POST /login/oauth/access_token`: checks the client id and secret,
//!   the code (once), the redirect URI and the verifier against the
//!   challenge (RFC 7636 §4.6), and answers GitHub's JSON — a token, or
//!   `error`, `error_description` and `error_uri` with HTTP 200, as
//!   GitHub does — when asked for JSON, a form otherwise;
//! - `GET /user` (served under `/api/v3` too, as a GitHub Enterprise
//!   Server does): with `Authorization: Bearer TOKEN`, the user in the
//!   shape of the published `private-user` schema (the test
//!   `user_matches_the_published_schema` checks it against the fixture
//!   `tests/fixtures/github-private-user.schema.json`); `401 Bad
//!   credentials` otherwise.
//!
//! Every request's path, form fields and headers are kept, for a test to
//! look at what was sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The GitHub App's client id the stand-in knows.
pub const CLIENT_ID: &str = "Iv23liTestClient0001";

/// Its client secret.
pub const CLIENT_SECRET: &str = "test-github-client-secret-0123456789abcdef";

/// What a user access token starts with (GitHub's prefix for one).
pub const TOKEN_PREFIX: &str = "ghu_";

/// A code granted and not yet redeemed.
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    login: String,
}

/// A GitHub account.
#[derive(Debug, Clone)]
pub struct Account {
    pub login: String,
    pub id: u64,
}

#[derive(Default)]
struct Inner {
    client_secret: String,
    accounts: Vec<Account>,
    signing_in: Option<String>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, String>,
    /// The verifier the next grants are checked against instead of the
    /// one whose challenge the client sent.
    expect_verifier: Option<String>,
    requests: Vec<Request>,
}

/// A request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub form: HashMap<String, String>,
}

/// The stand-in, serving until dropped.
pub struct GithubStandIn {
    /// `http://127.0.0.1:PORT`: both the web and the API base.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GithubStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GithubStandIn {
    /// Starts the stand-in on a loopback port with the accounts `octocat`
    /// (id 1) and `mallory` (id 666).
    pub async fn start() -> GithubStandIn {
        let inner = Arc::new(Mutex::new(Inner {
            client_secret: CLIENT_SECRET.to_string(),
            accounts: vec![
                Account {
                    login: "octocat".into(),
                    id: 1,
                },
                Account {
                    login: "mallory".into(),
                    id: 666,
                },
            ],
            ..Inner::default()
        }));
        let api = Router::new().route("/user", get(user));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .merge(api.clone())
            .nest("/api/v3", api)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GithubStandIn { base, inner, task }
    }

    /// Adds an account.
    pub fn add_account(&self, login: &str, id: u64) {
        self.inner.lock().unwrap().accounts.push(Account {
            login: login.into(),
            id,
        });
    }

    /// Who authorizes at the next `/login/oauth/authorize`.
    pub fn sign_in_as(&self, login: &str) {
        self.inner.lock().unwrap().signing_in = Some(login.into());
    }

    /// Codes granted from now on are checked against this verifier
    /// rather than the client's challenge: a client whose verifier is
    /// not the one it began with.
    pub fn expect_verifier(&self, verifier: &str) {
        self.inner.lock().unwrap().expect_verifier = Some(verifier.into());
    }

    /// The App's client secret changes (the one configured is no longer
    /// right).
    pub fn set_client_secret(&self, secret: &str) {
        self.inner.lock().unwrap().client_secret = secret.into();
    }

    /// The user access tokens issued.
    pub fn tokens(&self) -> Vec<String> {
        self.inner.lock().unwrap().tokens.keys().cloned().collect()
    }

    /// The requests answered, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn keep(inner: &mut Inner, path: &str, headers: &HeaderMap, form: HashMap<String, String>) {
    inner.requests.push(Request {
        path: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        form,
    });
}

fn random() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

async fn authorize(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    keep(
        &mut inner,
        "/login/oauth/authorize",
        &headers,
        query.clone(),
    );
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID {
        return (StatusCode::NOT_FOUND, "no such application").into_response();
    }
    // GitHub takes only S256 (a plain challenge would be the verifier).
    if field("code_challenge").len() != 43 || field("code_challenge_method") != "S256" {
        return (
            StatusCode::BAD_REQUEST,
            "code_challenge_method must be S256",
        )
            .into_response();
    }
    let redirect_uri = field("redirect_uri");
    if !redirect_uri.ends_with("/sign-in/github/callback") {
        return (StatusCode::BAD_REQUEST, "redirect_uri mismatch").into_response();
    }
    let Some(login) = inner.signing_in.clone() else {
        return (StatusCode::OK, "the sign-in form would be here").into_response();
    };
    let challenge = match &inner.expect_verifier {
        Some(verifier) => s256(verifier),
        None => field("code_challenge"),
    };
    let code = random();
    inner.grants.insert(
        code.clone(),
        Grant {
            client_id: field("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge,
            login,
        },
    );
    let to = format!(
        "{redirect_uri}?code={code}&state={}",
        form_encode(&field("state"))
    );
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// `value` percent-encoded for a query or a form (every byte but the
/// unreserved ones of RFC 3986 §2.3).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GitHub's error answer: HTTP 200 with `error`, `error_description` and
/// `error_uri`.
fn oauth_error(json_wanted: bool, error: &str, description: &str) -> Response {
    let uri = format!(
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}",
        error.replace('_', "-")
    );
    if json_wanted {
        return (
            StatusCode::OK,
            axum::Json(json!({
                "error": error,
                "error_description": description,
                "error_uri": uri,
            })),
        )
            .into_response();
    }
    let body = format!(
        "error={error}&error_description={}&error_uri={}",
        form_encode(description),
        form_encode(&uri)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

async fn access_token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    keep(
        &mut inner,
        "/login/oauth/access_token",
        &headers,
        form.clone(),
    );
    let json_wanted = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("client_secret") != inner.client_secret {
        return oauth_error(
            json_wanted,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    // A code is good once, whatever happens to it.
    let Some(grant) = inner.grants.remove(&field("code")) else {
        return oauth_error(
            json_wanted,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if grant.client_id != field("client_id") {
        return oauth_error(
            json_wanted,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    }
    if grant.redirect_uri != field("redirect_uri") {
        return oauth_error(
            json_wanted,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if s256(&field("code_verifier")) != grant.challenge {
        return oauth_error(
            json_wanted,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    }
    let token = format!("{TOKEN_PREFIX}{}", random());
    let refresh = format!("ghr_{}{}", random(), random());
    inner.tokens.insert(token.clone(), grant.login);
    if json_wanted {
        // The documented example's members, in its order.
        return (
            StatusCode::OK,
            axum::Json(json!({
                "access_token": token,
                "expires_in": 28800,
                "refresh_token": refresh,
                "refresh_token_expires_in": 15_811_200,
                "scope": "",
                "token_type": "bearer",
            })),
        )
            .into_response();
    }
    let body = format!(
        "access_token={token}&expires_in=28800&refresh_token={refresh}&refresh_token_expires_in=15811200&scope=&token_type=bearer"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

/// GitHub's `401` for a missing or unknown token.
fn bad_credentials() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        })),
    )
        .into_response()
}

async fn user(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let mut inner = inner.lock().unwrap();
    keep(&mut inner, "/user", &headers, HashMap::new());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(login) = token.and_then(|t| inner.tokens.get(t)).cloned() else {
        return bad_credentials();
    };
    let Some(account) = inner.accounts.iter().find(|a| a.login == login).cloned() else {
        return bad_credentials();
    };
    (StatusCode::OK, axum::Json(private_user(&account))).into_response()
}

/// The authenticated user as GitHub describes them (the `private-user`
/// schema; values after the docs' example for "Get the authenticated
/// user").
pub fn private_user(account: &Account) -> Value {
    let login = &account.login;
    let id = account.id;
    let api = format!("https://api.github.com/users/{login}");
    // In two halves: one `json!` of all of it is past the macro's
    // recursion limit.
    let mut user = json!({
        "login": login,
        "id": id,
        // The legacy global id GitHub gives: base64 of `04:User{id}`
        // (`MDQ6VXNlcjE=` for id 1).
        "node_id": STANDARD.encode(format!("04:User{id}")),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "site_admin": false,
    });
    let profile = json!({
        "name": "The Octocat",
        "company": "@github",
        "blog": "https://github.blog",
        "location": "San Francisco",
        "email": null,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 2,
        "public_gists": 1,
        "followers": 20,
        "following": 0,
        "created_at": "2008-01-14T04:33:35Z",
        "updated_at": "2008-01-14T04:33:35Z",
        "private_gists": 81,
        "total_private_repos": 100,
        "owned_private_repos": 100,
        "disk_usage": 10000,
        "collaborators": 8,
        "two_factor_authentication": true,
        "plan": {
            "name": "Medium",
            "space": 400,
            "private_repos": 20,
            "collaborators": 0,
        },
    });
    if let (Some(user), Value::Object(profile)) = (user.as_object_mut(), profile) {
        user.extend(profile);
    }
    user
}
