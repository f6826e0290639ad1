//! Audit destinations through the service on both backends, against the
//! Datadog intake stand-in: every event arrives once accepted, in order,
//! with its hashes; outages are waited out, too-large requests halved, a
//! refused key stops the destination until a test passes, events older
//! than the intake takes are said as a gap, and retention never prunes
//! what a destination still delivering has not had.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::sync::Arc;
use std::time::Duration;

use smithers_api::{ErrorKind, Role};
use smithers_app::destinations::{DeliverySettings, NewDatadog, deliver_destinations};
use smithers_app::{App, Config, Principal, Via};
use smithers_secrets::SecretValue;
use smithers_store::{Actor, DEFAULT_ORGANIZATION, SecretRef};
use smithers_test_support::datadog::{Answer, DatadogIntake};
use smithers_test_support::engine::KEYRING;
use smithers_test_support::{TestDb, on_both_backends};

const KEY: &str = "dd-api-key-4f1c2e";

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
                name: "DD_API_KEY",
            },
            &SecretValue::from(KEY),
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

fn datadog(intake: &DatadogIntake) -> NewDatadog {
    NewDatadog {
        name: "dd".into(),
        site: "datadoghq.eu".into(),
        endpoint: Some(intake.url().to_string()),
        api_key_secret: "DD_API_KEY".into(),
    }
}

const FAST: DeliverySettings = DeliverySettings {
    poll: Duration::from_millis(20),
    max_backoff: Duration::from_millis(200),
    batch: 5000,
};

/// Runs the delivery workers until the returned sender is dropped.
fn workers(app: &Arc<App>) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(deliver_destinations(app.clone(), FAST, async move {
        let _ = stopped.await;
    }));
    stop
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn add_users(app: &App, by: &Principal, n: usize, from: usize) {
    for i in from..from + n {
        app.users()
            .add(by, &format!("user{i}"), Role::Member)
            .await
            .unwrap();
    }
}

on_both_backends!(every_event_arrives_in_order_through_outages, |db| {
    let (app, admin) = app(db).await;
    let intake = DatadogIntake::start(KEY).await;
    let destinations = app.audit_destinations();
    let added = destinations
        .add_datadog(&admin, datadog(&intake))
        .await
        .unwrap();
    assert_eq!(added.kind, "datadog");
    assert_eq!(added.settings["api_key_secret"], "DD_API_KEY");
    assert!(!added.settings.to_string().contains(KEY));
    // From the end of the log as it was: the key's read, then the adding.
    let start = added.delivered_seq;
    // An outage, then requests too large for the intake: waited out and
    // halved; nothing is lost and nothing reordered.
    intake.script([
        Answer::Status(503),
        Answer::Status(429),
        Answer::Status(408),
    ]);
    intake.set_max_payload(4096);
    add_users(&app, &admin, 30, 0).await;
    let stop = workers(&app);
    let log_seq = app
        .store()
        .audit()
        .last_seq(DEFAULT_ORGANIZATION)
        .await
        .unwrap();
    until("every event delivered", async || {
        let list = destinations.list(&admin).await.unwrap();
        list[0].delivered_seq >= log_seq
    })
    .await;
    // (The worker's own read of the key is an event too, delivered as well.)
    let log_seq = destinations.list(&admin).await.unwrap()[0].delivered_seq;
    let statuses = intake.statuses();
    assert_eq!(&statuses[..3], [503, 429, 408]);
    assert!(statuses.contains(&413), "{statuses:?}");
    let seqs: Vec<u64> = intake
        .events()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(
        unique,
        (start + 1..=log_seq).collect::<Vec<_>>(),
        "{seqs:?}"
    );
    // Each entry is the sealed event: its hash chains to the one before.
    let events = intake.events();
    for pair in events.windows(2) {
        if pair[1]["seq"].as_u64() == Some(pair[0]["seq"].as_u64().unwrap() + 1) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        }
    }
    let entry = &intake.accepted()[0];
    assert_eq!(entry["ddsource"], "smithers");
    assert!(
        entry["ddtags"]
            .as_str()
            .unwrap()
            .contains("organization:local")
    );
    let listed = &destinations.list(&admin).await.unwrap()[0];
    assert_eq!(listed.last_error, None);
    assert!(listed.last_success_at.is_some());
    drop(stop);
});

on_both_backends!(a_refused_key_stops_until_a_test_passes, |db| {
    let (app, admin) = app(db).await;
    let intake = DatadogIntake::start("another-key").await;
    let destinations = app.audit_destinations();
    let added = destinations
        .add_datadog(&admin, datadog(&intake))
        .await
        .unwrap();
    let stop = workers(&app);
    add_users(&app, &admin, 3, 0).await;
    until("the destination to stop", async || {
        destinations.list(&admin).await.unwrap()[0]
            .stopped
            .is_some()
    })
    .await;
    let listed = &destinations.list(&admin).await.unwrap()[0];
    assert!(
        listed.stopped.as_ref().unwrap().contains("403"),
        "{listed:?}"
    );
    assert!(listed.lag >= 3);
    // Retention does not wait for a stopped destination.
    assert_eq!(
        app.store()
            .destinations()
            .slowest(DEFAULT_ORGANIZATION)
            .await
            .unwrap(),
        None
    );
    // A test with the wrong key still fails, and says so.
    let test = destinations.test(&admin, &added.id).await.unwrap();
    assert!(!test.delivered);
    assert!(test.error.unwrap().contains("403"));
    // The key fixed: the test passes, delivery goes on from where it was.
    intake.set_key(KEY);
    let test = destinations.test(&admin, &added.id).await.unwrap();
    assert!(test.delivered, "{test:?}");
    assert_eq!(test.destination.stopped, None);
    let marked = intake.events();
    assert_eq!(marked[0]["event"]["action"], "audit.destination_test");
    assert_eq!(marked[0]["seq"], 0);
    until("the backlog delivered", async || {
        let d = &destinations.list(&admin).await.unwrap()[0];
        d.lag == 0
    })
    .await;
    drop(stop);
    let actions: Vec<String> = app
        .audit()
        .log(&admin, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "audit.destination_tested")
            .count(),
        2
    );
});

