//! The S3 audit destination against a real S3-compatible server (moto's,
//! which enforces Object Lock), on both backends: a bucket without
//! compliance-mode Object Lock is refused with why; the log is written as
//! gzipped JSON lines with proofs and checkpoints, locked as the
//! organization's retention says, and verifies from the bucket alone; a
//! tampered object is named. A canary checks the server still refuses to
//! delete a locked version.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use smithers_api::{ErrorKind, Role};
use smithers_app::destinations::{DeliverySettings, NewS3, deliver_destinations};
use smithers_app::{App, Config, Principal, Via};
use smithers_secrets::SecretValue;
use smithers_store::{Actor, AuditLog, AuditLogConfig, DEFAULT_ORGANIZATION, SecretRef};
use smithers_test_support::engine::KEYRING;
use smithers_test_support::s3::{ACCESS, Lock, Moto, SECRET};
use smithers_test_support::{TestDb, on_both_backends, signer};

async fn app(db: &TestDb) -> (Arc<App>, Principal) {
    let app = App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        signing_key: Some(hex::encode([42u8; 32])),
        keyring: Some(KEYRING.into()),
        ..Config::default()
    })
    .await
    .unwrap();
    app.engine()
        .secrets
        .as_ref()
        .unwrap()
        .set(
            &Actor::new(DEFAULT_ORGANIZATION, "admin"),
            SecretRef {
                environment: smithers_app::destinations::CREDENTIALS_ENVIRONMENT,
                name: "S3_CREDENTIALS",
            },
            &SecretValue::from(format!("{ACCESS}:{SECRET}").as_str()),
            None,
        )
        .await
        .unwrap();
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    (Arc::new(app), admin)
}

fn s3(moto: &Moto, bucket: &str) -> NewS3 {
    NewS3 {
        name: "archive".into(),
        bucket: bucket.into(),
        prefix: Some("smithers/audit".into()),
        region: "us-east-1".into(),
        endpoint: Some(moto.url().to_string()),
        credentials_secret: "S3_CREDENTIALS".into(),
    }
}

