//! The administrative HTTP API on both backends, over a real socket:
//! secrets and grants, the audit log, the organization's policy, tokens
//! and users. Who may call them (a member, a token without the scope, a
//! revoked token), that a secret's value never comes back, that bodies
//! and paths that do not parse are refused, and that the audit log pages,
//! proves and exports as its clients rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::sync::Arc;

use serde_json::{Value, json};
use smithers_api::{Role, Scope};
use smithers_app::{App, Config, Principal, Via};
use smithers_store::{AuditLog, AuditLogConfig, DEFAULT_ORGANIZATION};
use smithers_test_support::{TestDb, on_both_backends, signer};

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VALUE: &str = "ghp_correct-horse-battery-staple";
const ROTATED: &str = "ghp_tr0ub4dor-and-3";

struct Server {
    app: Arc<App>,
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A server over an application with a keyring and the test signing key.
async fn server(db: &TestDb) -> Server {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            keyring: Some(KEYRING.to_string()),
            signing_key: Some("2a".repeat(32)), // the seed of `signer()`
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
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

async fn principal(app: &App, user: &str) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, user, Via::Cli)
        .await
        .unwrap()
}

async fn token(app: &App, user: &str, scopes: &[Scope]) -> String {
    let who = principal(app, user).await;
    app.tokens()
        .create(&who, "test", scopes, None)
        .await
        .unwrap()
        .secret
}

/// A request's body.
enum Body {
    None,
    Json(Value),
    /// Sent as is, with this content type.
    Raw(&'static str, String),
}

/// A response: status, body (JSON when it parses, else the text), the
/// raw text, headers.
struct Reply {
    status: u16,
    body: Value,
    text: String,
    headers: reqwest::header::HeaderMap,
}

impl Server {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Body) -> Reply {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(v) => request.json(&v),
            Body::Raw(content_type, text) => {
                request.header("content-type", content_type).body(text)
            }
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Reply {
            status,
            body,
            text,
            headers,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), Body::None).await
    }
}

impl Reply {
    /// Asserts a 2xx status `want`, and returns the body.
    fn ok(&self, want: u16) -> &Value {
        assert_eq!(self.status, want, "{}", self.text);
        &self.body
    }

    /// Asserts an RFC 9457 problem with `want` and `code`.
    fn problem(&self, want: u16, code: &str) -> &str {
        assert_eq!(self.status, want, "{}", self.text);
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            smithers_server::PROBLEM_JSON,
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], want);
        assert_eq!(self.body["code"], code, "{}", self.text);
        let detail = self.body["detail"].as_str().unwrap();
        assert!(!detail.is_empty());
        detail
    }
}

/// Signs a checkpoint over every organization's events so far, as a
/// process's audit log does when it closes.
async fn checkpoint(app: &App) {
    let (log, writer) = AuditLog::start(app.store().clone(), signer(), AuditLogConfig::default());
    drop(log);
    writer.join().await;
}

async fn add_user(app: &App, name: &str, role: Role) {
    let admin = principal(app, "admin").await;
    app.users().add(&admin, name, role).await.unwrap();
}

const POLICY: &str = "implementer run_command * -> ask\n";

