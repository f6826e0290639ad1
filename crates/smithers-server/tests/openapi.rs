//! The OpenAPI document and the API held to it: the document is OpenAPI
//! 3.1, lists exactly the routes the router serves with the bearer
//! requirement on every one that needs a token, and schemathesis, run
//! against a server with data in it, finds no server error and no answer
//! the document does not describe.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use smithers_api::Scope;
use smithers_app::{App, Config, Principal, Via};
use smithers_secrets::SecretValue;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::TestDb;
use smithers_test_support::runs::waiting_on_approval;
use utoipa::OpenApi;

/// The environment variable naming the schemathesis command
/// (`scripts/test` installs it and sets this).
const SCHEMATHESIS_ENV: &str = "SMITHERS_TEST_SCHEMATHESIS";

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Every route the router serves, as method and path. A route added to
/// the router must be added here and documented (see the server's
/// `openapi` module), or these tests fail.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/runs"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/runs/{id}"),
    ("GET", "/api/v1/runs/{id}/logs"),
    ("GET", "/api/v1/runs/{id}/events"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("POST", "/api/v1/runs/{id}/resume"),
    ("GET", "/api/v1/approvals"),
    ("GET", "/api/v1/approvals/{id}"),
    ("POST", "/api/v1/approvals/{id}/approve"),
    ("POST", "/api/v1/approvals/{id}/reject"),
    ("GET", "/api/v1/stacks"),
    ("GET", "/api/v1/stacks/{id}"),
    ("POST", "/api/v1/stacks/{id}/sync"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PUT", "/api/v1/users/{name}/role"),
    ("DELETE", "/api/v1/users/{name}"),
    ("GET", "/api/v1/secrets"),
    ("GET", "/api/v1/secrets/keys"),
    ("POST", "/api/v1/secrets/rewrap"),
    ("PUT", "/api/v1/secrets/{environment}/{name}"),
    ("POST", "/api/v1/secrets/{environment}/{name}/rotate"),
    ("GET", "/api/v1/secrets/{environment}/{name}/versions"),
    (
        "DELETE",
        "/api/v1/secrets/{environment}/{name}/versions/{version}",
    ),
    ("GET", "/api/v1/grants"),
    ("POST", "/api/v1/grants"),
    ("POST", "/api/v1/grants/{id}/approve"),
    ("POST", "/api/v1/grants/{id}/deny"),
    ("GET", "/api/v1/audit/events"),
    ("GET", "/api/v1/audit/events/{seq}/proof"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/audit/export"),
    ("GET", "/api/v1/audit/public-key"),
    ("GET", "/api/v1/policy"),
    ("PUT", "/api/v1/policy"),
    ("DELETE", "/api/v1/policy"),
    ("GET", "/api/v1/policy/history"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
];

/// Paths the router serves that are pages for people's browsers (HTML),
/// not part of the API and so not in the document: each one named here on
/// purpose.
const NOT_API: &[&str] = &[
    "/sign-in/local",
    "/sign-in/oidc",
    "/sign-in/oidc/callback",
    "/sign-in/github",
    "/sign-in/github/callback",
    "/sign-out",
    // GitHub's, signed by GitHub: docs/github-app.md describes it.
    "/github/webhook",
];

/// The routes any caller may use, without a token.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/api/v1/audit/public-key",
];

fn document() -> Value {
    serde_json::to_value(smithers_server::ApiDoc::openapi()).unwrap()
}

fn listed() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[test]
fn the_document_is_openapi_3_1_and_documents_every_route() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented.insert((method.clone(), path.clone()));
            let id = operation["operationId"].as_str().unwrap();
            assert!(operation_ids.insert(id), "operationId {id} is unique");
            // A token is needed everywhere but on the public routes, and
            // the document says so operation by operation.
            let security = &operation["security"];
            if PUBLIC.contains(&path.as_str()) {
                assert!(security.is_null(), "{method} {path} needs no token");
            } else {
                assert_eq!(
                    security,
                    &serde_json::json!([{"bearer": []}]),
                    "{method} {path} declares the bearer requirement"
                );
                for status in ["401", "403"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} documents {status}"
                    );
                }
            }
        }
    }
    assert_eq!(documented, listed(), "the document lists the routes served");

    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem[field].is_object(), "Problem has {field}");
    }
    let not_found = &doc["components"]["responses"]["NotFound"]["content"];
    assert!(not_found["application/problem+json"].is_object());
}

