//! The authorization matrix over HTTP, on both backends: every route of
//! the API against every kind of caller — nobody, an API token with each
//! single scope, a member's session, an admin's session, and the run's
//! starter deciding its own approval — with the status each gets, written
//! out here from the documented rules (not derived from the code's table).
//! A refused caller gets 401 (who?) or 403 (not you); an allowed one gets
//! anything else but a server error. A route missing from the matrix
//! fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use smithers_api::{Role, Scope};
use smithers_app::Config;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::on_both_backends;
use smithers_test_support::runs::waiting_on_approval;
use utoipa::OpenApi as _;

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// Anybody, without credentials.
    Public,
    /// A member of the organization; a token needs the scope.
    Member(Scope),
    /// An admin; a token needs the scope.
    Admin(Scope),
    /// A person (a session), never a token.
    PersonOnly,
}

/// One route: method, path (with the fixture's ids put in), its rule, and
/// the body it is sent with.
struct Row {
    method: &'static str,
    template: &'static str,
    rule: Rule,
    body: Option<Value>,
}

fn matrix() -> Vec<Row> {
    use Rule::*;
    let row = |method, template, rule, body| Row {
        method,
        template,
        rule,
        body,
    };
    vec![
        row("GET", "/healthz", Public, None),
        row("GET", "/readyz", Public, None),
        row("GET", "/api/v1/openapi.json", Public, None),
        row("GET", "/api/v1/audit/public-key", Public, None),
        row("GET", "/api/v1/runs", Member(Scope::RunsRead), None),
        row(
            "POST",
            "/api/v1/runs",
            Member(Scope::RunsWrite),
            Some(json!({"repository": "/nowhere/at/all", "workflow": "w"})),
        ),
        row("GET", "/api/v1/runs/{run}", Member(Scope::RunsRead), None),
        row(
            "GET",
            "/api/v1/runs/{run}/logs",
            Member(Scope::RunsRead),
            None,
        ),
        // Only the status is read: the stream of a run that waits goes on.
        row(
            "GET",
            "/api/v1/runs/{run}/events",
            Member(Scope::RunsRead),
            None,
        ),
        row(
            "POST",
            "/api/v1/runs/{other_run}/resume",
            Member(Scope::RunsWrite),
            None,
        ),
        row(
            "POST",
            "/api/v1/runs/{other_run}/cancel",
            Member(Scope::RunsWrite),
            None,
        ),
        row(
            "GET",
            "/api/v1/approvals",
            Member(Scope::ApprovalsRead),
            None,
        ),
        row(
            "GET",
            "/api/v1/approvals/{approval}",
            Member(Scope::ApprovalsRead),
            None,
        ),
        row(
            "POST",
            "/api/v1/approvals/{approval}/reject",
            Member(Scope::ApprovalsWrite),
            Some(json!({"reason": "matrix"})),
        ),
        row(
            "POST",
            "/api/v1/approvals/{approval}/approve",
            Member(Scope::ApprovalsWrite),
            Some(json!({})),
        ),
        row("GET", "/api/v1/stacks", Member(Scope::RunsRead), None),
        row(
            "GET",
            "/api/v1/stacks/{stack}",
            Member(Scope::RunsRead),
            None,
        ),
        row(
            "POST",
            "/api/v1/stacks/{stack}/sync",
            Member(Scope::RunsWrite),
            None,
        ),
        row("GET", "/api/v1/users", Member(Scope::UsersRead), None),
        row(
            "POST",
            "/api/v1/users",
            Admin(Scope::UsersWrite),
            Some(json!({"name": "zed", "role": "member"})),
        ),
        row(
            "PUT",
            "/api/v1/users/zed/role",
            Admin(Scope::UsersWrite),
            Some(json!({"role": "admin"})),
        ),
        row(
            "DELETE",
            "/api/v1/users/zed",
            Admin(Scope::UsersWrite),
            None,
        ),
        row("GET", "/api/v1/secrets", Member(Scope::SecretsRead), None),
        row(
            "GET",
            "/api/v1/secrets/dev/API_TOKEN/versions",
            Member(Scope::SecretsRead),
            None,
        ),
        row(
            "PUT",
            "/api/v1/secrets/dev/NEW_ONE",
            Member(Scope::SecretsWrite),
            Some(json!({"value": "v-123456"})),
        ),
        row(
            "POST",
            "/api/v1/secrets/dev/API_TOKEN/rotate",
            Member(Scope::SecretsWrite),
            Some(json!({"value": "v-654321"})),
        ),
        row(
            "GET",
            "/api/v1/secrets/keys",
            Admin(Scope::SecretsWrite),
            None,
        ),
        row(
            "POST",
            "/api/v1/secrets/rewrap",
            Admin(Scope::SecretsWrite),
            None,
        ),
        row(
            "DELETE",
            "/api/v1/secrets/dev/API_TOKEN/versions/1",
            Admin(Scope::SecretsWrite),
            None,
        ),
        row("GET", "/api/v1/grants", Member(Scope::SecretsRead), None),
        row(
            "POST",
            "/api/v1/grants",
            Member(Scope::SecretsWrite),
            Some(
                json!({"environment": "dev", "name": "API_TOKEN", "binding": {"purpose": "matrix"}, "ttl_seconds": 60, "single_use": true}),
            ),
        ),
        row(
            "POST",
            "/api/v1/grants/{grant}/deny",
            Admin(Scope::SecretsWrite),
            Some(json!({"reason": "matrix"})),
        ),
        row(
            "POST",
            "/api/v1/grants/{grant}/approve",
            Admin(Scope::SecretsWrite),
            Some(json!({})),
        ),
        row("GET", "/api/v1/audit/events", Admin(Scope::AuditRead), None),
        row(
            "GET",
            "/api/v1/audit/events/1/proof",
            Admin(Scope::AuditRead),
            None,
        ),
        row("GET", "/api/v1/audit/verify", Admin(Scope::AuditRead), None),
        row("GET", "/api/v1/audit/export", Admin(Scope::AuditRead), None),
        row("GET", "/api/v1/policy", Member(Scope::PolicyRead), None),
        row(
            "GET",
            "/api/v1/policy/history",
            Member(Scope::PolicyRead),
            None,
        ),
        row(
            "PUT",
            "/api/v1/policy",
            Admin(Scope::PolicyWrite),
            Some(Value::String("* read_file * -> allow\n".into())),
        ),
        row("DELETE", "/api/v1/policy", Admin(Scope::PolicyWrite), None),
        row("GET", "/api/v1/tokens", PersonOnly, None),
        row(
            "POST",
            "/api/v1/tokens",
            PersonOnly,
            Some(json!({"name": "matrix", "scopes": ["runs:read"]})),
        ),
        row("DELETE", "/api/v1/tokens/{token}", PersonOnly, None),
    ]
}