on_both_backends!(admin_routes_refuse_members_and_narrow_tokens, |db| {
    let s = server(db).await;
    add_user(&s.app, "carol", Role::Member).await;
    // A member, with every scope a token can have: the service refuses
    // what needs an admin.
    let carol = token(&s.app, "carol", Scope::ALL).await;
    let secret = json!({"value": VALUE});
    for (method, path, body) in [
        ("GET", "/api/v1/audit/events", Body::None),
        ("GET", "/api/v1/audit/verify", Body::None),
        ("GET", "/api/v1/audit/export", Body::None),
        ("GET", "/api/v1/audit/events/1/proof", Body::None),
        ("GET", "/api/v1/secrets/keys", Body::None),
        ("POST", "/api/v1/secrets/rewrap", Body::None),
        (
            "DELETE",
            "/api/v1/secrets/prod/GITHUB_TOKEN/versions/1",
            Body::None,
        ),
        ("POST", "/api/v1/grants/nope/approve", Body::None),
        (
            "PUT",
            "/api/v1/policy",
            Body::Raw("text/plain", POLICY.into()),
        ),
        ("DELETE", "/api/v1/policy", Body::None),
        (
            "POST",
            "/api/v1/users",
            Body::Json(json!({"name": "eve", "role": "admin"})),
        ),
    ] {
        let detail = s
            .call(method, path, Some(&carol), body)
            .await
            .problem(403, "forbidden")
            .to_string();
        assert!(
            detail.contains("needs an admin"),
            "{method} {path}: {detail}"
        );
    }
    // What a member may do, she may.
    let set = s
        .call(
            "PUT",
            "/api/v1/secrets/prod/GITHUB_TOKEN",
            Some(&carol),
            Body::Json(secret.clone()),
        )
        .await;
    set.ok(201);
    s.get("/api/v1/policy/history", &carol).await.ok(200);

    // An admin's token without the scope: 403, naming the scope.
    let narrow = token(&s.app, "admin", &[Scope::RunsRead]).await;
    for (method, path, body, scope) in [
        ("GET", "/api/v1/audit/events", Body::None, "audit:read"),
        ("GET", "/api/v1/secrets", Body::None, "secrets:read"),
        ("GET", "/api/v1/grants", Body::None, "secrets:read"),
        (
            "PUT",
            "/api/v1/secrets/prod/X",
            Body::Json(secret.clone()),
            "secrets:write",
        ),
        ("GET", "/api/v1/policy", Body::None, "policy:read"),
        ("DELETE", "/api/v1/policy", Body::None, "policy:write"),
        (
            "POST",
            "/api/v1/users",
            Body::Json(json!({"name": "eve", "role": "member"})),
            "users:write",
        ),
    ] {
        let reply = s.call(method, path, Some(&narrow), body).await;
        let detail = reply.problem(403, "forbidden");
        assert!(detail.contains(scope), "{method} {path}: {detail}");
    }
    // No token: 401; the checkpoint key is public.
    s.call("GET", "/api/v1/audit/events", None, Body::None)
        .await
        .problem(401, "unauthenticated");
    let key = s
        .call("GET", "/api/v1/audit/public-key", None, Body::None)
        .await;
    assert_eq!(
        key.ok(200),
        &serde_json::to_value(s.app.audit().public_key()).unwrap()
    );
    assert_eq!(key.body["algorithm"], "ed25519");
});

