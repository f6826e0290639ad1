//! The HTTP API on both backends, over a real socket: who may call what
//! (no token, a bad one, a token without the scope, the run's starter),
//! the shapes it returns, and refusals as RFC 9457 problems.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use smithers_api::{Role, Scope};
use smithers_app::{App, Config, Principal, Via};
use smithers_store::{DEFAULT_ORGANIZATION, StackState};
use smithers_test_support::audit::all_events;
use smithers_test_support::runs::waiting_on_approval;
use smithers_test_support::{TestDb, on_both_backends};

struct Server {
    app: Arc<App>,
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn server(db: &TestDb) -> Server {
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

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }
}

fn assert_problem(
    status: u16,
    body: &Value,
    headers: &reqwest::header::HeaderMap,
    want: u16,
    code: &str,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        smithers_server::PROBLEM_JSON,
        "{body}"
    );
    assert_eq!(body["status"], want);
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

on_both_backends!(callers_are_told_who_they_are_not, |db| {
    let s = server(db).await;
    let (status, body, _) = s.call("GET", "/healthz", None, None).await;
    assert_eq!((status, body), (200, json!("ok\n")));
    let (status, _, _) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 200);

    // No token, or a bad one: 401 with a Bearer challenge.
    for token in [None, Some("smt_nothing"), Some("")] {
        let (status, body, headers) = s.call("GET", "/api/v1/runs", token, None).await;
        assert_problem(status, &body, &headers, 401, "unauthenticated");
        assert_eq!(
            headers.get("www-authenticate").unwrap(),
            "Bearer realm=\"smithers\""
        );
    }
    // A token without the scope: 403, naming it.
    let runs_only = token(&s.app, "admin", &[Scope::RunsRead]).await;
    let (status, body, _) = s.call("GET", "/api/v1/runs", Some(&runs_only), None).await;
    assert_eq!((status, body), (200, json!([])));
    let (status, body, headers) = s
        .call("GET", "/api/v1/approvals", Some(&runs_only), None)
        .await;
    assert_problem(status, &body, &headers, 403, "forbidden");
    assert!(body["detail"].as_str().unwrap().contains("approvals:read"));
    // A run of nobody's: 404; an unknown route: 404.
    let (status, body, headers) = s
        .call("GET", "/api/v1/runs/nope", Some(&runs_only), None)
        .await;
    assert_problem(status, &body, &headers, 404, "not_found");
    let (status, body, headers) = s.call("GET", "/api/v2/runs", Some(&runs_only), None).await;
    assert_problem(status, &body, &headers, 404, "not_found");
});

