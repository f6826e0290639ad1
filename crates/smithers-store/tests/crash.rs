//! Crash safety: a writer process killed with SIGKILL in the middle of
//! heavy appends loses no acknowledged event, and its chain still verifies.
//!
//! The test re-runs its own binary as the writer (the `child_writer` test,
//! which only acts when SMITHERS_CRASH_CHILD is set).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use smithers_store::{AuditLog, AuditLogConfig, Store};
use smithers_test_support::audit::{all_events, event};
use smithers_test_support::{TestDb, signer};

/// In the child: append from 16 tasks forever, printing `seq id` once each
/// append has returned (is durable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Ok(dir) = std::env::var("SMITHERS_CRASH_CHILD") else {
        return;
    };
    let url = std::env::var("SMITHERS_CRASH_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let store = Store::open(std::path::Path::new(&dir), url.as_deref())
        .await
        .unwrap();
    let (log, _writer) = AuditLog::start(
        store,
        signer(),
        AuditLogConfig {
            checkpoint_every: 50,
            ..AuditLogConfig::default()
        },
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for t in 0..16u64 {
        let log: AuditLog = log.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let sealed = log.append(event("local", t * 1_000_000 + i)).await.unwrap();
                tx.send(format!("{} {}", sealed.seq, sealed.event.id))
                    .unwrap();
            }
        });
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(line) = rx.recv().await {
        writeln!(out, "ACK {line}").unwrap();
        out.flush().unwrap();
    }
}

async fn crash_and_recover(db: &TestDb, url: Option<String>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_writer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("SMITHERS_CRASH_CHILD", db.dir.path())
        .env("SMITHERS_CRASH_URL", url.unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(ack) = line.strip_prefix("ACK ") else {
            continue;
        };
        let (seq, id) = ack.split_once(' ').unwrap();
        acknowledged.insert(seq.parse::<u64>().unwrap(), id.to_string());
        if acknowledged.len() >= 3000 {
            // SIGKILL: no chance to flush, checkpoint or roll back.
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    let store = db.reopen().await;
    let report = store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap()
        .expect("the chain verifies after the crash");
    let events = all_events(&store).await;
    assert_eq!(report.events, events.len() as u64);
    let stored: BTreeMap<u64, String> = events
        .into_iter()
        .map(|e| (e.seq, e.event.id.to_string()))
        .collect();
    for (seq, id) in &acknowledged {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "acknowledged event {seq} is missing or different"
        );
    }
    assert!(report.events >= acknowledged.len() as u64);
    // And the log carries on from where it was.
    let (log, writer) = AuditLog::start(store.clone(), signer(), AuditLogConfig::default());
    let next = log.append(event("local", 9_999_999)).await.unwrap();
    assert_eq!(next.seq, report.events + 1);
    drop(log);
    writer.join().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_sqlite() {
    if std::env::var("SMITHERS_CRASH_CHILD").is_ok() {
        return;
    }
    let db = TestDb::sqlite().await;
    db.store.close().await;
    crash_and_recover(&db, None).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_postgres() {
    if std::env::var("SMITHERS_CRASH_CHILD").is_ok() {
        return;
    }
    let db = TestDb::postgres().await;
    let url = db.url();
    crash_and_recover(&db, url).await;
    db.cleanup().await;
}