/// How a caller presents itself.
#[derive(Debug, Clone)]
enum Credential {
    Nobody,
    Token(Scope, String),
    Session(&'static str, String),
}

struct Fixture {
    s: common::Server,
    run: String,
    other_run: String,
    approval: String,
    grant: String,
    stack: String,
    token: String,
}

impl Fixture {
    fn path(&self, template: &str) -> String {
        template
            .replace("{other_run}", &self.other_run)
            .replace("{run}", &self.run)
            .replace("{approval}", &self.approval)
            .replace("{grant}", &self.grant)
            .replace("{stack}", &self.stack)
            .replace("{token}", &self.token)
    }

    async fn call(&self, row: &Row, who: &Credential) -> u16 {
        let url = format!("{}{}", self.s.base, self.path(row.template));
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
        let mut request = self.s.http.request(method, url);
        match who {
            Credential::Nobody => {}
            Credential::Token(_, secret) => request = request.bearer_auth(secret),
            Credential::Session(_, secret) => {
                request = request
                    .header(
                        "cookie",
                        format!("{}={secret}", smithers_server::SESSION_COOKIE),
                    )
                    .header("sec-fetch-site", "same-origin");
            }
        }
        match &row.body {
            Some(Value::String(text)) => {
                request = request
                    .header("content-type", "text/plain")
                    .body(text.clone())
            }
            Some(body) => request = request.json(body),
            None => {}
        }
        request.send().await.unwrap().status().as_u16()
    }
}

/// What `who` gets on a route with `rule`: `Err(status)` a refusal,
/// `Ok(())` anything but a refusal.
fn expected(rule: Rule, who: &Credential) -> Result<(), u16> {
    match (rule, who) {
        (Rule::Public, _) => Ok(()),
        (_, Credential::Nobody) => Err(401),
        (Rule::PersonOnly, Credential::Token(..)) => Err(403),
        (Rule::PersonOnly, Credential::Session(..)) => Ok(()),
        (Rule::Member(needed) | Rule::Admin(needed), Credential::Token(scope, _))
            if *scope != needed =>
        {
            Err(403)
        }
        // Every token here is an admin's: the scope is what narrows it.
        (Rule::Member(_) | Rule::Admin(_), Credential::Token(..)) => Ok(()),
        (Rule::Admin(_), Credential::Session("member", _)) => Err(403),
        (_, Credential::Session(..)) => Ok(()),
    }
}

async fn fixture(db: &smithers_test_support::TestDb) -> (Fixture, Vec<Credential>) {
    // A repository root, so that starting a run is refused for what it
    // names (nothing there), not for where.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = common::serve_on(
        db,
        Config {
            keyring: Some(KEYRING.into()),
            ..Config::default()
        },
        listener,
        smithers_server::Settings {
            repository_roots: vec![db.dir.path().to_path_buf()],
            ..smithers_server::Settings::default()
        },
    )
    .await;
    let admin = common::principal(&s.app, "admin").await;
    for (user, role) in [
        ("carol", Role::Member),
        ("dave", Role::Member),
        ("root2", Role::Admin),
    ] {
        s.app.users().add(&admin, user, role).await.unwrap();
    }
    let runs = &s.app.engine().runs;
    let approval = waiting_on_approval(runs, "carol", false).await;
    let run = s.app.approvals().show(&admin, &approval).await.unwrap().run;
    let other = waiting_on_approval(runs, "carol", false).await;
    let other_run = s.app.approvals().show(&admin, &other).await.unwrap().run;
    s.app
        .secrets()
        .set(
            &admin,
            "dev",
            "API_TOKEN",
            &smithers_secrets::SecretValue::from("tok-live-8d2f1c9e7b"),
            None,
        )
        .await
        .unwrap();
    let carol = common::principal(&s.app, "carol").await;
    let grant = s
        .app
        .secrets()
        .request_grant(
            &carol,
            &smithers_api::GrantRequest {
                environment: "dev".into(),
                name: "API_TOKEN".into(),
                binding: smithers_api::GrantBinding::Purpose("matrix".into()),
                ttl_seconds: 60,
                single_use: true,
            },
        )
        .await
        .unwrap()
        .id;
    // A stack the GitHub App opened: a sync of it is not refused, and may
    // be asked for again.
    let (stack, _) = common::stack(
        &s.app,
        1,
        &[("smithers/fix/1", "matrix"), ("smithers/fix/2", "matrix")],
    )
    .await;
    let spare = s
        .app
        .tokens()
        .create(&carol, "spare", &[Scope::RunsRead], None)
        .await
        .unwrap()
        .token
        .id;
    let mut callers = vec![Credential::Nobody];
    for &scope in Scope::ALL {
        callers.push(Credential::Token(
            scope,
            common::token(&s.app, "root2", &[scope]).await,
        ));
    }
    for (kind, user) in [("member", "dave"), ("admin", "root2")] {
        let link = s
            .app
            .local_sign_in_token(DEFAULT_ORGANIZATION, user)
            .await
            .unwrap();
        let opened = s
            .app
            .sign_in_with_token(&link, &Default::default())
            .await
            .unwrap();
        callers.push(Credential::Session(kind, opened.secret));
    }
    (
        Fixture {
            s,
            run,
            other_run,
            approval,
            grant,
            stack,
            token: spare,
        },
        callers,
    )
}