on_both_backends!(
    an_approval_is_decided_once_and_never_by_the_runs_starter,
    |db| {
        let s = server(db).await;
        let admin = principal(&s.app, "admin").await;
        s.app
            .users()
            .add(&admin, "carol", Role::Member)
            .await
            .unwrap();
        s.app
            .users()
            .add(&admin, "dave", Role::Member)
            .await
            .unwrap();
        let id = waiting_on_approval(&s.app.engine().runs, "carol", false).await;
        let both = [Scope::ApprovalsRead, Scope::ApprovalsWrite];
        let carol = token(&s.app, "carol", &both).await;
        let dave = token(&s.app, "dave", &both).await;

        let (status, list, _) = s.call("GET", "/api/v1/approvals", Some(&dave), None).await;
        assert_eq!(status, 200);
        assert_eq!(list[0]["id"], id.as_str());
        assert_eq!(list[0]["state"], "pending");
        // The same shape as `approvals show --json`.
        let (_, shown, _) = s
            .call("GET", &format!("/api/v1/approvals/{id}"), Some(&dave), None)
            .await;
        assert_eq!(shown, list[0]);

        let approve = format!("/api/v1/approvals/{id}/approve");
        let (status, body, headers) = s.call("POST", &approve, Some(&carol), None).await;
        assert_problem(status, &body, &headers, 403, "forbidden");
        // A rejection needs a reason.
        let reject = format!("/api/v1/approvals/{id}/reject");
        let (status, body, headers) = s.call("POST", &reject, Some(&dave), Some(json!({}))).await;
        assert_problem(status, &body, &headers, 400, "invalid");
        let (status, body, _) = s
            .call(
                "POST",
                &approve,
                Some(&dave),
                Some(json!({"comment": "ship it"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "approved");
        assert_eq!(body["decided_by"], "dave");
        assert_eq!(body["comment"], "ship it");
        // Twice: 409.
        let (status, body, headers) = s.call("POST", &approve, Some(&dave), None).await;
        assert_problem(status, &body, &headers, 409, "conflict");
    }
);

/// A run straight in the store, of `workflow` started by `starter`.
async fn queued_run(app: &App, workflow: &str, starter: &str) -> String {
    app.engine()
        .runs
        .create(smithers_store::NewRun {
            organization_id: DEFAULT_ORGANIZATION,
            workflow,
            repository: "/srv/repo",
            trigger: "manual",
            definition: json!({}),
            requested_by: starter,
            steps: vec![("build".into(), "command".into())],
        })
        .await
        .unwrap()
        .id
}

on_both_backends!(run_lists_are_paged_by_cursor_and_filtered, |db| {
    let s = server(db).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(queued_run(&s.app, if i % 2 == 0 { "ship" } else { "lint" }, "admin").await);
    }
    made.reverse(); // newest first
    let reader = token(&s.app, "admin", &[Scope::RunsRead]).await;

    // Three pages of three, each pointing at the next with a Link header.
    let mut seen = Vec::new();
    let mut path = "/api/v1/runs?limit=3".to_string();
    let mut pages = 0;
    loop {
        let (status, body, headers) = s.call("GET", &path, Some(&reader), None).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        seen.extend(
            body.as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        let Some(link) = headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        path = link[1..link.find('>').unwrap()].to_string();
        assert!(path.starts_with("/api/v1/runs?limit=3&cursor="), "{path}");
        // A run added meanwhile does not shift the pages.
        if pages == 1 {
            queued_run(&s.app, "ship", "admin").await;
        }
    }
    assert_eq!((pages, seen), (3, made.clone()));

    // Filters: a workflow, a starter; a state shows finished runs too.
    let (_, body, _) = s
        .call(
            "GET",
            "/api/v1/runs?workflow=lint&all=true",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(body.as_array().unwrap().len(), 3);
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|r| r["workflow"] == "lint" && r["repository"] == "/srv/repo")
    );
    let (_, body, _) = s
        .call(
            "GET",
            "/api/v1/runs?requested_by=nobody",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(body, json!([]));
    let (_, body, _) = s
        .call("GET", "/api/v1/runs?state=queued", Some(&reader), None)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 8);

    // A cursor this list did not give, an unknown state or parameter: 400.
    for bad in [
        "cursor=abc",
        "cursor=bm9wZQ",
        "state=sleeping",
        "colour=red",
        "limit=-1",
    ] {
        let (status, body, headers) = s
            .call("GET", &format!("/api/v1/runs?{bad}"), Some(&reader), None)
            .await;
        assert_problem(status, &body, &headers, 400, "invalid");
    }
});

on_both_backends!(approval_lists_are_paged_by_cursor, |db| {
    let s = server(db).await;
    let mut made = Vec::new();
    for _ in 0..7 {
        made.push(waiting_on_approval(&s.app.engine().runs, "admin", false).await);
    }
    made.reverse(); // newest first
    let reader = token(&s.app, "admin", &[Scope::ApprovalsRead]).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/approvals?limit=3".to_string();
    let mut pages = 0;
    loop {
        let (status, body, headers) = s.call("GET", &path, Some(&reader), None).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        seen.extend(
            body.as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        let Some(link) = headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        path = link[1..link.find('>').unwrap()].to_string();
        // An approval asked meanwhile does not shift the pages.
        if pages == 1 {
            waiting_on_approval(&s.app.engine().runs, "admin", false).await;
        }
    }
    assert_eq!((pages, seen), (3, made));
    for bad in ["cursor=abc", "limit=0x", "colour=red"] {
        let (status, body, headers) = s
            .call(
                "GET",
                &format!("/api/v1/approvals?{bad}"),
                Some(&reader),
                None,
            )
            .await;
        assert_problem(status, &body, &headers, 400, "invalid");
    }
});

on_both_backends!(stacks_are_listed_shown_and_synced, |db| {
    let s = server(db).await;
    let admin = principal(&s.app, "admin").await;
    s.app
        .users()
        .add(&admin, "alice", Role::Member)
        .await
        .unwrap();
    let (first, first_run) = common::stack(
        &s.app,
        1,
        &[
            ("smithers/fix/1", "Parse the config"),
            ("smithers/fix/2", "Use the config"),
        ],
    )
    .await;
    let (second, _) = common::stack(&s.app, 2, &[("smithers/docs/1", "Document it")]).await;
    let (finished, _) = common::stack(&s.app, 3, &[("smithers/old/1", "Old work")]).await;
    let github = s.app.store().github();
    assert!(
        github
            .set_stack_state(&finished, &[StackState::Active], StackState::Finished, None)
            .await
            .unwrap()
    );
    // A member reads with runs:read and syncs with runs:write.
    let reader = token(&s.app, "alice", &[Scope::RunsRead]).await;
    let writer = token(&s.app, "alice", &[Scope::RunsWrite]).await;
    let ids = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };

    // The ones kept current, newest first; every one with `all`.
    let (status, body, _) = s.call("GET", "/api/v1/stacks", Some(&reader), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), [second.as_str(), first.as_str()]);
    let (status, body, _) = s
        .call("GET", "/api/v1/stacks?all=true", Some(&reader), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&body),
        [finished.as_str(), second.as_str(), first.as_str()]
    );
    let (status, body, _) = s
        .call(
            "GET",
            "/api/v1/stacks?all=true&limit=1",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), [finished.as_str()]);
    for bad in ["limit=0", "limit=501", "limit=x", "cursor=abc", "all=maybe"] {
        let (status, body, headers) = s
            .call("GET", &format!("/api/v1/stacks?{bad}"), Some(&reader), None)
            .await;
        assert_problem(status, &body, &headers, 400, "invalid");
    }

    // One stack, its members bottom first, each on the one below.
    let (status, body, _) = s
        .call(
            "GET",
            &format!("/api/v1/stacks/{first}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], first.as_str());
    assert_eq!(body["repository"], "acme/api");
    assert_eq!(body["run"], first_run.as_str());
    assert_eq!(body["base"], "main");
    assert_eq!(body["state"], "active");
    assert_eq!(body["paused_reason"], Value::Null);
    assert_eq!(body["sync_requested"], false);
    let members = body["members"].as_array().unwrap();
    let shape: Vec<_> = members
        .iter()
        .map(|m| {
            (
                m["pull"].as_i64().unwrap(),
                m["branch"].as_str().unwrap(),
                m["title"].as_str().unwrap(),
                m["state"].as_str().unwrap(),
                m["based_on"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (101, "smithers/fix/1", "Parse the config", "open", "main"),
            (
                102,
                "smithers/fix/2",
                "Use the config",
                "open",
                "smithers/fix/1"
            ),
        ]
    );
    assert_eq!(members[1]["built_on"], members[0]["head"]);
    let (status, body, _) = s
        .call(
            "GET",
            &format!("/api/v1/runs/{first_run}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(status, 200, "the stack's run: {body}");
    let (status, body, headers) = s
        .call("GET", "/api/v1/stacks/stk_nothing", Some(&reader), None)
        .await;
    assert_problem(status, &body, &headers, 404, "not_found");

    // Syncing needs runs:write; then the App takes the branches at its
    // next pass, and the request is audited.
    let sync = |id: &str| format!("/api/v1/stacks/{id}/sync");
    let (status, body, headers) = s.call("POST", &sync(&first), Some(&reader), None).await;
    assert_problem(status, &body, &headers, 403, "forbidden");
    assert!(!github.stack(&first).await.unwrap().unwrap().sync_requested);
    let (status, body, _) = s.call("POST", &sync(&first), Some(&writer), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], first.as_str());
    assert_eq!(body["sync_requested"], true);
    assert!(github.stack(&first).await.unwrap().unwrap().sync_requested);
    // A paused stack is what a sync is for; it says why it paused.
    let reason = "someone else pushed to smithers/docs/1";
    github
        .set_stack_state(
            &second,
            &[StackState::Active],
            StackState::Paused,
            Some(reason),
        )
        .await
        .unwrap();
    let (status, body, _) = s.call("POST", &sync(&second), Some(&writer), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["state"],
            &body["paused_reason"],
            &body["sync_requested"]
        ),
        (&json!("paused"), &json!(reason), &json!(true))
    );
    // A finished stack is kept current no more; an unknown one is not
    // there.
    let (status, body, headers) = s.call("POST", &sync(&finished), Some(&writer), None).await;
    assert_problem(status, &body, &headers, 409, "conflict");
    assert!(body["detail"].as_str().unwrap().contains("finished"));
    assert!(
        !github
            .stack(&finished)
            .await
            .unwrap()
            .unwrap()
            .sync_requested
    );
    let (status, body, headers) = s
        .call("POST", &sync("stk_nothing"), Some(&writer), None)
        .await;
    assert_problem(status, &body, &headers, 404, "not_found");

    let synced: Vec<_> = all_events(s.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "github.stack_sync_requested")
        .map(|e| (e.event.actor_id, e.event.resource_id))
        .collect();
    assert_eq!(
        synced,
        [("alice".to_string(), first), ("alice".to_string(), second)]
    );
});
