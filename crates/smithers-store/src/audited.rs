//! Changes that commit together with their audit events or not at all: a
//! transaction that first takes the organization's audit chain lock (which
//! also serializes the organization's changes, so check-and-set reads see
//! the latest committed state), then seals the events into the chain and
//! commits both.

use smithers_audit::{AuditEvent, CheckpointSigner};
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