/// Signs a checkpoint over every organization's events so far, as a
/// process's audit log does when it closes.
async fn checkpoint(app: &App) {
    let (log, writer) = AuditLog::start(app.store().clone(), signer(), AuditLogConfig::default());
    drop(log);
    writer.join().await;
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

const FAST: DeliverySettings = DeliverySettings {
    poll: Duration::from_millis(20),
    max_backoff: Duration::from_millis(200),
    batch: 5000,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_delete_a_locked_version() {
    // The canary: without it, a server that stopped enforcing Object Lock
    // would let every test below pass for the wrong reason.
    let moto = Moto::start().await;
    moto.bucket("canary", Lock::Compliance).await;
    let client = moto.client();
    let put = client
        .put_object()
        .bucket("canary")
        .key("locked")
        .body(ByteStream::from_static(b"kept"))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let version = put.version_id().unwrap().to_string();
    let deleted = client
        .delete_object()
        .bucket("canary")
        .key("locked")
        .version_id(&version)
        .send()
        .await;
    assert!(deleted.is_err(), "a locked version was deleted");
    let kept = client
        .get_object()
        .bucket("canary")
        .key("locked")
        .version_id(&version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        &kept.body.collect().await.unwrap().into_bytes()[..],
        b"kept"
    );
}

on_both_backends!(a_bucket_without_compliance_lock_is_refused_with_why, |db| {
    let (app, admin) = app(db).await;
    let moto = Moto::start().await;
    moto.bucket("plain", Lock::None).await;
    moto.bucket("governed", Lock::Governance).await;
    let destinations = app.audit_destinations();
    for (bucket, why) in [
        ("plain", "Object Lock"),
        ("governed", "GOVERNANCE mode"),
        ("missing", "NoSuchBucket"),
    ] {
        let e = destinations
            .add_s3(&admin, s3(&moto, bucket))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{bucket}: {e}");
        assert!(e.message.contains(why), "{bucket}: {e}");
    }
    let mut bad = s3(&moto, "plain");
    bad.prefix = Some("../up".into());
    assert_eq!(
        destinations.add_s3(&admin, bad).await.unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert!(destinations.list(&admin).await.unwrap().is_empty());
});

on_both_backends!(
    the_log_is_written_locked_and_verifies_from_the_bucket,
    |db| {
        let (app, admin) = app(db).await;
        let moto = Moto::start().await;
        moto.bucket("audit", Lock::Compliance).await;
        app.retention()
            .set(&admin, Some(30 * 86_400))
            .await
            .unwrap();
        let destinations = app.audit_destinations();
        let added = destinations
            .add_s3(&admin, s3(&moto, "audit"))
            .await
            .unwrap();
        // The whole log, from its first event.
        assert_eq!(added.delivered_seq, 0);
        for i in 0..25 {
            app.users()
                .add(&admin, &format!("user{i}"), Role::Member)
                .await
                .unwrap();
        }
        checkpoint(&app).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(deliver_destinations(app.clone(), FAST, async move {
            let _ = stopped.await;
        }));
        let covered = app
            .store()
            .audit()
            .checkpoints(DEFAULT_ORGANIZATION)
            .await
            .unwrap()
            .last()
            .unwrap()
            .tree_size;
        until("the log written to the bucket", async || {
            destinations.list(&admin).await.unwrap()[0].delivered_seq >= covered
        })
        .await;
        drop(stop);

        let client = moto.client();
        let keys: Vec<String> = client
            .list_objects_v2()
            .bucket("audit")
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        let events_key = keys
            .iter()
            .find(|k| k.ends_with(".jsonl.gz"))
            .unwrap()
            .clone();
        assert!(
            events_key.starts_with("smithers/audit/org/local/20")
                && events_key.ends_with(&format!("/1-{covered}.jsonl.gz")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&format!(
                "smithers/audit/org/local/checkpoints/{covered}.json"
            )),
            "{keys:?}"
        );
        // Locked in compliance mode for the organization's 30 days.
        let head = client
            .head_object()
            .bucket("audit")
            .key(&events_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
        );
        let until_secs = head.object_lock_retain_until_date().unwrap().secs();
        let in_days = (until_secs - smithers_store::now_micros() / 1_000_000) / 86_400;
        assert!((29..=30).contains(&in_days), "{in_days}");

        // The checkpoints too.
        let head = client
            .head_object()
            .bucket("audit")
            .key(format!(
                "smithers/audit/org/local/checkpoints/{covered}.json"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
        );
        let days = (head.object_lock_retain_until_date().unwrap().secs()
            - smithers_store::now_micros() / 1_000_000)
            / 86_400;
        assert!((29..=30).contains(&days), "{days}");

        // From the bucket alone: intact.
        let verified = destinations.verify_s3(&admin, &added.id).await.unwrap();
        assert!(verified.intact, "{verified:?}");
        assert_eq!(
            (verified.first_seq, verified.last_seq),
            (Some(1), Some(covered))
        );

        // An object hidden behind a delete marker (its locked versions stay):
        // named, and intact again once the marker goes.
        let checkpoint_key = format!("smithers/audit/org/local/checkpoints/{covered}.json");
        let marker = client
            .delete_object()
            .bucket("audit")
            .key(&checkpoint_key)
            .send()
            .await
            .unwrap();
        let hidden = destinations.verify_s3(&admin, &added.id).await.unwrap();
        assert!(!hidden.intact);
        assert_eq!(
            hidden.object.as_deref(),
            Some(checkpoint_key.as_str()),
            "{hidden:?}"
        );
        assert!(hidden.problem.unwrap().contains("delete marker"));
        client
            .delete_object()
            .bucket("audit")
            .key(&checkpoint_key)
            .version_id(marker.version_id().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            destinations
                .verify_s3(&admin, &added.id)
                .await
                .unwrap()
                .intact
        );

        // A new version of the object with one event changed (the old one is
        // locked, not hidden from a writer): named.
        let body = client
            .get_object()
            .bucket("audit")
            .key(&events_key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        let forged = text.replacen("\"user3\"", "\"mallory\"", 1);
        assert_ne!(forged, text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, forged.as_bytes()).unwrap();
        client
            .put_object()
            .bucket("audit")
            .key(&events_key)
            .body(ByteStream::from(gz.finish().unwrap()))
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .send()
            .await
            .unwrap();
        let verified = destinations.verify_s3(&admin, &added.id).await.unwrap();
        assert!(!verified.intact);
        assert_eq!(
            verified.object.as_deref(),
            Some(events_key.as_str()),
            "{verified:?}"
        );
    }
);
