//! Audit destinations, each figure beside its anchor from the same run:
//!
//! - events/s delivered to the Datadog intake stand-in by the delivery
//!   worker (reading the log, encoding, gzip, HTTP, cursor), against a
//!   plain upload of the same entries gzipped in the same requests;
//! - events/s delivered to S3 (moto's server: `SMITHERS_MOTO_SERVER`), with
//!   each event's inclusion proof and the checkpoints, against plain
//!   checksummed puts of the same events as gzipped JSON lines;
//! - the latency of a durable append with no destination, against the same
//!   during an hour of simulated time in which a destination is down (503
//!   to everything) — the worker's clock at 1/1000: a poll of 1 ms for 1 s,
//!   back-off doubling to 300 ms for 5 minutes, 3.6 s of appends for the
//!   hour — and the lag that leaves.
//!
//! `cargo bench -p smithers-app --bench destinations` (embedded SQLite).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smithers_app::destinations::{DeliverySettings, NewDatadog, NewS3, deliver_destinations};
use smithers_app::{App, Config, Principal, Via};
use smithers_audit::{ActorType, AuditEvent};
use smithers_secrets::SecretValue;
use smithers_store::{
    Actor, AuditLog, AuditLogConfig, AuditQuery, DEFAULT_ORGANIZATION, SecretRef,
};
use smithers_test_support::datadog::{Answer, DatadogIntake};
use smithers_test_support::engine::KEYRING;
use smithers_test_support::s3::{ACCESS, Lock, Moto, SECRET};

const EVENTS: u64 = 20_000;
const KEY: &str = "dd-bench-key";

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        organization_id: DEFAULT_ORGANIZATION.into(),
        actor_type: ActorType::Agent,
        actor_id: format!("agent-{}", i % 16),
        action: "capability_check".into(),
        resource_type: "tool_call".into(),
        resource_id: format!("call-{i}"),
        details: json!({"tool": "run_command", "resource": "cargo test --all", "decision": "allow", "rule": {"file": "p", "line": 7}}),
        ip_address: None,
        timestamp: smithers_store::now_micros(),
    }
}

async fn app(dir: &std::path::Path) -> (Arc<App>, Principal) {
    let app = App::open(Config {
        data_dir: Some(dir.to_path_buf()),
        signing_key: Some(hex::encode([42u8; 32])),
        keyring: Some(KEYRING.into()),
        ..Config::default()
    })
    .await
    .unwrap();
    let secrets = app.engine().secrets.as_ref().unwrap();
    for (name, value) in [
        ("DD_API_KEY", KEY.to_string()),
        ("S3_CREDENTIALS", format!("{ACCESS}:{SECRET}")),
    ] {
        secrets
            .set(
                &Actor::new(DEFAULT_ORGANIZATION, "admin"),
                SecretRef {
                    environment: smithers_app::destinations::CREDENTIALS_ENVIRONMENT,
                    name,
                },
                &SecretValue::from(value.as_str()),
                None,
            )
            .await
            .unwrap();
    }
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    (Arc::new(app), admin)
}