on_both_backends!(a_secrets_value_never_comes_back, |db| {
    let s = server(db).await;
    add_user(&s.app, "ann", Role::Admin).await;
    let scopes = [Scope::SecretsRead, Scope::SecretsWrite];
    let admin = token(&s.app, "admin", &scopes).await;
    let ann = token(&s.app, "ann", &scopes).await;
    let mut seen = Vec::new();

    let path = "/api/v1/secrets/prod/GITHUB_TOKEN";
    let set = s
        .call(
            "PUT",
            path,
            Some(&admin),
            Body::Json(json!({"value": VALUE})),
        )
        .await;
    let v1 = set.ok(201);
    assert_eq!(
        (
            &v1["environment"],
            &v1["name"],
            &v1["version"],
            &v1["state"]
        ),
        (
            &json!("prod"),
            &json!("GITHUB_TOKEN"),
            &json!(1),
            &json!("active")
        )
    );
    assert_eq!(v1["key_id"], "k1");
    seen.push(set.text);
    // It exists already: 409; check-and-set that loses: 409.
    let again = s
        .call(
            "PUT",
            path,
            Some(&admin),
            Body::Json(json!({"value": VALUE})),
        )
        .await;
    again.problem(409, "conflict");
    seen.push(again.text);
    let rotate = format!("{path}/rotate");
    let lost = s
        .call(
            "POST",
            &rotate,
            Some(&admin),
            Body::Json(json!({"value": ROTATED, "expect_version": 7})),
        )
        .await;
    lost.problem(409, "conflict");
    seen.push(lost.text);
    let rotated = s
        .call(
            "POST",
            &rotate,
            Some(&admin),
            Body::Json(json!({"value": ROTATED, "expect_version": 1})),
        )
        .await;
    assert_eq!(rotated.ok(200)["version"], 2);
    seen.push(rotated.text);
    // Nothing to rotate in another environment.
    s.call(
        "POST",
        "/api/v1/secrets/dev/GITHUB_TOKEN/rotate",
        Some(&admin),
        Body::Json(json!({"value": ROTATED})),
    )
    .await
    .problem(404, "not_found");

    let list = s.get("/api/v1/secrets", &admin).await;
    assert_eq!(list.ok(200)[0]["active_version"], 2);
    assert_eq!(list.body[0]["versions"], 2);
    seen.push(list.text);
    let none = s.get("/api/v1/secrets?environment=dev", &admin).await;
    assert_eq!(none.ok(200), &json!([]));
    let versions = s.get(&format!("{path}/versions"), &admin).await;
    let states: Vec<&Value> = versions
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["state"])
        .collect();
    assert_eq!(states, [&json!("inactive"), &json!("active")]);
    seen.push(versions.text);
    s.get("/api/v1/secrets/prod/NOPE/versions", &admin)
        .await
        .problem(404, "not_found");

    // Grants: requested by one admin, decided by another.
    let request = json!({
        "environment": "prod",
        "name": "GITHUB_TOKEN",
        "binding": {"purpose": "debug the deploy"},
        "ttl_seconds": 900,
        "single_use": true,
    });
    let requested = s
        .call("POST", "/api/v1/grants", Some(&admin), Body::Json(request))
        .await;
    let grant = requested.ok(201).clone();
    assert_eq!(grant["state"], "pending");
    let id = grant["id"].as_str().unwrap();
    s.call(
        "POST",
        &format!("/api/v1/grants/{id}/approve"),
        Some(&admin),
        Body::None,
    )
    .await
    .problem(403, "forbidden");
    s.call(
        "POST",
        &format!("/api/v1/grants/{id}/deny"),
        Some(&ann),
        Body::Json(json!({})),
    )
    .await
    .problem(400, "invalid");
    let approved = s
        .call(
            "POST",
            &format!("/api/v1/grants/{id}/approve"),
            Some(&ann),
            Body::Json(json!({"comment": "once"})),
        )
        .await;
    assert_eq!(approved.ok(200)["state"], "approved");
    assert_eq!(approved.body["decided_by"], "ann");
    let grants = s.get("/api/v1/grants?all=true", &admin).await;
    assert_eq!(grants.ok(200).as_array().unwrap().len(), 1);
    seen.push(grants.text);

    // The keyring's use, a rewrap with nothing to move, a destroyed version.
    let keys = s.get("/api/v1/secrets/keys", &admin).await;
    assert_eq!(keys.ok(200)[0]["key_id"], "k1");
    assert_eq!(keys.body[0]["versions"], 2);
    let rewrap = s
        .call("POST", "/api/v1/secrets/rewrap", Some(&admin), Body::None)
        .await;
    assert_eq!(rewrap.ok(200)["rewrapped"], 0);
    assert_eq!(rewrap.body["primary_key"], "k1");
    let destroyed = s
        .call(
            "DELETE",
            &format!("{path}/versions/1"),
            Some(&admin),
            Body::None,
        )
        .await;
    assert_eq!(destroyed.ok(200)["state"], "destroyed");
    assert_eq!(destroyed.body["destroyed_by"], "admin");
    seen.push(destroyed.text);
    s.call(
        "DELETE",
        &format!("{path}/versions/1"),
        Some(&admin),
        Body::None,
    )
    .await
    .problem(409, "conflict");

    // There is no route that reads a value.
    for path in [path, "/api/v1/secrets/prod/GITHUB_TOKEN/value"] {
        let reply = s.get(path, &admin).await;
        assert!(reply.status == 404 || reply.status == 405, "{}", reply.text);
        seen.push(reply.text);
    }
    for text in &seen {
        assert!(!text.contains(VALUE) && !text.contains(ROTATED), "{text}");
    }

    // Bodies and paths that do not parse: 400 `invalid`, nothing written.
    for (method, path, body) in [
        (
            "PUT",
            path,
            Body::Raw("application/json", "{\"value\":".into()),
        ),
        (
            "PUT",
            path,
            Body::Json(json!({"value": VALUE, "env": "prod"})),
        ),
        ("PUT", path, Body::Raw("text/plain", VALUE.into())),
        ("PUT", path, Body::None),
        ("POST", "/api/v1/grants", Body::Json(json!({"name": "X"}))),
        (
            "DELETE",
            "/api/v1/secrets/prod/GITHUB_TOKEN/versions/first",
            Body::None,
        ),
        ("GET", "/api/v1/secrets?env=prod", Body::None),
    ] {
        let reply = s.call(method, path, Some(&admin), body).await;
        reply.problem(400, "invalid");
        assert!(!reply.text.contains(VALUE), "{}", reply.text);
    }
    let versions = s.get(&format!("{path}/versions"), &admin).await;
    assert_eq!(versions.ok(200).as_array().unwrap().len(), 2);
});

