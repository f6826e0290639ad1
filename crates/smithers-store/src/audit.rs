//! The audit tables: sealing batches of events into each organization's
//! chain inside one transaction, checkpoints, queries and verification.

use std::collections::BTreeMap;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use smithers_audit::merkle::Accumulator;
use smithers_audit::{
    ActorType, AuditChain, AuditEvent, Checkpoint, CheckpointSigner, Failure, Hash, LogVerifier,
    Problem, Report, SealedEvent,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Error, Store};

mod prune;

pub use prune::Pruned;

/// When to sign a checkpoint: after `every` events or `interval`, whichever first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    pub every: u64,
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    /// The audit log's defaults: every 1000 events or 60 seconds.
    fn default() -> Self {
        CheckpointPolicy {
            every: 1000,
            interval: Duration::from_secs(60),
        }
    }
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub organization_id: String,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    /// Events at or after this time (microseconds since the epoch).
    pub since: Option<i64>,
    /// Events after this sequence number.
    pub after_seq: Option<u64>,
    pub limit: Option<u64>,
}

/// The audit repository.
pub struct AuditStore<'s> {
    pub(crate) store: &'s Store,
}

/// An organization's chain, locked inside a transaction and read once:
/// what [`AuditStore::append_in`] appends to.
pub(crate) struct ChainLock {
    organization_id: String,
    head: Head,
}

/// Where one organization's chain stands, read inside the transaction.
struct Head {
    chain: AuditChain,
    accumulator: Accumulator,
    checkpointed_seq: u64,
    checkpointed_at: i64,
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64, table: &'static str) -> Result<u64, Error> {
    u64::try_from(n).map_err(|_| Error::Corrupt {
        table,
        detail: format!("negative number {n}"),
    })
}

pub(crate) fn hash_from(bytes: Vec<u8>, table: &'static str, column: &str) -> Result<Hash, Error> {
    bytes.try_into().map_err(|b: Vec<u8>| Error::Corrupt {
        table,
        detail: format!("{column} is {} bytes, not 32", b.len()),
    })
}

/// Rows per INSERT statement: 13 parameters each stays under SQLite's
/// 999-parameter limit, and one statement per 64 rows spares most of the
/// per-statement cost.
const ROWS_PER_INSERT: usize = 64;

/// The `n`th (1-based) parameter. SQLite gets anonymous `?`: looking up a
/// numbered parameter by name is linear in the number of parameters, which
/// makes binding a 832-parameter statement quadratic.
pub fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
    }
}

