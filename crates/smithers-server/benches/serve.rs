//! What serving costs, each figure beside its anchor from the same run:
//!
//! - `GET /api/v1/runs` (the first page of 1,000 runs in the store, as an
//!   API token reads it) and the approvals inbox page (50 pending
//!   approvals, as a signed-in person reads it): requests per second and
//!   the 99th percentile latency, each against a bare axum handler that
//!   returns the very same bytes, served by the same runtime on the same
//!   loopback (the ratio is the figure: what authentication, the
//!   service layer, the store and rendering cost);
//! - the time from an approval's decision to its run's next step starting
//!   (the audit log's timestamps of `approval.approved` and the step's
//!   `step.running`), over runs the server carries out in real native
//!   sandboxes: p50 and p99 against the target p50 < 50 ms (a decision
//!   wakes the waiting run; nothing polls).
//!
//! `cargo bench -p smithers-server --bench serve`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use serde_json::json;
use smithers_api::{Role, Scope};
use smithers_app::{App, Config, SandboxHelper, Via};
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::git::git;
use smithers_test_support::runs::waiting_on_approval;

/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// How long each side is measured, per round.
const WINDOW: Duration = Duration::from_secs(3);
/// Rounds, real and bare interleaved.
const ROUNDS: usize = 2;
/// Approvals decided for the latency figure.
const DECISIONS: usize = 30;

const HELPER: &str = env!("CARGO_BIN_EXE_smithers-server-sandbox-helper");