on_both_backends!(tokens_are_a_persons_and_a_revoked_one_is_refused, |db| {
    let s = server(db).await;
    let admin = principal(&s.app, "admin").await;
    let made = s
        .app
        .tokens()
        .create(&admin, "ci", Scope::ALL, None)
        .await
        .unwrap();
    let secret = made.secret.as_str();
    // Tokens never make, list or revoke tokens, whatever their scopes.
    for (method, path, body) in [
        ("GET", "/api/v1/tokens".to_string(), Body::None),
        (
            "POST",
            "/api/v1/tokens".to_string(),
            Body::Json(json!({"name": "more", "scopes": ["runs:read"]})),
        ),
        (
            "DELETE",
            format!("/api/v1/tokens/{}", made.token.id),
            Body::None,
        ),
    ] {
        let reply = s.call(method, &path, Some(secret), body).await;
        let detail = reply.problem(403, "forbidden");
        assert!(detail.contains("not done with an API token"), "{detail}");
        assert!(!reply.text.contains(secret));
    }
    // A body that does not parse is refused before the service is asked.
    for body in [
        json!({"name": "more", "scopes": ["runs:everything"]}),
        json!({"name": "more", "scopes": [], "lifetime": 3}),
    ] {
        s.call("POST", "/api/v1/tokens", Some(secret), Body::Json(body))
            .await
            .problem(400, "invalid");
    }

    s.get("/api/v1/users", secret).await.ok(200);
    s.app.tokens().revoke(&admin, &made.token.id).await.unwrap();
    let refused = s.get("/api/v1/users", secret).await;
    let detail = refused.problem(401, "unauthenticated");
    assert!(detail.contains("revoked"), "{detail}");
    assert!(!refused.text.contains(secret));
});

on_both_backends!(users_are_added_by_an_admin, |db| {
    let s = server(db).await;
    let admin = token(&s.app, "admin", &[Scope::UsersRead, Scope::UsersWrite]).await;
    let added = s
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Body::Json(json!({"name": "dave", "role": "member"})),
        )
        .await;
    let dave = added.ok(201).clone();
    assert_eq!(
        (&dave["name"], &dave["role"], &dave["organization"]),
        (
            &json!("dave"),
            &json!("member"),
            &json!(DEFAULT_ORGANIZATION)
        )
    );
    let list = s.get("/api/v1/users", &admin).await;
    assert!(list.ok(200).as_array().unwrap().contains(&dave));
    s.call(
        "POST",
        "/api/v1/users",
        Some(&admin),
        Body::Json(json!({"name": "dave", "role": "admin"})),
    )
    .await
    .problem(409, "conflict");
    for body in [
        Body::Json(json!({"name": "eve", "role": "owner"})),
        Body::Json(json!({"name": "eve", "role": "member", "email": "e@x"})),
        Body::Json(json!({"name": "eve"})),
        Body::Raw("application/json", "not json".into()),
        Body::None,
    ] {
        s.call("POST", "/api/v1/users", Some(&admin), body)
            .await
            .problem(400, "invalid");
    }
});

