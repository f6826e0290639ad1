//! Audit events for the store's tests: a deterministic event of every
//! shape, a started audit log, and what the default organization's log
//! holds.

use std::time::Duration;

use serde_json::json;
use smithers_audit::{ActorType, AuditEvent, SealedEvent};
use smithers_store::{AuditLog, AuditLogConfig, AuditQuery, AuditWriter, Store};
use uuid::Uuid;

use crate::signer;

/// The `i`th test event of organization `org`: actors, actions and IP
/// addresses vary with `i`; the timestamp is one second per `i`.
pub fn event(org: &str, i: u64) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        organization_id: org.into(),
        actor_type: if i.is_multiple_of(2) {
            ActorType::Agent
        } else {
            ActorType::User
        },
        actor_id: format!("actor-{}", i % 3),
        action: if i.is_multiple_of(5) {
            "secret.read".into()
        } else {
            "capability_check".into()
        },
        resource_type: "tool_call".into(),
        resource_id: format!("call-{i}"),
        details: json!({"i": i, "decision": "allow", "ratio": 0.5, "z": {"b": 1, "a": [true]}}),
        ip_address: if i.is_multiple_of(4) {
            Some("192.0.2.7".parse().unwrap())
        } else {
            None
        },
        timestamp: 1_700_000_000_000_000 + i64::try_from(i).unwrap() * 1_000_000,
    }
}

/// A started audit log with the test [`signer`], checkpointing every
/// `every` events (and hourly).
pub fn start_log(store: &Store, every: u64) -> (AuditLog, AuditWriter) {
    AuditLog::start(
        store.clone(),
        signer(),
        AuditLogConfig {
            checkpoint_every: every,
            checkpoint_interval: Duration::from_secs(3600),
            max_batch: 256,
        },
    )
}

/// Every event of the default organization, oldest first.
pub async fn all_events(store: &Store) -> Vec<SealedEvent> {
    let query = AuditQuery {
        organization_id: "local".into(),
        ..Default::default()
    };
    store.audit().query(&query).await.unwrap()
}

/// The sizes of the default organization's checkpoints, smallest first.
pub async fn checkpoint_sizes(store: &Store) -> Vec<u64> {
    let checkpoints = store.audit().checkpoints("local").await.unwrap();
    checkpoints.iter().map(|c| c.tree_size).collect()
}

/// Appends `n` events to the default organization and waits for the writer.
pub async fn fill(store: &Store, n: u64, every: u64) {
    let (log, writer) = start_log(store, every);
    for i in 1..=n {
        log.append(event("local", i)).await.unwrap();
    }
    drop(log);
    writer.join().await;
}
