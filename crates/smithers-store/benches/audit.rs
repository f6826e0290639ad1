//! Audit log throughput, each figure beside its anchor from the same run:
//!
//! - durable appends/s through the group-commit writer with 1, 8 and 64
//!   concurrent writers, against a plain batched INSERT of the same rows
//!   into the same kind of database (no hashing, no chain: the limit);
//! - verification in events/s, against a bare SHA-256 chain over the same
//!   bytes.
//!
//! `cargo bench -p smithers-store --bench audit`. PostgreSQL figures are
//! printed too when SMITHERS_TEST_POSTGRES_URL names a server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench's failure is a panic

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use smithers_audit::merkle::leaf_hash;
use smithers_audit::{ActorType, AuditChain, AuditEvent, CheckpointSigner, LogVerifier};
use smithers_store::{AuditLog, AuditLogConfig, Store, placeholder};
use sqlx::{Connection, Executor};
use uuid::Uuid;

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        organization_id: "local".into(),
        actor_type: ActorType::Agent,
        actor_id: format!("agent-{}", i % 16),
        action: "capability_check".into(),
        resource_type: "tool_call".into(),
        resource_id: format!("call-{i}"),
        details: json!({"tool": "run_command", "resource": "cargo test --all", "decision": "allow", "rule": {"file": "p", "line": 7}}),
        ip_address: None,
        timestamp: 1_700_000_000_000_000 + i64::try_from(i).unwrap(),
    }
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[9u8; 32]).unwrap()
}

struct Db {
    _dir: tempfile::TempDir,
    store: Store,
    cleanup: Option<(String, String)>,
}