on_both_backends!(the_policy_is_published_shown_and_unpublished, |db| {
    let s = server(db).await;
    let admin = token(&s.app, "admin", &[Scope::PolicyRead, Scope::PolicyWrite]).await;
    s.get("/api/v1/policy", &admin)
        .await
        .problem(404, "not_found");
    let text = |t: &str| Body::Raw("text/plain", t.to_string());
    let published = s
        .call("PUT", "/api/v1/policy", Some(&admin), text(POLICY))
        .await;
    let v1 = published.ok(201).clone();
    assert_eq!(
        (&v1["version"], &v1["state"], &v1["text"]),
        (&json!(1), &json!("published"), &json!(POLICY))
    );
    assert_eq!(s.get("/api/v1/policy", &admin).await.ok(200), &v1);
    assert_eq!(s.get("/api/v1/policy?version=1", &admin).await.ok(200), &v1);
    s.call("PUT", "/api/v1/policy", Some(&admin), text(POLICY))
        .await
        .problem(409, "conflict");
    // An invalid policy names the file it was given as; nothing changes.
    let bad = s
        .call(
            "PUT",
            "/api/v1/policy?file=org.policy",
            Some(&admin),
            text("implementer run_command\n"),
        )
        .await;
    let detail = bad.problem(400, "invalid");
    assert!(
        detail.contains("org.policy:1") && detail.contains("nothing was published"),
        "{detail}"
    );
    s.call(
        "PUT",
        "/api/v1/policy?colour=red",
        Some(&admin),
        text(POLICY),
    )
    .await
    .problem(400, "invalid");

    let unpublished = s
        .call("DELETE", "/api/v1/policy", Some(&admin), Body::None)
        .await;
    assert_eq!(unpublished.ok(200)["state"], "unpublished");
    s.get("/api/v1/policy", &admin)
        .await
        .problem(404, "not_found");
    let history = s.get("/api/v1/policy/history", &admin).await;
    let history = history.ok(200).as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|v| v["text"].is_null()), "{history:?}");
});

/// The event of an export line (the event's fields, its leaf and proof
/// beside them).
fn event_of(line: &Value) -> Value {
    let mut event = line.clone();
    let fields = event.as_object_mut().unwrap();
    fields.remove("leaf").unwrap();
    fields.remove("proof").unwrap();
    event
}

