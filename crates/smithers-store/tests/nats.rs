//! Delivery to a real NATS JetStream server (spawned per test on loopback):
//! nothing lost or duplicated across an outage, duplicates suppressed, and
//! the stream refuses deletes and purges.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use smithers_audit::SealedEvent;
use smithers_store::{AUDIT_STREAM, AuditPublisher};
use smithers_test_support::audit::{event, start_log};
use smithers_test_support::on_both_backends;
use tokio::sync::watch;

/// The nats-server binary: `SMITHERS_NATS_SERVER` (scripts/test installs
/// one, `ensure_nats` in scripts/lib.sh), else one on the `PATH`.
fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SMITHERS_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .expect(
            "the NATS tests need nats-server 2.10 or later: run scripts/test, or \
             `. scripts/lib.sh; ensure_nats` and export SMITHERS_NATS_SERVER",
        )
}

/// The server's configuration: JetStream storing in `dir` and fsyncing
/// every write before it is acknowledged (`sync_interval: always`, NATS
/// 2.10 and later; an older server refuses the file and the tests fail
/// rather than run on a server that may lose acknowledged events).
fn config(dir: &std::path::Path, port: u16) -> String {
    format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
        dir.join("store").display()
    )
}

/// A nats-server with JetStream on a loopback port, storing in a temporary directory.
struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = NatsServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let file = self.dir.path().join("nats.conf");
        std::fs::write(&file, config(self.dir.path(), self.port)).unwrap();
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn stream(url: &str) -> jetstream::stream::Stream {
    let client = async_nats::connect(url).await.unwrap();
    jetstream::new(client)
        .get_stream(AUDIT_STREAM)
        .await
        .unwrap()
}

async fn wait_for_messages(url: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count = match async_nats::connect(url).await {
            Ok(client) => match jetstream::new(client).get_stream(AUDIT_STREAM).await {
                Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            },
            Err(_) => 0,
        };
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {count} messages, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends!(an_outage_loses_and_duplicates_nothing, |db| {
    let mut nats = NatsServer::start();
    let store = db.store.clone();
    let publisher = AuditPublisher::connect(store.clone(), &nats.url())
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(publisher.run(Duration::from_millis(50), stopped));
    let (log, writer) = start_log(&store, 10);
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(log.append(event("local", i)).await.unwrap().event.id);
    }
    wait_for_messages(&nats.url(), 10).await;

    nats.stop();
    for i in 11..=30 {
        // Appends keep committing while NATS is down.
        ids.push(log.append(event("local", i)).await.unwrap().event.id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart();
    wait_for_messages(&nats.url(), 30).await;
    // Give a stray republish the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut s = stream(&nats.url()).await;
    assert_eq!(
        s.info().await.unwrap().state.messages,
        30,
        "each event exactly once"
    );
    for n in 1..=30u64 {
        let message = s.get_raw_message(n).await.unwrap();
        let sealed: SealedEvent = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(sealed.seq, n, "in order");
        assert_eq!(message.subject.as_str(), "audit.local");
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str()
            .to_string();
        assert_eq!(id, ids[usize::try_from(n - 1).unwrap()].to_string());
        assert_eq!(sealed.event.id, ids[usize::try_from(n - 1).unwrap()]);
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    drop(log);
    writer.join().await;
});

on_both_backends!(
    duplicates_are_suppressed_and_the_stream_is_append_only,
    |db| {
        let nats = NatsServer::start();
        let store = db.store.clone();
        let (log, writer) = start_log(&store, 10);
        let sealed = log.append(event("local", 1)).await.unwrap();
        drop(log);
        writer.join().await;
        let publisher = AuditPublisher::connect(store.clone(), &nats.url())
            .await
            .unwrap();
        publisher.ensure_stream().await.unwrap();
        assert!(
            !publisher.publish(&sealed).await.unwrap(),
            "first publish is new"
        );
        assert!(
            publisher.publish(&sealed).await.unwrap(),
            "second publish is a duplicate"
        );
        // The cursor starts at 0, so this republishes event 1: still one message.
        assert_eq!(publisher.publish_pending().await.unwrap(), 1);
        let mut s = stream(&nats.url()).await;
        let info = s.info().await.unwrap().clone();
        assert_eq!(info.state.messages, 1);
        assert!(info.config.deny_delete && info.config.deny_purge);
        assert_eq!(info.config.max_age, Duration::ZERO);
        assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
        assert_eq!(
            info.config.retention,
            jetstream::stream::RetentionPolicy::Limits
        );
        assert!(s.delete_message(1).await.is_err(), "deletes are denied");
        assert!(s.purge().await.is_err(), "purges are denied");
        assert_eq!(s.info().await.unwrap().state.messages, 1);
        assert_eq!(
            publisher.publish_pending().await.unwrap(),
            0,
            "nothing left to deliver"
        );
    }
);
