//! Changes that commit together with their audit events or not at all: a
//! transaction that first takes the organization's audit chain lock (which
//! also serializes the organization's changes, so check-and-set reads see
//! the latest committed state), then seals the events into the chain and
//! commits both.

use serde_json::Value;
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use sqlx::{Any, Transaction};

use crate::audit::ChainLock;
use crate::{AuditStore, Error, Store};

pub(crate) async fn begin(
    store: &Store,
    organization_id: &str,
) -> Result<(Transaction<'static, Any>, ChainLock), Error> {
    let mut tx = store.pool().begin().await?;
    let chain = AuditStore::lock_chain(&mut tx, organization_id).await?;
    Ok((tx, chain))
}

pub(crate) async fn commit(
    store: &Store,
    mut tx: Transaction<'static, Any>,
    chain: ChainLock,
    events: Vec<AuditEvent>,
    signer: &CheckpointSigner,
    now: i64,
) -> Result<(), Error> {
    AuditStore::append_in(&mut tx, store.backend(), chain, events, signer, now).await?;
    tx.commit().await?;
    Ok(())
}

/// An event of `organization_id`: `actor` did `action` to `resource`
/// (type, id) at `timestamp` (microseconds since the epoch), with a fresh
/// UUIDv7 id. The one builder of audit events: the store's changes and
/// the application's own records (egress, capability checks) use it.
pub fn event(
    organization_id: &str,
    actor: (ActorType, &str),
    action: &str,
    resource: (&str, &str),
    details: Value,
    timestamp: i64,
) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        organization_id: organization_id.to_string(),
        actor_type: actor.0,
        actor_id: actor.1.to_string(),
        action: action.to_string(),
        resource_type: resource.0.to_string(),
        resource_id: resource.1.to_string(),
        details,
        ip_address: None,
        timestamp,
    }
}