/// The paths the router's source registers, so that a route added to the
/// router but not to [`ROUTES`] (and so maybe not documented) fails.
#[test]
fn every_route_of_the_router_is_listed() {
    let source = include_str!("../src/lib.rs");
    let body = source
        .split_once("pub fn router(")
        .map(|(_, rest)| rest)
        .unwrap();
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    let mut found = 0;
    for piece in body.split(".route(").skip(1) {
        let literal = piece.trim_start().strip_prefix('"').unwrap();
        let path = &literal[..literal.find('"').unwrap()];
        let nested = format!("/api/v1{path}");
        assert!(
            paths.contains(path) || paths.contains(nested.as_str()) || NOT_API.contains(&path),
            "the router serves {path}, which is not listed in ROUTES (nor, then, documented)"
        );
        found += 1;
    }
    assert!(found >= 30, "the router's routes were found ({found})");
}

struct Server {
    app: Arc<App>,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The application over `db`, with a keyring and a signing key so that
/// every route has something to answer, served on a loopback port.
async fn server(db: &TestDb) -> Server {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            keyring: Some(KEYRING.to_string()),
            signing_key: Some("2a".repeat(32)),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(smithers_server::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    Server {
        app,
        base,
        _stop: stop,
    }
}

async fn admin(app: &App) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap()
}

/// `path` with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "x")
        .replace("{environment}", "dev")
        .replace("{name}", "X")
        .replace("{version}", "1")
        .replace("{seq}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_route_is_served_and_other_methods_are_405_problems() {
    let db = TestDb::sqlite().await;
    let s = server(&db).await;
    let http = reqwest::Client::new();
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        let served: Vec<&str> = ROUTES
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .collect();
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let url = format!("{}{}", s.base, concrete(path));
            let response = http
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let allow = response
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_string());
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if served.contains(&method) {
                assert_ne!(status, 405, "{method} {path} is served");
                assert_ne!(body["detail"], "no such route", "{method} {path} is served");
            } else {
                assert_eq!(status, 405, "{method} {path}: {body}");
                assert_eq!(
                    content_type.as_deref(),
                    Some(smithers_server::PROBLEM_JSON),
                    "{method} {path}"
                );
                assert_eq!(body["status"], 405);
                assert_eq!(body["code"], "method_not_allowed");
                let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
                for m in &served {
                    assert!(
                        allow.contains(m),
                        "{method} {path}: Allow {allow:?} has {m}"
                    );
                }
            }
        }
    }
    drop(s);
    db.cleanup().await;
}

/// schemathesis (`SMITHERS_TEST_SCHEMATHESIS`) against a served
/// application holding a run waiting on an approval, a secret, a policy
/// and a stack of pull requests, as an admin whose token has every scope:
/// no 5xx, and every status, content type and body as the document says,
/// for a bounded number of generated requests per operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_document_says() {
    let schemathesis = std::env::var(SCHEMATHESIS_ENV).unwrap_or_else(|_| {
        panic!(
            "this test needs {SCHEMATHESIS_ENV}, the path of the schemathesis command; \
             scripts/test installs it (ensure_schemathesis in scripts/lib.sh) and sets it"
        )
    });
    let db = TestDb::sqlite().await;
    let s = server(&db).await;
    let admin = admin(&s.app).await;
    waiting_on_approval(&s.app.engine().runs, "admin", false).await;
    s.app
        .secrets()
        .set(
            &admin,
            "dev",
            "GITHUB_TOKEN",
            &SecretValue::new(b"ghp_correct-horse-battery-staple".to_vec()),
            None,
        )
        .await
        .unwrap();
    s.app
        .policies()
        .publish(&admin, "policy", "* read_file * -> allow\n")
        .await
        .unwrap();
    common::stack(
        &s.app,
        1,
        &[("smithers/fix/1", "Parse"), ("smithers/fix/2", "Use")],
    )
    .await;
    let token = s
        .app
        .tokens()
        .create(&admin, "schemathesis", Scope::ALL, None)
        .await
        .unwrap()
        .secret;

    let location = format!("{}/api/v1/openapi.json", s.base);
    // Where schemathesis leaves its cache and reports: not the source tree.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&schemathesis)
            .current_dir(cwd)
            .args([
                "run",
                &location,
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance",
                "--max-examples",
                "25",
                // A live stream of a run that has not ended never ends
                // either: each case would wait for the timeout.
                // tests/events.rs reads it event by event.
                "--exclude-operation-id",
                "runs_events",
                // The same cases every run: a failure is reproducible.
                "--seed",
                "20261201",
                "--generation-database",
                "none",
                "--no-color",
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{SCHEMATHESIS_ENV}: could not run it: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found answers the document does not describe ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!(
        "schemathesis passed in {:.1} s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    drop(s);
    db.cleanup().await;
}