/// Inserts sealed events with one multi-row statement.
async fn insert_events<'e>(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    events: impl ExactSizeIterator<Item = &'e SealedEvent>,
) -> Result<(), Error> {
    let n = events.len();
    if n == 0 {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES ");
    for row in 0..n {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..13 {
            if col > 0 {
                sql.push(',');
            }
            sql.push_str(&placeholder(backend, row * 13 + col + 1));
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for sealed in events {
        query = query
            .bind(&sealed.event.organization_id)
            .bind(to_i64(sealed.seq))
            .bind(sealed.event.id.to_string())
            .bind(sealed.event.actor_type.as_str())
            .bind(&sealed.event.actor_id)
            .bind(&sealed.event.action)
            .bind(&sealed.event.resource_type)
            .bind(&sealed.event.resource_id)
            .bind(sealed.event.details.to_string())
            .bind(sealed.event.ip_address.map(|ip| ip.to_string()))
            .bind(sealed.event.timestamp)
            .bind(sealed.prev_hash.to_vec())
            .bind(sealed.hash.to_vec());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

pub(crate) const EVENT_COLUMNS: &str = "organization_id, seq, id, actor_type, actor_id, action, resource_type, \
                             resource_id, details, ip_address, timestamp, prev_hash, hash";

pub(crate) fn event_from_row(row: &AnyRow) -> Result<SealedEvent, Error> {
    let corrupt = |detail: String| Error::Corrupt {
        table: "audit_events",
        detail,
    };
    let actor_type: String = row.try_get("actor_type")?;
    let details: String = row.try_get("details")?;
    let id: String = row.try_get("id")?;
    let ip: Option<String> = row.try_get("ip_address")?;
    Ok(SealedEvent {
        seq: to_u64(row.try_get("seq")?, "audit_events")?,
        event: AuditEvent {
            id: id
                .parse()
                .map_err(|_| corrupt(format!("id {id:?} is not a UUID")))?,
            organization_id: row.try_get("organization_id")?,
            actor_type: ActorType::parse(&actor_type)
                .ok_or_else(|| corrupt(format!("unknown actor type {actor_type:?}")))?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            details: serde_json::from_str(&details)
                .map_err(|e| corrupt(format!("details are not JSON: {e}")))?,
            ip_address: ip
                .map(|ip| {
                    ip.parse()
                        .map_err(|_| corrupt(format!("ip_address {ip:?} is not an address")))
                })
                .transpose()?,
            timestamp: row.try_get("timestamp")?,
        },
        prev_hash: hash_from(row.try_get("prev_hash")?, "audit_events", "prev_hash")?,
        hash: hash_from(row.try_get("hash")?, "audit_events", "hash")?,
    })
}

/// Every checkpoint of `organization_id`, smallest first, through
/// `executor` (the pool, or a transaction).
pub(crate) async fn checkpoints_of<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    organization_id: &str,
) -> Result<Vec<Checkpoint>, Error> {
    let rows = sqlx::query(
        "SELECT organization_id, tree_size, root, chain_head, timestamp, key_id, signature \
         FROM audit_checkpoints WHERE organization_id = $1 ORDER BY tree_size",
    )
    .bind(organization_id)
    .fetch_all(executor)
    .await?;
    rows.iter().map(checkpoint_from_row).collect()
}

pub(crate) fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint, Error> {
    let signature: Vec<u8> = row.try_get("signature")?;
    Ok(Checkpoint {
        organization_id: row.try_get("organization_id")?,
        tree_size: to_u64(row.try_get("tree_size")?, "audit_checkpoints")?,
        root: hash_from(row.try_get("root")?, "audit_checkpoints", "root")?,
        chain_head: hash_from(
            row.try_get("chain_head")?,
            "audit_checkpoints",
            "chain_head",
        )?,
        timestamp: row.try_get("timestamp")?,
        key_id: row.try_get("key_id")?,
        signature: signature.try_into().map_err(|b: Vec<u8>| Error::Corrupt {
            table: "audit_checkpoints",
            detail: format!("signature is {} bytes, not 64", b.len()),
        })?,
    })
}

impl AuditStore<'_> {
    /// Locks and reads an organization's head; creates it at genesis when
    /// the organization has no events yet. `None`: no such organization.
    async fn lock_head(
        tx: &mut Transaction<'static, Any>,
        organization_id: &str,
        now: i64,
    ) -> Result<Option<Head>, Error> {
        // An UPDATE takes the row lock (PostgreSQL) or the write lock
        // (SQLite) before anything is read, so concurrent writers queue
        // here; RETURNING reads the row in the same round trip.
        const LOCK: &str = "UPDATE audit_heads SET last_seq = last_seq WHERE organization_id = $1 \
                            RETURNING last_seq, head, frontier, checkpointed_seq, checkpointed_at";
        let locked = sqlx::query(LOCK)
            .bind(organization_id)
            .fetch_optional(&mut **tx)
            .await?;
        let row = match locked {
            Some(row) => row,
            None => {
                let known: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
                        .bind(organization_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                if known.is_none() {
                    return Ok(None);
                }
                // Two first writers of an organization may both find no
                // head: the second's insert waits for the first's and
                // does nothing, then both queue on the row's lock.
                sqlx::query(
                    "INSERT INTO audit_heads (organization_id, last_seq, head, frontier, checkpointed_seq, checkpointed_at) \
                     VALUES ($1, 0, $2, $3, 0, $4) ON CONFLICT (organization_id) DO NOTHING",
                )
                .bind(organization_id)
                .bind(vec![0u8; 32])
                .bind(Vec::<u8>::new())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                sqlx::query(LOCK)
                    .bind(organization_id)
                    .fetch_one(&mut **tx)
                    .await?
            }
        };
        let last_seq = to_u64(row.try_get("last_seq")?, "audit_heads")?;
        let head = hash_from(row.try_get("head")?, "audit_heads", "head")?;
        let frontier: Vec<u8> = row.try_get("frontier")?;
        let hashes: Vec<Hash> = frontier
            .chunks(32)
            .map(|c| hash_from(c.to_vec(), "audit_heads", "frontier"))
            .collect::<Result<_, _>>()?;
        let accumulator =
            Accumulator::from_frontier(last_seq, &hashes).ok_or_else(|| Error::Corrupt {
                table: "audit_heads",
                detail: format!("the Merkle frontier does not fit {last_seq} events"),
            })?;
        Ok(Some(Head {
            chain: AuditChain::resume(organization_id, last_seq, head),
            accumulator,
            checkpointed_seq: to_u64(row.try_get("checkpointed_seq")?, "audit_heads")?,
            checkpointed_at: row.try_get("checkpointed_at")?,
        }))
    }

    async fn save_head(
        tx: &mut Transaction<'static, Any>,
        organization_id: &str,
        head: &Head,
    ) -> Result<(), Error> {
        let frontier: Vec<u8> = head.accumulator.frontier().concat();
        sqlx::query(
            "UPDATE audit_heads SET last_seq = $2, head = $3, frontier = $4, checkpointed_seq = $5, checkpointed_at = $6 \
             WHERE organization_id = $1",
        )
        .bind(organization_id)
        .bind(to_i64(head.chain.last_seq()))
        .bind(head.chain.head().to_vec())
        .bind(frontier)
        .bind(to_i64(head.checkpointed_seq))
        .bind(head.checkpointed_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Signs a checkpoint over everything sealed so far, if `force` or due.
    async fn maybe_checkpoint(
        tx: &mut Transaction<'static, Any>,
        organization_id: &str,
        head: &mut Head,
        signer: &CheckpointSigner,
        policy: CheckpointPolicy,
        now: i64,
    ) -> Result<(), Error> {
        let size = head.chain.last_seq();
        let pending = size - head.checkpointed_seq;
        let interval = i64::try_from(policy.interval.as_micros()).unwrap_or(i64::MAX);
        let due = pending > 0
            && (pending >= policy.every || now.saturating_sub(head.checkpointed_at) >= interval);
        if !due {
            return Ok(());
        }
        let checkpoint = signer.sign(
            organization_id,
            size,
            head.accumulator.root(),
            head.chain.head(),
            now,
        );
        sqlx::query(
            "INSERT INTO audit_checkpoints (organization_id, tree_size, root, chain_head, timestamp, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(organization_id)
        .bind(to_i64(size))
        .bind(checkpoint.root.to_vec())
        .bind(checkpoint.chain_head.to_vec())
        .bind(checkpoint.timestamp)
        .bind(&checkpoint.key_id)
        .bind(checkpoint.signature.to_vec())
        .execute(&mut **tx)
        .await?;
        head.checkpointed_seq = size;
        head.checkpointed_at = now;
        Ok(())
    }

    /// Seals `events` (all of organization `org`, already validated) into
    /// the chain whose locked `head` was read inside `tx`.
    #[allow(clippy::too_many_arguments)] // one transaction's worth of context
    async fn seal_into(
        tx: &mut Transaction<'static, Any>,
        backend: Backend,
        org: &str,
        mut head: Head,
        events: Vec<AuditEvent>,
        signer: &CheckpointSigner,
        policy: CheckpointPolicy,
        now: i64,
    ) -> Result<Vec<SealedEvent>, Error> {
        let mut sealed_rows = Vec::with_capacity(events.len());
        for event in events {
            let (sealed, leaf) = head.chain.seal_with_leaf(event)?;
            head.accumulator.push(leaf);
            // A checkpoint lands exactly at every `every`-th event.
            if head.chain.last_seq() - head.checkpointed_seq >= policy.every {
                Self::maybe_checkpoint(tx, org, &mut head, signer, policy, now).await?;
            }
            sealed_rows.push(sealed);
        }
        for chunk in sealed_rows.chunks(ROWS_PER_INSERT) {
            insert_events(tx, backend, chunk.iter()).await?;
        }
        Self::maybe_checkpoint(tx, org, &mut head, signer, policy, now).await?;
        Self::save_head(tx, org, &head).await?;
        Ok(sealed_rows)
    }

    /// Takes the lock on `organization_id`'s chain inside `tx`, so that a
    /// change made in `tx` and the events recording it commit together, in
    /// order with every other writer. Taking it first also makes SQLite
    /// grant the write lock before anything is read.
    pub(crate) async fn lock_chain(
        tx: &mut Transaction<'static, Any>,
        organization_id: &str,
    ) -> Result<ChainLock, Error> {
        match Self::lock_head(tx, organization_id, crate::now_micros()).await? {
            Some(head) => Ok(ChainLock {
                organization_id: organization_id.to_string(),
                head,
            }),
            None => Err(Error::Invalid(format!(
                "no organization {organization_id:?}"
            ))),
        }
    }

    /// Appends `events` to the chain `lock` holds inside `tx`: they
    /// commit, or not, with whatever else `tx` holds.
    pub(crate) async fn append_in(
        tx: &mut Transaction<'static, Any>,
        backend: Backend,
        lock: ChainLock,
        events: Vec<AuditEvent>,
        signer: &CheckpointSigner,
        now: i64,
    ) -> Result<Vec<SealedEvent>, Error> {
        let organization_id = lock.organization_id.as_str();
        for event in &events {
            event.validate()?;
            if event.organization_id != organization_id {
                return Err(Error::Invalid(format!(
                    "an event of {:?} in a transaction of {organization_id:?}",
                    event.organization_id
                )));
            }
        }
        Self::seal_into(
            tx,
            backend,
            organization_id,
            lock.head,
            events,
            signer,
            CheckpointPolicy::default(),
            now,
        )
        .await
    }

    /// Seals and stores `events` in one transaction: everything is durable
    /// when this returns `Ok`, nothing when it returns `Err`. Events of an
    /// unknown organization or that fail validation are refused one by one
    /// without holding up the rest.
    pub(crate) async fn append_batch(
        &self,
        events: Vec<AuditEvent>,
        signer: &CheckpointSigner,
        policy: CheckpointPolicy,
        now: i64,
    ) -> Result<Vec<Result<SealedEvent, Error>>, Error> {
        let mut results: Vec<Option<Result<SealedEvent, Error>>> =
            (0..events.len()).map(|_| None).collect();
        let mut by_org: BTreeMap<String, Vec<(usize, AuditEvent)>> = BTreeMap::new();
        for (i, event) in events.into_iter().enumerate() {
            match event.validate() {
                Ok(()) => by_org
                    .entry(event.organization_id.clone())
                    .or_default()
                    .push((i, event)),
                Err(e) => results[i] = Some(Err(e.into())),
            }
        }
        let mut tx = self.store.pool().begin().await?;
        for (org, batch) in by_org {
            let (indexes, events): (Vec<usize>, Vec<AuditEvent>) = batch.into_iter().unzip();
            let Some(head) = Self::lock_head(&mut tx, &org, now).await? else {
                for i in indexes {
                    results[i] = Some(Err(Error::Invalid(format!("no organization {org:?}"))));
                }
                continue;
            };
            let sealed = Self::seal_into(
                &mut tx,
                self.store.backend(),
                &org,
                head,
                events,
                signer,
                policy,
                now,
            )
            .await?;
            for (i, event) in indexes.into_iter().zip(sealed) {
                results[i] = Some(Ok(event));
            }
        }
        tx.commit().await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Invalid("the event was not processed".into()))))
            .collect())
    }

    /// Signs checkpoints for organizations whose last checkpoint is older
    /// than the policy's interval and that have events since.
    pub(crate) async fn checkpoint_stale(
        &self,
        signer: &CheckpointSigner,
        policy: CheckpointPolicy,
        now: i64,
    ) -> Result<(), Error> {
        let stale: Vec<(String,)> = sqlx::query_as(
            "SELECT organization_id FROM audit_heads WHERE last_seq > checkpointed_seq ORDER BY organization_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        for (org,) in stale {
            let mut tx = self.store.pool().begin().await?;
            let Some(mut head) = Self::lock_head(&mut tx, &org, now).await? else {
                continue;
            };
            Self::maybe_checkpoint(&mut tx, &org, &mut head, signer, policy, now).await?;
            Self::save_head(&mut tx, &org, &head).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Events matching `query`, oldest first.
    pub async fn query(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, Error> {
        let mut sql =
            format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE organization_id = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if query.action.is_some() {
            sql += &format!(" AND action = ${}", next());
        }
        if query.actor_id.is_some() {
            sql += &format!(" AND actor_id = ${}", next());
        }
        if query.since.is_some() {
            sql += &format!(" AND timestamp >= ${}", next());
        }
        if query.after_seq.is_some() {
            sql += &format!(" AND seq > ${}", next());
        }
        sql += " ORDER BY seq";
        if query.limit.is_some() {
            sql += &format!(" LIMIT ${}", next());
        }
        let mut q = sqlx::query(&sql).bind(&query.organization_id);
        if let Some(a) = &query.action {
            q = q.bind(a);
        }
        if let Some(a) = &query.actor_id {
            q = q.bind(a);
        }
        if let Some(t) = query.since {
            q = q.bind(t);
        }
        if let Some(s) = query.after_seq {
            q = q.bind(to_i64(s));
        }
        if let Some(l) = query.limit {
            q = q.bind(to_i64(l));
        }
        let rows = q.fetch_all(self.store.pool()).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The events about run `run_id` of the organization after `after_seq`,
    /// in order, at most `limit`: the run's own (`run.*`, `workspace.*`),
    /// its steps' and tool calls' (resource ids `RUN/…`) and its
    /// approvals'. Appends to a chain are serialized, so a reader that has
    /// had every event up to a sequence number never sees an earlier one
    /// appear later: the sequence number is a cursor without gaps.
    pub async fn of_run(
        &self,
        organization_id: &str,
        run_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events \
             WHERE organization_id = $1 AND seq > $2 AND ( \
               (resource_type = 'run' AND resource_id = $3) \
               OR (resource_type IN ('step', 'tool_call') AND substr(resource_id, 1, $4) = $5) \
               OR (resource_type = 'approval' AND resource_id IN \
                   (SELECT id FROM approvals WHERE run_id = $3))) \
             ORDER BY seq LIMIT $6"
        ))
        .bind(organization_id)
        .bind(to_i64(after_seq))
        .bind(run_id)
        // `RUN/` as a prefix, compared as text: no pattern syntax to escape.
        .bind(i32::try_from(run_id.len() + 1).unwrap_or(i32::MAX))
        .bind(format!("{run_id}/"))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Every checkpoint of an organization, smallest first.
    pub async fn checkpoints(&self, organization_id: &str) -> Result<Vec<Checkpoint>, Error> {
        checkpoints_of(self.store.pool(), organization_id).await
    }

    /// The organization's last sequence number (0 for an empty log).
    pub async fn last_seq(&self, organization_id: &str) -> Result<u64, Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT last_seq FROM audit_heads WHERE organization_id = $1")
                .bind(organization_id)
                .fetch_optional(self.store.pool())
                .await?;
        row.map_or(Ok(0), |(n,)| to_u64(n, "audit_heads"))
    }

    /// Organizations that have an audit log.
    pub async fn organizations(&self) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT organization_id FROM audit_heads ORDER BY organization_id")
                .fetch_all(self.store.pool())
                .await?;
        Ok(rows.into_iter().map(|(o,)| o).collect())
    }

    /// Recomputes an organization's chain, Merkle roots and checkpoint
    /// signatures from what the database holds, a page at a time.
    /// `Ok(Err(failure))` names the first bad sequence number.
    pub async fn verify(
        &self,
        organization_id: &str,
        trusted_keys: &[VerifyingKey],
    ) -> Result<Result<Report, Failure>, Error> {
        const PAGE: i64 = 5000;
        let checkpoints = match self.checkpoints(organization_id).await {
            Ok(c) => c,
            Err(Error::Corrupt { detail, .. }) => {
                return Ok(Err(Failure {
                    seq: 0,
                    problem: Problem::Unreadable {
                        detail: format!("a checkpoint: {detail}"),
                    },
                }));
            }
            Err(e) => return Err(e),
        };
        let base = match self.prune_base(organization_id).await {
            Ok(base) => base,
            Err(Error::Corrupt { detail, .. }) => {
                return Ok(Err(Failure {
                    seq: 0,
                    problem: Problem::Unreadable {
                        detail: format!("the prune base: {detail}"),
                    },
                }));
            }
            Err(e) => return Err(e),
        };
        let verifier = match &base {
            Some(base) => LogVerifier::from_base(organization_id, base, &checkpoints, trusted_keys),
            None => LogVerifier::new(organization_id, &checkpoints, trusted_keys),
        };
        let mut verifier = match verifier {
            Ok(v) => v,
            Err(failure) => return Ok(Err(failure)),
        };
        // After a prune the log starts past its base; nothing at or below
        // it may be there (the prune deleted all of it).
        let start = base.map_or(0, |b| to_i64(b.checkpoint.tree_size));
        if start > 0 {
            let (below,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(seq) FROM audit_events WHERE organization_id = $1 AND seq <= $2",
            )
            .bind(organization_id)
            .bind(start)
            .fetch_one(self.store.pool())
            .await?;
            if let Some(seq) = below {
                return Ok(Err(Failure {
                    seq: u64::try_from(seq).unwrap_or(0),
                    problem: Problem::BelowPruneBase {
                        tree_size: u64::try_from(start).unwrap_or(0),
                    },
                }));
            }
        }
        // Pages are read by row position, not by seq, so a gap or a
        // duplicate in the numbering is seen rather than skipped.
        let mut offset = 0i64;
        let mut position = 0u64;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE organization_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3 OFFSET $4"
            ))
            .bind(organization_id)
            .bind(start)
            .bind(PAGE)
            .bind(offset)
            .fetch_all(self.store.pool())
            .await?;
            for row in &rows {
                position += 1;
                let sealed = match event_from_row(row) {
                    Ok(sealed) => sealed,
                    Err(Error::Corrupt { detail, .. }) => {
                        let seq: i64 = row.try_get("seq").unwrap_or(0);
                        return Ok(Err(Failure {
                            seq: u64::try_from(seq).unwrap_or(position),
                            problem: Problem::Unreadable { detail },
                        }));
                    }
                    Err(e) => return Err(e),
                };
                if let Err(failure) = verifier.push(&sealed) {
                    return Ok(Err(failure));
                }
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
            offset += PAGE;
        }
        Ok(verifier.finish())
    }
}