on_both_backends!(
    only_admins_manage_destinations_and_names_are_checked,
    |db| {
        let (app, admin) = app(db).await;
        let intake = DatadogIntake::start(KEY).await;
        let destinations = app.audit_destinations();
        app.users().add(&admin, "bob", Role::Member).await.unwrap();
        let bob = app
            .principal(DEFAULT_ORGANIZATION, "bob", Via::Cli)
            .await
            .unwrap();
        let refused = destinations
            .add_datadog(&bob, datadog(&intake))
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Forbidden);
        assert_eq!(
            destinations.list(&bob).await.unwrap_err().kind,
            ErrorKind::Forbidden
        );
        let mut bad = datadog(&intake);
        bad.site = "datadog.example".into();
        assert_eq!(
            destinations
                .add_datadog(&admin, bad)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Invalid
        );
        let mut missing = datadog(&intake);
        missing.api_key_secret = "NO_SUCH_SECRET".into();
        let e = destinations.add_datadog(&admin, missing).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("NO_SUCH_SECRET"), "{e}");
        let added = destinations
            .add_datadog(&admin, datadog(&intake))
            .await
            .unwrap();
        assert_eq!(
            destinations
                .add_datadog(&admin, datadog(&intake))
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Conflict
        );
        destinations.remove(&admin, &added.id).await.unwrap();
        assert!(destinations.list(&admin).await.unwrap().is_empty());
        assert_eq!(
            destinations
                .remove(&admin, &added.id)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::NotFound
        );
        // The name is free again.
        destinations
            .add_datadog(&admin, datadog(&intake))
            .await
            .unwrap();
    }
);

on_both_backends!(retention_waits_for_a_delivering_destination, |db| {
    let (app, admin) = app(db).await;
    let intake = DatadogIntake::start(KEY).await;
    let destinations = app.audit_destinations();
    let added = destinations
        .add_datadog(&admin, datadog(&intake))
        .await
        .unwrap();
    add_users(&app, &admin, 5, 0).await;
    app.retention().set(&admin, Some(86_400)).await.unwrap();
    // Nothing delivered yet: a prune a week on stops at the destination.
    let later = smithers_store::now_micros() + 7 * 86_400 * 1_000_000;
    let pass = app
        .retention()
        .run_at(DEFAULT_ORGANIZATION, later, false)
        .await
        .unwrap();
    let audit = pass.audit.unwrap();
    assert_eq!(audit.through, added.delivered_seq);
    assert!(audit.held_back_from.unwrap() > audit.through);
    let verified = app.audit().verify(&admin, &[]).await.unwrap();
    assert!(verified.intact, "{verified:?}");
});

on_both_backends!(events_older_than_the_intake_takes_are_said_as_a_gap, |db| {
    let (app, admin) = app(db).await;
    let intake = DatadogIntake::start(KEY).await;
    let destinations = app.audit_destinations();
    let added = destinations
        .add_datadog(&admin, datadog(&intake))
        .await
        .unwrap();
    // Five events dated 2023 (an outage of years, as far as the intake
    // can tell), then fresh ones.
    let (log, writer) = smithers_store::AuditLog::start(
        app.store().clone(),
        smithers_test_support::signer(),
        smithers_store::AuditLogConfig::default(),
    );
    for i in 1..=5 {
        log.append(smithers_test_support::audit::event(DEFAULT_ORGANIZATION, i))
            .await
            .unwrap();
    }
    drop(log);
    writer.join().await;
    add_users(&app, &admin, 2, 0).await;
    let stop = workers(&app);
    until("the fresh events delivered", async || {
        let d = &destinations.list(&admin).await.unwrap()[0];
        d.lag == 0 && d.last_gap.is_some()
    })
    .await;
    drop(stop);
    let d = &destinations.list(&admin).await.unwrap()[0];
    let gap = d.last_gap.as_deref().unwrap();
    // After the destination's own `audit.destination_added`.
    let (first, last) = (added.delivered_seq + 2, added.delivered_seq + 6);
    assert!(
        gap.contains(&format!("events {first}..={last} (5)")),
        "{gap}"
    );
    assert!(gap.contains("18 hours") && gap.contains("S3"), "{gap}");
    let seqs: Vec<u64> = intake
        .events()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.iter().all(|s| !(first..=last).contains(s)), "{seqs:?}");
    assert!(
        seqs.contains(&(first - 1)) && seqs.contains(&(last + 1)),
        "{seqs:?}"
    );
    assert_eq!(intake.dropped_old(), 0, "nothing old was even sent");
    let gaps = app
        .audit()
        .log(
            &admin,
            &smithers_app::AuditFilter {
                action: Some("audit.destination_gap".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].details["count"], 5);
});
