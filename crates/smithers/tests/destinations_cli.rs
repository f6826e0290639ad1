//! `smithers audit destinations` as an operator runs it, delivered by
//! `smithers serve` to the Datadog intake stand-in: a server killed with
//! SIGKILL in the middle of a batch loses nothing after its restart, and
//! what came twice is recognisable by event id and sequence number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use smithers_test_support::datadog::{Answer, DatadogIntake};

mod common;

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY: &str = "dd-key-cli-8e21";

fn smithers(home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env("SECRET_ENCRYPTION_KEYS", KEYRING)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_NATS_URL")
        .env_remove("SMITHERS_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = smithers(home, args, b"");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn destination(home: &Path) -> Value {
    let list: Value =
        serde_json::from_str(&ok(home, &["audit", "destinations", "list", "--json"])).unwrap();
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_batch_loses_nothing() {
    let intake = DatadogIntake::start(KEY).await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_path_buf();
    let url = intake.url().to_string();
    let id = tokio::task::block_in_place(|| {
        let out = smithers(
            &home,
            &[
                "secrets",
                "set",
                "DD_API_KEY",
                "--env",
                "audit-destinations",
            ],
            KEY.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Refused plainly: an unknown site, a member.
        let out = smithers(
            &home,
            &[
                "audit",
                "destinations",
                "add",
                "datadog",
                "--site",
                "example.com",
                "--api-key-secret",
                "DD_API_KEY",
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("datadoghq.eu"));
        let added: Value = serde_json::from_str(&ok(
            &home,
            &[
                "audit",
                "destinations",
                "add",
                "datadog",
                "--site",
                "datadoghq.eu",
                "--endpoint",
                &url,
                "--api-key-secret",
                "DD_API_KEY",
                "--json",
            ],
        ))
        .unwrap();
        for i in 0..20 {
            ok(&home, &["users", "add", &format!("user{i}")]);
        }
        let listed = ok(&home, &["audit", "destinations", "list"]);
        assert!(listed.contains("lag 2"), "{listed}");
        added["id"].as_str().unwrap().to_string()
    });

    // The first request is held three seconds: the server dies with it
    // in flight.
    intake.script([Answer::Delay(Duration::from_secs(3))]);
    let mut first = common::serve_at(
        &home,
        "127.0.0.1:0",
        &[],
        &[("SECRET_ENCRYPTION_KEYS", KEYRING)],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill();
    let behind = tokio::task::block_in_place(|| destination(&home));
    assert!(behind["lag"].as_u64().unwrap() > 0, "{behind}");

    let mut second = common::serve_at(
        &home,
        "127.0.0.1:0",
        &[],
        &[("SECRET_ENCRYPTION_KEYS", KEYRING)],
    );
    let mut caught_up = Value::Null;
    for _ in 0..200 {
        caught_up = tokio::task::block_in_place(|| destination(&home));
        if caught_up["lag"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(caught_up["lag"], 0, "{caught_up}");
    let (status, said) = second.terminate();
    assert_eq!(status, Some(0), "{said}");

    // Every event from the destination's start on, each id always with the
    // same sequence number and hash.
    let start = 2; // the secret's write and its read before the adding
    let delivered = caught_up["delivered_seq"].as_u64().unwrap();
    let mut seen: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for event in intake.events() {
        let seq = event["seq"].as_u64().unwrap();
        let key = (
            event["event"]["id"].as_str().unwrap().to_string(),
            event["hash"].as_str().unwrap().to_string(),
        );
        if let Some(earlier) = seen.insert(seq, key.clone()) {
            assert_eq!(earlier, key, "event {seq} came twice, differently");
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (start + 1..=delivered).collect::<Vec<_>>()
    );
    // The test event goes too, and is recorded.
    let test = ok(&home, &["audit", "destinations", "test", &id]);
    assert!(test.contains("reached"), "{test}");
    let out = smithers(&home, &["audit", "verify"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