on_both_backends!(the_audit_log_pages_proves_and_exports, |db| {
    let s = server(db).await;
    for i in 0..6 {
        add_user(&s.app, &format!("u{i}"), Role::Member).await;
    }
    let reader = token(&s.app, "admin", &[Scope::AuditRead]).await;
    checkpoint(&s.app).await;

    // The export: JSON Lines, one event a line, every event once, in order.
    let export = s.get("/api/v1/audit/export", &reader).await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_eq!(
        export.headers.get("content-type").unwrap(),
        "application/x-ndjson"
    );
    assert!(export.text.ends_with('\n'));
    let lines: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = lines.len() as u64;
    assert!(total >= 7, "{total}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1, "{line}");
        assert!(
            line["proof"]["checkpoint"]["signature"].is_string(),
            "{line}"
        );
    }
    let later = s.get("/api/v1/audit/export?since=3", &reader).await;
    let first = later.text.lines().next().unwrap();
    assert_eq!(serde_json::from_str::<Value>(first).unwrap(), lines[2]);

    // The event list, three at a time, to the end by its Link headers; an
    // event appended meanwhile comes last, once.
    let mut seqs = Vec::new();
    let mut path = "/api/v1/audit/events?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = s.get(&path, &reader).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for e in page.body.as_array().unwrap() {
            seqs.push(e["seq"].as_u64().unwrap());
        }
        if pages == 1 {
            add_user(&s.app, "late", Role::Member).await;
        }
        let Some(link) = page.headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        path = link[1..link.find('>').unwrap()].to_string();
        assert!(
            path.starts_with("/api/v1/audit/events?limit=3&cursor="),
            "{path}"
        );
    }
    let all: Vec<u64> = (1..=total + 1).collect();
    assert_eq!(seqs, all);
    assert_eq!(pages, (total + 1).div_ceil(3));
    // The same event as the export's line, the same shape.
    let one = s.get("/api/v1/audit/events?limit=1", &reader).await;
    assert_eq!(one.ok(200)[0], event_of(&lines[0]));
    // Filters.
    let added = s
        .get("/api/v1/audit/events?action=user.add&limit=1000", &reader)
        .await;
    let added = added.ok(200).as_array().unwrap();
    let exported = lines.iter().filter(|l| l["action"] == "user.add").count();
    assert_eq!(added.len(), exported + 1); // and "late"
    assert!(added.iter().all(|e| e["action"] == "user.add"));
    let none = s
        .get("/api/v1/audit/events?since=2999-01-01T00:00:00Z", &reader)
        .await;
    assert_eq!(none.ok(200), &json!([]));
    for bad in [
        "cursor=abc",
        "cursor=bm9wZQ",
        "since=yesterday",
        "limit=-1",
        "colour=red",
    ] {
        s.get(&format!("/api/v1/audit/events?{bad}"), &reader)
            .await
            .problem(400, "invalid");
    }

    // An event's proof, checked by the service against the signed root.
    let proof = s.get("/api/v1/audit/events/2/proof", &reader).await;
    let p = proof.ok(200);
    assert_eq!(p["seq"], 2);
    assert_eq!(p["event"], event_of(&lines[1]));
    assert_eq!(p["leaf"], lines[1]["leaf"]);
    // The audit path beside the event, as in the export's line.
    for (field, value) in lines[1]["proof"].as_object().unwrap() {
        assert_eq!(&p[field], value, "{field}");
    }
    assert_eq!(p["leaf_index"], 1);
    assert!(p["checkpoint"]["tree_size"].as_u64().unwrap() >= 2);
    // Not covered by a checkpoint yet; not there at all; not a number.
    s.get(
        &format!("/api/v1/audit/events/{}/proof", total + 1),
        &reader,
    )
    .await
    .problem(404, "not_found");
    s.get("/api/v1/audit/events/9999/proof", &reader)
        .await
        .problem(404, "not_found");
    s.get("/api/v1/audit/events/first/proof", &reader)
        .await
        .problem(400, "invalid");

    let verified = s.get("/api/v1/audit/verify", &reader).await;
    assert_eq!(verified.ok(200)["intact"], true);
    assert_eq!(
        verified.body["organizations"][0]["organization"],
        DEFAULT_ORGANIZATION
    );
    s.get("/api/v1/audit/verify?trusted_keys=zz", &reader)
        .await
        .problem(400, "invalid");
});

