#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The GitHub App's records over the store, on SQLite and PostgreSQL: a
//! delivery is recorded once however often it comes, and installation
//! changes commit with their audit events, once, in any order of arrival.

use serde_json::json;
use smithers_store::{
    Cause, Error, InstallationChange, InstallationRef, NewDelivery, Outcome, Recorded,
    RepositoryRef, Store,
};
use smithers_test_support::audit::all_events;
use smithers_test_support::{on_both_backends, signer};

fn delivery<'a>(guid: &'a str, body: &'a str) -> NewDelivery<'a> {
    NewDelivery {
        guid,
        organization_id: "local",
        event: "pull_request",
        action: Some("opened"),
        installation_id: Some(7),
        body_sha256: "00",
        body,
    }
}

fn installation(id: i64) -> InstallationRef {
    InstallationRef {
        id,
        account_login: "acme".into(),
        account_id: 900,
        account_type: "Organization".into(),
        permissions: json!({"contents": "write", "metadata": "read"}),
        repository_selection: "selected".into(),
    }
}

fn repository(id: i64, name: &str) -> RepositoryRef {
    RepositoryRef {
        id,
        full_name: format!("acme/{name}"),
        private: true,
    }
}

const CAUSE: Cause<'static> = Cause {
    delivery: "d-1",
    sender: Some("octocat"),
};

async fn actions(store: &Store) -> Vec<String> {
    all_events(store)
        .await
        .into_iter()
        .map(|e| e.event.action)
        .collect()
}

on_both_backends!(a_delivery_is_recorded_once_with_its_event, |db| {
    let github = db.store.github();
    let first = github
        .record_delivery(&signer(), delivery("g-1", "{\"a\":1}"))
        .await
        .unwrap();
    let Recorded::New(first) = first else {
        panic!("the first delivery is new")
    };
    assert_eq!(first.body, "{\"a\":1}");
    let again = github
        .record_delivery(&signer(), delivery("g-1", "{\"other\":2}"))
        .await
        .unwrap();
    let Recorded::SeenBefore(seen) = again else {
        panic!("the same GUID is seen before")
    };
    assert_eq!(seen.body, "{\"a\":1}", "the first body is kept");
    // The same signed body under another GUID is a replay.
    let Recorded::SeenBefore(replayed) = github
        .record_delivery(&signer(), delivery("g-2", "{\"a\":1}"))
        .await
        .unwrap()
    else {
        panic!("a replayed body is seen before")
    };
    assert_eq!(replayed.guid, "g-1");
    let received: Vec<_> = actions(&db.store)
        .await
        .into_iter()
        .filter(|a| a == "github.delivery_received")
        .collect();
    assert_eq!(received.len(), 1);

    assert_eq!(github.pending_deliveries(10).await.unwrap().len(), 1);
    assert!(
        github
            .finish_delivery("g-1", Outcome::Handled, None)
            .await
            .unwrap()
    );
    assert!(
        !github
            .finish_delivery("g-1", Outcome::Failed, Some("late"))
            .await
            .unwrap(),
        "a delivery is finished once"
    );
    let done = github.delivery("g-1").await.unwrap().unwrap();
    assert_eq!(done.outcome.as_deref(), Some("handled"));
    assert!(github.pending_deliveries(10).await.unwrap().is_empty());
});

on_both_backends!(concurrent_deliveries_of_one_guid_make_one_record, |db| {
    let signer = std::sync::Arc::new(signer());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = db.store.clone();
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            store
                .github()
                .record_delivery(&signer, delivery("g-same", "{}"))
                .await
                .unwrap()
        }));
    }
    let mut new = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Recorded::New(_)) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
});