/// Appends `n` events through the group-commit writer (concurrently), then
/// closes it, which signs a checkpoint over them.
async fn fill(app: &App, n: u64) {
    let (log, writer) = AuditLog::start(
        app.store().clone(),
        smithers_test_support::signer(),
        AuditLogConfig::default(),
    );
    let log = Arc::new(log);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(16) {
                log.append(event(i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    writer.join().await;
}

/// Runs the workers until every destination has caught up; the time it took.
async fn deliver_all(app: &Arc<App>, admin: &Principal) -> Duration {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    tokio::spawn(deliver_destinations(
        app.clone(),
        DeliverySettings {
            poll: Duration::from_millis(5),
            ..DeliverySettings::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let target = app
        .store()
        .audit()
        .last_seq(DEFAULT_ORGANIZATION)
        .await
        .unwrap()
        - 1;
    loop {
        let list = app.audit_destinations().list(admin).await.unwrap();
        if list.iter().all(|d| d.delivered_seq >= target) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    drop(stop);
    took
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

async fn events_of(app: &App) -> Vec<smithers_audit::SealedEvent> {
    app.store()
        .audit()
        .query(&AuditQuery {
            organization_id: DEFAULT_ORGANIZATION.into(),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

async fn datadog() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = app(dir.path()).await;
    let intake = DatadogIntake::start(KEY).await;
    app.audit_destinations()
        .add_datadog(
            &admin,
            NewDatadog {
                name: "dd".into(),
                site: "datadoghq.com".into(),
                endpoint: Some(intake.url().to_string()),
                api_key_secret: "DD_API_KEY".into(),
            },
        )
        .await
        .unwrap();
    fill(&app, EVENTS).await;
    let took = deliver_all(&app, &admin).await;
    let delivered = intake.accepted().len();
    // The anchor: the same entries, gzipped, posted in the same 1,000s.
    let entries: Vec<String> = intake.accepted().iter().map(|e| e.to_string()).collect();
    let http = reqwest::Client::new();
    let started = Instant::now();
    for chunk in entries.chunks(1000) {
        let body = gzip(format!("[{}]", chunk.join(",")).as_bytes());
        let r = http
            .post(intake.url())
            .header("DD-API-KEY", KEY)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    let plain = started.elapsed();
    let ours = delivered as f64 / took.as_secs_f64();
    let anchor = entries.len() as f64 / plain.as_secs_f64();
    println!(
        "datadog intake: {ours:>10.0} events/s delivered ({delivered} events)  |  plain gzipped POSTs of the same entries: {anchor:>10.0} events/s  |  ratio {:.2}",
        ours / anchor
    );
}

async fn s3() {
    let Ok(_) = std::env::var("SMITHERS_MOTO_SERVER") else {
        println!("s3: skipped (SMITHERS_MOTO_SERVER is not set; `. scripts/lib.sh; ensure_moto`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = app(dir.path()).await;
    let moto = Moto::start().await;
    moto.bucket("bench", Lock::Compliance).await;
    app.audit_destinations()
        .add_s3(
            &admin,
            NewS3 {
                name: "s3".into(),
                bucket: "bench".into(),
                prefix: None,
                region: "us-east-1".into(),
                endpoint: Some(moto.url().to_string()),
                credentials_secret: "S3_CREDENTIALS".into(),
            },
        )
        .await
        .unwrap();
    fill(&app, EVENTS).await;
    let covered = app
        .store()
        .audit()
        .checkpoints(DEFAULT_ORGANIZATION)
        .await
        .unwrap()
        .last()
        .unwrap()
        .tree_size;
    let took = deliver_all(&app, &admin).await;
    // The anchor: the same events as gzipped JSON lines, put in objects of
    // 5,000 with a SHA-256 checksum.
    let events = events_of(&app).await;
    let client = moto.client();
    let started = Instant::now();
    for (n, chunk) in events.chunks(5000).enumerate() {
        let mut lines = String::new();
        for e in chunk {
            lines.push_str(&serde_json::to_string(e).unwrap());
            lines.push('\n');
        }
        client
            .put_object()
            .bucket("bench")
            .key(format!("plain/{n}.jsonl.gz"))
            .body(gzip(lines.as_bytes()).into())
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .send()
            .await
            .unwrap();
    }
    let plain = started.elapsed();
    let ours = covered as f64 / took.as_secs_f64();
    let anchor = events.len() as f64 / plain.as_secs_f64();
    println!(
        "s3 (moto):      {ours:>10.0} events/s delivered ({covered} events, with proofs)  |  plain checksummed puts of the same events: {anchor:>10.0} events/s  |  ratio {:.2}",
        ours / anchor
    );
}

/// Mean and 99th percentile latency of appends one after another for
/// `during`; how many.
async fn append_latency(app: &App, during: Duration) -> (Duration, Duration, usize) {
    let (log, writer) = AuditLog::start(
        app.store().clone(),
        smithers_test_support::signer(),
        AuditLogConfig::default(),
    );
    let mut took = Vec::new();
    let begun = Instant::now();
    let mut i = 0;
    while begun.elapsed() < during {
        let started = Instant::now();
        log.append(event(i)).await.unwrap();
        took.push(started.elapsed());
        i += 1;
    }
    drop(log);
    writer.join().await;
    took.sort();
    let n = took.len();
    let mean = took.iter().sum::<Duration>() / u32::try_from(n).unwrap();
    (mean, took[n * 99 / 100], n)
}

async fn appends_with_a_destination_down() {
    // An hour at 1/1000.
    const HOUR: Duration = Duration::from_millis(3600);
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = app(dir.path()).await;
    let (none_mean, none_p99, none_n) = append_latency(&app, HOUR).await;

    let intake = DatadogIntake::start(KEY).await;
    intake.script((0..100_000).map(|_| Answer::Status(503)));
    app.audit_destinations()
        .add_datadog(
            &admin,
            NewDatadog {
                name: "down".into(),
                site: "datadoghq.com".into(),
                endpoint: Some(intake.url().to_string()),
                api_key_secret: "DD_API_KEY".into(),
            },
        )
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(deliver_destinations(
        app.clone(),
        DeliverySettings {
            poll: Duration::from_millis(1),
            max_backoff: Duration::from_millis(300),
            ..DeliverySettings::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let (down_mean, down_p99, down_n) = append_latency(&app, HOUR).await;
    let lag = app.audit_destinations().list(&admin).await.unwrap()[0].clone();
    drop(stop);
    println!(
        "append latency through a simulated hour with a destination down (503 to {} attempts, {down_n} appends): mean {:>7.1} µs, p99 {:>7.1} µs  |  with no destination ({none_n} appends): mean {:>7.1} µs, p99 {:>7.1} µs  |  ratio {:.2}; lag {} events, last error: {}",
        intake.statuses().len(),
        down_mean.as_secs_f64() * 1e6,
        down_p99.as_secs_f64() * 1e6,
        none_mean.as_secs_f64() * 1e6,
        none_p99.as_secs_f64() * 1e6,
        down_mean.as_secs_f64() / none_mean.as_secs_f64(),
        lag.lag,
        lag.last_error.unwrap_or_default()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        datadog().await;
        s3().await;
        appends_with_a_destination_down().await;
    });
}