on_both_backends!(users_change_role_and_are_removed_by_an_admin, |db| {
    let s = server(db).await;
    add_user(&s.app, "dave", Role::Member).await;
    add_user(&s.app, "erin", Role::Member).await;
    let admin = token(&s.app, "admin", &[Scope::UsersRead, Scope::UsersWrite]).await;
    let reader = token(&s.app, "admin", &[Scope::UsersRead]).await;
    let dave = token(&s.app, "dave", &[Scope::UsersRead, Scope::UsersWrite]).await;
    let erins = token(&s.app, "erin", &[Scope::UsersRead]).await;
    let role = |r: &str| Body::Json(json!({"role": r}));

    // Who may: an admin's token with users:write, no one else.
    s.call("PUT", "/api/v1/users/erin/role", None, role("admin"))
        .await
        .problem(401, "unauthenticated");
    s.call(
        "PUT",
        "/api/v1/users/erin/role",
        Some(&reader),
        role("admin"),
    )
    .await
    .problem(403, "forbidden");
    let refused = s
        .call("PUT", "/api/v1/users/erin/role", Some(&dave), role("admin"))
        .await;
    assert!(
        refused
            .problem(403, "forbidden")
            .contains("dave is a member")
    );
    s.call("DELETE", "/api/v1/users/erin", Some(&dave), Body::None)
        .await
        .problem(403, "forbidden");

    let changed = s
        .call(
            "PUT",
            "/api/v1/users/dave/role",
            Some(&admin),
            role("admin"),
        )
        .await;
    let user = changed.ok(200);
    assert_eq!(
        (&user["name"], &user["role"], &user["organization"]),
        (
            &json!("dave"),
            &json!("admin"),
            &json!(DEFAULT_ORGANIZATION)
        )
    );
    // dave's token acts with his role now.
    s.call("PUT", "/api/v1/users/erin/role", Some(&dave), role("admin"))
        .await
        .ok(200);
    s.call("PUT", "/api/v1/users/erin/role", Some(&dave), role("admin"))
        .await
        .problem(409, "conflict");
    s.call(
        "PUT",
        "/api/v1/users/nobody/role",
        Some(&admin),
        role("admin"),
    )
    .await
    .problem(404, "not_found");
    for body in [
        role("owner"),
        Body::Json(json!({"role": "admin", "name": "x"})),
        Body::Json(json!({})),
        Body::Raw("application/json", "not json".into()),
        Body::None,
    ] {
        s.call("PUT", "/api/v1/users/erin/role", Some(&admin), body)
            .await
            .problem(400, "invalid");
    }

    // Removed: the user, with their tokens.
    s.get("/api/v1/users", &erins).await.ok(200);
    let removed = s
        .call("DELETE", "/api/v1/users/erin", Some(&admin), Body::None)
        .await;
    let user = removed.ok(200);
    assert_eq!(
        (&user["name"], &user["role"]),
        (&json!("erin"), &json!("admin"))
    );
    s.get("/api/v1/users", &erins)
        .await
        .problem(401, "unauthenticated");
    s.call("DELETE", "/api/v1/users/erin", Some(&admin), Body::None)
        .await
        .problem(404, "not_found");
    let names: Vec<Value> = s
        .get("/api/v1/users", &admin)
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("admin"), json!("dave")]);

    // Never the last admin: dave steps down, then admin may not.
    s.call(
        "PUT",
        "/api/v1/users/dave/role",
        Some(&admin),
        role("member"),
    )
    .await
    .ok(200);
    let last = s
        .call(
            "PUT",
            "/api/v1/users/admin/role",
            Some(&admin),
            role("member"),
        )
        .await;
    assert!(last.problem(409, "conflict").contains("last admin"));
    let last = s
        .call("DELETE", "/api/v1/users/admin", Some(&admin), Body::None)
        .await;
    assert!(last.problem(409, "conflict").contains("last admin"));

    // Each change is in the audit log, by whom.
    let who = principal(&s.app, "admin").await;
    let events = s
        .app
        .audit()
        .log(&who, &smithers_app::AuditFilter::default())
        .await
        .unwrap();
    let changes: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e.action == "user.role_changed" || e.action == "user.removed")
        .map(|e| {
            (
                e.action.as_str(),
                e.actor_id.as_str(),
                e.resource_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("user.role_changed", "admin", "dave"),
            ("user.role_changed", "dave", "erin"),
            ("user.removed", "admin", "erin"),
            ("user.role_changed", "admin", "dave"),
        ]
    );
});