struct Load {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `CONCURRENCY` clients asking for `url` (with `headers`) for `WINDOW`.
async fn load(url: &str, headers: &reqwest::header::HeaderMap) -> Load {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let start = Instant::now();
    let deadline = start + WINDOW;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let http = http.clone();
        let url = url.to_string();
        let headers = headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = http
                    .get(&url)
                    .headers(headers.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Load {
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}

/// The real route and a bare handler returning its bytes, measured in
/// turns; prints both and the ratio.
async fn compare(
    name: &str,
    real: &str,
    headers: reqwest::header::HeaderMap,
    bare_base: &str,
    bare_path: &str,
) {
    let mut real_loads = Vec::new();
    let mut bare_loads = Vec::new();
    for _ in 0..ROUNDS {
        real_loads.push(load(real, &headers).await);
        bare_loads.push(
            load(
                &format!("{bare_base}{bare_path}"),
                &reqwest::header::HeaderMap::new(),
            )
            .await,
        );
    }
    let merge = |loads: Vec<Load>| {
        let mut all = Load {
            requests: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        };
        for l in loads {
            all.requests += l.requests;
            all.elapsed += l.elapsed;
            all.latencies.extend(l.latencies);
        }
        all.latencies.sort();
        all
    };
    let (real, bare) = (merge(real_loads), merge(bare_loads));
    println!(
        "{name}: {:.0} req/s, p99 {:.2} ms | bare axum, same bytes: {:.0} req/s, p99 {:.2} ms | {:.1}x the bare handler's throughput cost",
        real.per_second(),
        ms(percentile(&real.latencies, 0.99)),
        bare.per_second(),
        ms(percentile(&bare.latencies, 0.99)),
        bare.per_second() / real.per_second(),
    );
}

async fn serve_router(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let repos = dir.path().join("repos");
        let app = Arc::new(
            App::open(Config {
                data_dir: Some(dir.path().join("home")),
                sandbox_helper: Some(SandboxHelper {
                    program: PathBuf::from(HELPER),
                    args: Vec::new(),
                }),
                ..Config::default()
            })
            .await
            .unwrap(),
        );
        let admin = app.principal(DEFAULT_ORGANIZATION, "admin", Via::Cli).await.unwrap();
        for user in ["carol", "dave"] {
            app.users().add(&admin, user, Role::Member).await.unwrap();
        }
        // 1,000 runs; 50 of them wait on an approval.
        let runs = &app.engine().runs;
        for i in 0..1000 {
            if i % 20 == 0 {
                waiting_on_approval(runs, "carol", false).await;
            } else {
                runs.create(smithers_store::NewRun {
                    organization_id: DEFAULT_ORGANIZATION,
                    workflow: "ship",
                    repository: "/srv/repo",
                    trigger: "manual",
                    definition: json!({}),
                    requested_by: "carol",
                    steps: vec![("build".into(), "run".into())],
                })
                .await
                .unwrap();
            }
        }
        let token = app
            .tokens()
            .create(&admin, "bench", &[Scope::RunsRead, Scope::RunsWrite, Scope::ApprovalsRead, Scope::ApprovalsWrite], None)
            .await
            .unwrap()
            .secret;
        let dave_link = app.local_sign_in_token(DEFAULT_ORGANIZATION, "dave").await.unwrap();
        let dave = app.sign_in_with_token(&dave_link, &Default::default()).await.unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let settings = smithers_server::Settings {
            run_slots: 8,
            repository_roots: vec![repos.clone()],
            ..Default::default()
        };
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(smithers_server::serve_with(app.clone(), listener, settings, async move {
            let _ = stopped.await;
        }));

        // The same bytes, from a handler that does nothing else.
        let http = reqwest::Client::new();
        let mut bearer = reqwest::header::HeaderMap::new();
        bearer.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let mut cookie = reqwest::header::HeaderMap::new();
        cookie.insert("cookie", format!("{}={}", smithers_server::SESSION_COOKIE, dave.secret).parse().unwrap());
        let runs_bytes = http.get(format!("{base}/api/v1/runs?all=true")).headers(bearer.clone()).send().await.unwrap().bytes().await.unwrap();
        let inbox_bytes = http.get(format!("{base}/approvals")).headers(cookie.clone()).send().await.unwrap().bytes().await.unwrap();
        assert!(runs_bytes.len() > 1000 && inbox_bytes.len() > 1000);
        let bare = axum::Router::new()
            .route("/runs", get(move || { let b = runs_bytes.clone(); async move { ([("content-type", "application/json")], b) } }))
            .route("/inbox", get(move || { let b = inbox_bytes.clone(); async move { ([("content-type", "text/html; charset=utf-8")], b) } }));
        let bare_base = serve_router(bare).await;

        compare("GET /api/v1/runs?all=true (50 of 1,000 runs)", &format!("{base}/api/v1/runs?all=true"), bearer.clone(), &bare_base, "/runs").await;
        compare("GET /approvals (inbox page, 50 pending)", &format!("{base}/approvals"), cookie.clone(), &bare_base, "/inbox").await;

        // Decision → next step, over runs the server carries out.
        let repo = repos.join("app");
        std::fs::create_dir_all(repo.join(".smithers")).unwrap();
        std::fs::write(
            repo.join("smithers.toml"),
            "[workflows.gated]\non = [\"manual\"]\npolicy = \".smithers/policy\"\n\n[[workflows.gated.steps]]\nid = \"ask\"\nrun = \"/bin/true\"\nneeds_approval = true\n",
        )
        .unwrap();
        std::fs::write(repo.join(".smithers/policy"), "workflow run_command /bin/true -> allow\n").unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "first"]);
        let carol_token = {
            let carol = app.principal(DEFAULT_ORGANIZATION, "carol", Via::Cli).await.unwrap();
            app.tokens().create(&carol, "bench", &[Scope::RunsRead, Scope::RunsWrite], None).await.unwrap().secret
        };
        let dave_p = app.principal(DEFAULT_ORGANIZATION, "dave", Via::Cli).await.unwrap();
        let mut waits = Vec::new();
        for _ in 0..DECISIONS {
            let started: serde_json::Value = http
                .post(format!("{base}/api/v1/runs"))
                .bearer_auth(&carol_token)
                .json(&json!({"repository": repo, "workflow": "gated"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = started["id"].as_str().unwrap().to_string();
            let mut changes = app.run_changes(&id);
            let approval = loop {
                let pending = app.approvals().of_run(&dave_p, &id, true).await.unwrap();
                if let Some(a) = pending.first() {
                    break a.id.clone();
                }
                changes.changed_within(Duration::from_secs(5)).await;
            };
            http.post(format!("{base}/api/v1/approvals/{approval}/approve"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            // Until the run has ended, then read when each thing happened.
            loop {
                let run = app.runs().summary(&dave_p, &id).await.unwrap();
                if run.state.is_finished() {
                    break;
                }
                changes.changed_within(Duration::from_secs(5)).await;
            }
            let events = app.store().audit().of_run(DEFAULT_ORGANIZATION, &id, 0, 1000).await.unwrap();
            let decided = events.iter().find(|e| e.event.action == "approval.approved").unwrap();
            let next = events
                .iter()
                .find(|e| e.seq > decided.seq && e.event.action == "step.running")
                .unwrap();
            waits.push(Duration::from_micros((next.event.timestamp - decided.event.timestamp).max(0) as u64));
        }
        waits.sort();
        println!(
            "approval decided → its step running, {DECISIONS} runs: p50 {:.1} ms, p99 {:.1} ms (target: p50 < 50 ms)",
            ms(percentile(&waits, 0.5)),
            ms(percentile(&waits, 0.99)),
        );
    });
}
