//! Retention of the audit log: dropping the oldest events behind a signed
//! prune base, in one transaction that first verifies the whole log, then
//! records the base, deletes the events it covers (the one delete the
//! tables allow) and appends the `audit.pruned` event that says so.

use ed25519_dalek::VerifyingKey;
use serde_json::json;
use smithers_audit::{
    ActorType, Checkpoint, CheckpointSigner, Hash, LogVerifier, PRUNED_ACTION, PruneBase,
    SealedEvent,
};
use sqlx::{Any, Row, Transaction};

use super::{
    AuditStore, EVENT_COLUMNS, checkpoint_from_row, checkpoints_of, event_from_row, hash_from,
    to_i64, to_u64,
};
use crate::Error;

/// Events read a page at a time while a prune checks the log.
const PAGE: i64 = 5000;

/// What a prune did, or would do (`dry_run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub organization_id: String,
    /// The first and last sequence numbers dropped.
    pub first: u64,
    pub through: u64,
    /// Events dropped: `through - first + 1`.
    pub events: u64,
    /// Where the cutoff alone would have pruned to, when events not yet
    /// delivered to NATS or to an audit destination held it back.
    pub held_back_from: Option<u64>,
    /// The `audit.pruned` event's sequence number (`None` on a dry run).
    pub recorded_at: Option<u64>,
}

/// A prune base as its row holds it.
fn base_from_row(row: &sqlx::any::AnyRow) -> Result<PruneBase, Error> {
    let frontier: Vec<u8> = row.try_get("frontier")?;
    let checkpoint = checkpoint_from_row(row).map_err(|e| match e {
        Error::Corrupt { detail, .. } => Error::Corrupt {
            table: "audit_prune_bases",
            detail,
        },
        other => other,
    })?;
    Ok(PruneBase {
        checkpoint,
        frontier: frontier
            .chunks(32)
            .map(|c| hash_from(c.to_vec(), "audit_prune_bases", "frontier"))
            .collect::<Result<_, _>>()?,
    })
}

const BASE_COLUMNS: &str =
    "organization_id, tree_size, root, chain_head, timestamp, key_id, signature, frontier";

impl AuditStore<'_> {
    /// The prune base in force for `organization_id` (the newest), if its
    /// log was ever pruned.
    pub async fn prune_base(&self, organization_id: &str) -> Result<Option<PruneBase>, Error> {
        base_of(self.store.pool(), organization_id).await
    }

    /// Drops `organization_id`'s events older than `before` (microseconds
    /// since the epoch): every event up to the first one at or after it —
    /// but never one not yet delivered to NATS (when the outbox publishes
    /// this organization) or to an audit destination still delivering (a
    /// stopped one does not hold retention back). In one transaction under the chain lock: the
    /// whole log is verified first (against its checkpoints, signed by one
    /// of `trusted_keys`, and the base in force), the prefix is signed as
    /// the new prune base, its events deleted, and an `audit.pruned` event
    /// (first, through, count, root, chain head, cutoff) appended. With
    /// `dry_run` nothing is written. `Ok(None)`: nothing to prune.
    ///
    /// Errors: [`Error::Invalid`] when the log does not verify (nothing is
    /// pruned over tampering) or the organization does not exist; the
    /// database's.
    pub async fn prune(
        &self,
        organization_id: &str,
        before: i64,
        signer: &CheckpointSigner,
        trusted_keys: &[VerifyingKey],
        dry_run: bool,
        now: i64,
    ) -> Result<Option<Pruned>, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let last = chain.head.chain.last_seq();
        let base = base_of(&mut *tx, organization_id).await?;
        let base_size = base.as_ref().map_or(0, |b| b.checkpoint.tree_size);
        let (first_kept,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(seq) FROM audit_events WHERE organization_id = $1 AND timestamp >= $2",
        )
        .bind(organization_id)
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
        let by_time = match first_kept {
            Some(seq) => to_u64(seq, "audit_events")?.saturating_sub(1),
            None => last,
        };
        let published: Option<(i64,)> = sqlx::query_as(
            "SELECT published_seq FROM audit_publish_cursor WHERE organization_id = $1",
        )
        .bind(organization_id)
        .fetch_optional(&mut *tx)
        .await?;
        let published = published
            .map(|(p,)| to_u64(p, "audit_publish_cursor"))
            .transpose()?;
        // Nor past what a destination still delivering has not had.
        let (slowest,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(delivered_seq) FROM audit_destinations \
             WHERE organization_id = $1 AND removed_at IS NULL AND stopped IS NULL",
        )
        .bind(organization_id)
        .fetch_one(&mut *tx)
        .await?;
        let slowest = slowest
            .map(|s| to_u64(s, "audit_destinations"))
            .transpose()?;
        let through = [published, slowest]
            .into_iter()
            .flatten()
            .fold(by_time, u64::min);
        if through <= base_size {
            tx.rollback().await?;
            return Ok(None);
        }
        let checkpoints = checkpoints_of(&mut *tx, organization_id).await?;
        let (accumulator, head) = verify_in_tx(
            &mut tx,
            organization_id,
            base.as_ref(),
            &checkpoints,
            trusted_keys,
            through,
        )
        .await?;
        let mut pruned = Pruned {
            organization_id: organization_id.to_string(),
            first: base_size + 1,
            through,
            events: through - base_size,
            held_back_from: (through < by_time).then_some(by_time),
            recorded_at: None,
        };
        if dry_run {
            tx.rollback().await?;
            return Ok(Some(pruned));
        }
        let new_base = PruneBase::sign(signer, organization_id, &accumulator, head, now);
        sqlx::query(&format!(
            "INSERT INTO audit_prune_bases ({BASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(organization_id)
        .bind(to_i64(through))
        .bind(new_base.checkpoint.root.to_vec())
        .bind(new_base.checkpoint.chain_head.to_vec())
        .bind(new_base.checkpoint.timestamp)
        .bind(&new_base.checkpoint.key_id)
        .bind(new_base.checkpoint.signature.to_vec())
        .bind(new_base.frontier.concat())
        .execute(&mut *tx)
        .await?;
        let deleted =
            sqlx::query("DELETE FROM audit_events WHERE organization_id = $1 AND seq <= $2")
                .bind(organization_id)
                .bind(to_i64(through))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if deleted != pruned.events {
            // The verification above read every one of them: a count that
            // differs means the table changed under the lock.
            return Err(Error::Corrupt {
                table: "audit_events",
                detail: format!(
                    "pruning {} events of {organization_id} deleted {deleted}",
                    pruned.events
                ),
            });
        }
        let event = crate::audited::event(
            organization_id,
            (ActorType::System, "retention"),
            PRUNED_ACTION,
            ("audit_log", organization_id),
            json!({
                "first": pruned.first,
                "through": through,
                "count": pruned.events,
                "root": hex::encode(new_base.checkpoint.root),
                "chain_head": hex::encode(new_base.checkpoint.chain_head),
                "before": before,
                "key_id": new_base.checkpoint.key_id,
            }),
            now,
        );
        let sealed = AuditStore::append_in(
            &mut tx,
            self.store.backend(),
            chain,
            vec![event],
            signer,
            now,
        )
        .await?;
        tx.commit().await?;
        pruned.recorded_at = sealed.first().map(|e| e.seq);
        tracing::info!(
            organization = organization_id,
            through,
            events = pruned.events,
            "audit log pruned"
        );
        Ok(Some(pruned))
    }
}