on_both_backends!(installation_changes_are_audited_once_each, |db| {
    let github = db.store.github();
    let created = InstallationChange::Created(
        installation(7),
        vec![repository(1, "api"), repository(2, "web")],
    );
    let recorded = github
        .apply(&signer(), "local", &created, CAUSE)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        [
            "github.installation_created",
            "repository.connected",
            "repository.connected"
        ]
    );
    // The same event again (a redelivery) records nothing.
    assert!(
        github
            .apply(&signer(), "local", &created, CAUSE)
            .await
            .unwrap()
            .is_empty()
    );

    let change = InstallationChange::Repositories {
        installation: installation(7),
        added: vec![repository(3, "docs")],
        removed: vec![repository(1, "api")],
    };
    let recorded = github
        .apply(&signer(), "local", &change, CAUSE)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        ["repository.connected", "repository.disconnected"]
    );
    let connected: Vec<_> = github
        .repositories("local")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.disconnected_at.is_none())
        .map(|r| r.full_name)
        .collect();
    assert_eq!(connected, ["acme/docs", "acme/web"]);

    assert_eq!(
        github
            .apply(&signer(), "local", &InstallationChange::Suspended(7), CAUSE)
            .await
            .unwrap(),
        ["github.installation_suspended"]
    );
    assert!(
        github
            .installation(7)
            .await
            .unwrap()
            .unwrap()
            .suspended_at
            .is_some()
    );
    github
        .apply(
            &signer(),
            "local",
            &InstallationChange::Unsuspended(7),
            CAUSE,
        )
        .await
        .unwrap();

    let recorded = github
        .apply(&signer(), "local", &InstallationChange::Deleted(7), CAUSE)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        [
            "github.installation_deleted",
            "repository.disconnected",
            "repository.disconnected"
        ]
    );
    assert!(
        github
            .repositories("local")
            .await
            .unwrap()
            .iter()
            .all(|r| r.disconnected_at.is_some())
    );

    // Every event names the delivery and the sender; the log verifies.
    let events = all_events(&db.store).await;
    let connected = events
        .iter()
        .find(|e| e.event.action == "repository.connected")
        .unwrap();
    assert_eq!(connected.event.resource_type, "repository");
    assert_eq!(connected.event.resource_id, "acme/api");
    assert_eq!(connected.event.details["delivery"], "d-1");
    assert_eq!(connected.event.details["sender"], "octocat");
    assert!(
        db.store
            .audit()
            .verify("local", &[signer().verifying_key()])
            .await
            .unwrap()
            .is_ok()
    );
});

on_both_backends!(a_change_to_an_unknown_installation_changes_nothing, |db| {
    let github = db.store.github();
    let err = github
        .apply(
            &signer(),
            "local",
            &InstallationChange::Suspended(99),
            CAUSE,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(actions(&db.store).await.is_empty());
});

on_both_backends!(
    repositories_arriving_before_their_installation_create_it,
    |db| {
        let github = db.store.github();
        let change = InstallationChange::Repositories {
            installation: installation(9),
            added: vec![repository(4, "cli")],
            removed: vec![],
        };
        let recorded = github
            .apply(&signer(), "local", &change, CAUSE)
            .await
            .unwrap();
        assert_eq!(
            recorded,
            ["github.installation_created", "repository.connected"]
        );
        // The late `created` adds nothing new.
        let created = InstallationChange::Created(installation(9), vec![repository(4, "cli")]);
        assert!(
            github
                .apply(&signer(), "local", &created, CAUSE)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_backends!(a_schedules_firing_is_claimed_once, |db| {
    let github = db.store.github();
    // First seen: recorded as fired now.
    assert_eq!(
        github.schedule_fired_at(7, "nightly", 1_000).await.unwrap(),
        1_000
    );
    assert_eq!(
        github.schedule_fired_at(7, "nightly", 9_000).await.unwrap(),
        1_000
    );
    // Two processes read 1000; one claims the firing.
    assert!(
        github
            .claim_schedule(7, "nightly", 1_000, 5_000)
            .await
            .unwrap()
    );
    assert!(
        !github
            .claim_schedule(7, "nightly", 1_000, 5_001)
            .await
            .unwrap()
    );
    assert_eq!(
        github.schedule_fired_at(7, "nightly", 9_000).await.unwrap(),
        5_000
    );
    // Given back when nothing could start.
    assert!(
        github
            .claim_schedule(7, "nightly", 5_000, 1_000)
            .await
            .unwrap()
    );
    assert_eq!(
        github.schedule_fired_at(7, "nightly", 9_000).await.unwrap(),
        1_000
    );
    // Another workflow of the repository is its own.
    assert_eq!(
        github.schedule_fired_at(7, "weekly", 9_000).await.unwrap(),
        9_000
    );
});