on_both_backends!(every_route_answers_every_caller_as_documented, |db| {
    let (f, callers) = fixture(db).await;
    // The matrix covers the API's whole document.
    let documented: BTreeSet<(String, String)> = smithers_server::ApiDoc::openapi()
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let mut methods = Vec::new();
            for (m, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    methods.push((m.to_string(), path.clone()));
                }
            }
            methods
        })
        .collect();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for row in matrix() {
        let template = row
            .template
            .replace("zed", "{name}")
            .replace("/dev/API_TOKEN/", "/{environment}/{name}/")
            .replace("/dev/NEW_ONE", "/{environment}/{name}")
            .replace("/versions/1", "/versions/{version}")
            .replace("/events/1/", "/events/{seq}/")
            .replace("{other_run}", "{id}")
            .replace("{run}", "{id}")
            .replace("{approval}", "{id}")
            .replace("{grant}", "{id}")
            .replace("{stack}", "{id}")
            .replace("{token}", "{id}");
        covered.insert((row.method.to_string(), template));
        for who in &callers {
            let status = f.call(&row, who).await;
            let want = expected(row.rule, who);
            let fine = match want {
                Err(refused) => status == refused,
                Ok(()) => status != 401 && status != 403 && status < 500,
            };
            if !fine {
                let who = match who {
                    Credential::Nobody => "nobody".to_string(),
                    Credential::Token(scope, _) => format!("a token of {}", scope.as_str()),
                    Credential::Session(kind, _) => format!("a {kind}'s session"),
                };
                let want = want.map_or_else(|s| s.to_string(), |()| "not refused".into());
                failures.push(format!(
                    "{} {} as {who}: {status}, documented: {want}",
                    row.method, row.template
                ));
            }
        }
    }
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the matrix: {missing:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The run's starter never decides its approvals, whatever they hold.
    let carol = common::token(&f.s.app, "carol", &[Scope::ApprovalsWrite]).await;
    let other = waiting_on_approval(&f.s.app.engine().runs, "carol", false).await;
    for action in ["approve", "reject"] {
        let status =
            f.s.http
                .post(format!("{}/api/v1/approvals/{other}/{action}", f.s.base))
                .bearer_auth(&carol)
                .json(&json!({"reason": "mine"}))
                .send()
                .await
                .unwrap()
                .status();
        assert_eq!(status, 403, "{action}");
    }
});