/// The newest prune base of `organization_id`.
async fn base_of<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    organization_id: &str,
) -> Result<Option<PruneBase>, Error> {
    let row = sqlx::query(&format!(
        "SELECT {BASE_COLUMNS} FROM audit_prune_bases WHERE organization_id = $1 \
         ORDER BY tree_size DESC LIMIT 1"
    ))
    .bind(organization_id)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(base_from_row).transpose()
}

/// Verifies the whole kept log inside `tx` and returns the Merkle
/// accumulator and chain head as they stood after event `through`.
async fn verify_in_tx(
    tx: &mut Transaction<'static, Any>,
    organization_id: &str,
    base: Option<&PruneBase>,
    checkpoints: &[Checkpoint],
    trusted_keys: &[VerifyingKey],
    through: u64,
) -> Result<(smithers_audit::merkle::Accumulator, Hash), Error> {
    let refused = |failure: smithers_audit::Failure| {
        Error::Invalid(format!(
            "the audit log of {organization_id} does not verify ({failure}); nothing is pruned \
             until it does (run `smithers audit verify`)"
        ))
    };
    let mut verifier = match base {
        Some(base) => LogVerifier::from_base(organization_id, base, checkpoints, trusted_keys),
        None => LogVerifier::new(organization_id, checkpoints, trusted_keys),
    }
    .map_err(refused)?;
    let mut at_through = None;
    let mut after = base.map_or(0, |b| b.checkpoint.tree_size);
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE organization_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(organization_id)
        .bind(to_i64(after))
        .bind(PAGE)
        .fetch_all(&mut **tx)
        .await?;
        for row in &rows {
            let sealed: SealedEvent = event_from_row(row).map_err(|e| {
                Error::Invalid(format!(
                    "the audit log of {organization_id} has an unreadable event after {after} ({e}); nothing is pruned"
                ))
            })?;
            verifier.push(&sealed).map_err(refused)?;
            after = sealed.seq;
            if sealed.seq == through {
                let (accumulator, head) = verifier.position();
                at_through = Some((accumulator.clone(), head));
            }
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    verifier.finish().map_err(refused)?;
    at_through.ok_or_else(|| {
        Error::Invalid(format!(
            "the audit log of {organization_id} has no event {through}; nothing is pruned"
        ))
    })
}