async fn fresh(postgres: Option<&str>) -> Db {
    let dir = tempfile::tempdir().unwrap();
    match postgres {
        None => Db {
            store: Store::open(dir.path(), None).await.unwrap(),
            _dir: dir,
            cleanup: None,
        },
        Some(admin) => {
            let name = format!("smithers_bench_{}", Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            let store = Store::open(dir.path(), Some(&format!("{base}/{name}")))
                .await
                .unwrap();
            Db {
                store,
                _dir: dir,
                cleanup: Some((admin.to_string(), name)),
            }
        }
    }
}

async fn drop_db(db: Db) {
    db.store.close().await;
    if let Some((admin, name)) = db.cleanup {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
    }
}

/// Durable appends per second with `writers` tasks each awaiting every append.
async fn appends(postgres: Option<&str>, writers: u64, total: u64) -> f64 {
    let db = fresh(postgres).await;
    let (log, writer) = AuditLog::start(db.store.clone(), signer(), AuditLogConfig::default());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..total / writers {
                log.append(event(w * 1_000_000 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    drop(log);
    writer.join().await;
    drop_db(db).await;
    (total / writers * writers) as f64 / elapsed.as_secs_f64()
}

/// The limit: the same rows inserted the same way (64 rows per INSERT,
/// 1024 rows per transaction) with precomputed zero hashes and no chain.
async fn plain_inserts(postgres: Option<&str>, total: u64) -> f64 {
    let db = fresh(postgres).await;
    let rows: Vec<AuditEvent> = (0..total).map(event).collect();
    let start = Instant::now();
    let mut seq = 0i64;
    for transaction in rows.chunks(1024) {
        let mut tx = db.store.pool().begin().await.unwrap();
        for statement in transaction.chunks(64) {
            let mut sql = String::from(
                "INSERT INTO audit_events (organization_id, seq, id, actor_type, actor_id, action, resource_type, \
                 resource_id, details, ip_address, timestamp, prev_hash, hash) VALUES ",
            );
            let tuples: Vec<String> = (0..statement.len())
                .map(|r| {
                    let params: Vec<String> = (1..=13)
                        .map(|c| placeholder(db.store.backend(), r * 13 + c))
                        .collect();
                    format!("({})", params.join(","))
                })
                .collect();
            sql.push_str(&tuples.join(","));
            let mut query = sqlx::query(&sql);
            for e in statement {
                seq += 1;
                query = query
                    .bind(e.organization_id.clone())
                    .bind(seq)
                    .bind(e.id.to_string())
                    .bind(e.actor_type.as_str())
                    .bind(e.actor_id.clone())
                    .bind(e.action.clone())
                    .bind(e.resource_type.clone())
                    .bind(e.resource_id.clone())
                    .bind(e.details.to_string())
                    .bind(None::<String>)
                    .bind(e.timestamp)
                    .bind(vec![0u8; 32])
                    .bind(vec![0u8; 32]);
            }
            query.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    drop_db(db).await;
    rate
}

fn verify_rates(n: u64) -> (f64, f64) {
    let signer = signer();
    let mut chain = AuditChain::new("local");
    let mut acc = smithers_audit::merkle::Accumulator::new();
    let mut events = Vec::with_capacity(usize::try_from(n).unwrap());
    let mut checkpoints = Vec::new();
    for i in 1..=n {
        let sealed = chain.seal(event(i)).unwrap();
        acc.push(sealed.leaf());
        events.push(sealed);
        if i % 1000 == 0 {
            checkpoints.push(signer.sign("local", i, acc.root(), chain.head(), 0));
        }
    }
    let bytes: Vec<Vec<u8>> = events
        .iter()
        .map(|e| e.event.canonical_bytes(e.seq))
        .collect();
    let keys = [signer.verifying_key()];
    let start = Instant::now();
    let mut verifier = LogVerifier::new("local", &checkpoints, &keys).unwrap();
    for e in &events {
        verifier.push(e).unwrap();
    }
    let report = verifier.finish().unwrap();
    let ours = report.events as f64 / start.elapsed().as_secs_f64();
    // The anchor: a bare chain of SHA-256 over the same canonical bytes.
    let start = Instant::now();
    let mut prev = [0u8; 32];
    for b in &bytes {
        let leaf = leaf_hash(b);
        let mut h = Sha256::new();
        h.update(prev);
        h.update(leaf);
        prev = h.finalize().into();
    }
    std::hint::black_box(prev);
    let anchor = bytes.len() as f64 / start.elapsed().as_secs_f64();
    (ours, anchor)
}

async fn store_verify_rate(postgres: Option<&str>, n: u64) -> f64 {
    let db = fresh(postgres).await;
    let (log, writer) = AuditLog::start(db.store.clone(), signer(), AuditLogConfig::default());
    let mut tasks = Vec::new();
    for w in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 16 {
                log.append(event(w * 1_000_000 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    writer.join().await;
    let start = Instant::now();
    let report = db
        .store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap()
        .unwrap();
    let rate = report.events as f64 / start.elapsed().as_secs_f64();
    drop_db(db).await;
    rate
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a tiny pass then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let total: u64 = if quick { 256 } else { 32_768 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let postgres = std::env::var("SMITHERS_TEST_POSTGRES_URL").ok();
    let mut backends: Vec<(&str, Option<&str>)> = vec![("sqlite", None)];
    if let Some(url) = postgres.as_deref() {
        backends.push(("postgres", Some(url)));
    }
    println!("durable audit appends ({total} events per run, group commit, checkpoint every 1000)");
    println!(
        "{:>9} | {:>8} | {:>14} | {:>22} | {:>7}",
        "backend", "writers", "appends/s", "plain batched INSERT/s", "ratio"
    );
    for (name, url) in &backends {
        let limit = runtime.block_on(plain_inserts(*url, total));
        for writers in [1u64, 8, 64] {
            let rate = runtime.block_on(appends(*url, writers, total));
            println!(
                "{name:>9} | {writers:>8} | {rate:>14.0} | {limit:>22.0} | {:>6.2}x",
                rate / limit
            );
        }
    }
    println!(
        "target: >= 20k durable events/s on SQLite (anchors published: Tessera ~2.9k/s, Trillian ~1.2k/s)"
    );
    println!();
    let n = if quick { 2_000 } else { 1_000_000 };
    let (ours, anchor) = verify_rates(n);
    println!("audit verify, in memory ({n} events, a checkpoint every 1000): {ours:.0} events/s");
    println!(
        "  bare SHA-256 chain over the same bytes: {anchor:.0} events/s (ratio {:.2}x)",
        ours / anchor
    );
    for (name, url) in &backends {
        let stored = if quick { 256 } else { 65_536 };
        let rate = runtime.block_on(store_verify_rate(*url, stored));
        println!("audit verify, read from {name} ({stored} events): {rate:.0} events/s");
    }
    println!("target: verify >= 1M events/s/core (anchor: SHA-256 chain ~3.5M/s)");
    std::thread::sleep(Duration::from_millis(10));
}
