//! Audit destinations: where an organization's log is streamed besides
//! NATS (an S3 bucket, Datadog's logs intake), each with its own cursor
//! over the audit table. Adding and removing one is audited; the cursor,
//! the last success and the last error are delivery's bookkeeping and are
//! not (they change at every batch).

use serde_json::Value;
use smithers_audit::{ActorType, CheckpointSigner};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Store, now_micros};

/// What a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    S3,
    Datadog,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::S3 => "s3",
            DestinationKind::Datadog => "datadog",
        }
    }

    pub fn parse(text: &str) -> Option<DestinationKind> {
        match text {
            "s3" => Some(DestinationKind::S3),
            "datadog" => Some(DestinationKind::Datadog),
            _ => None,
        }
    }
}

/// A destination as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// `dst_` and a UUIDv7.
    pub id: String,
    pub organization_id: String,
    pub kind: DestinationKind,
    /// Unique among the organization's destinations not removed.
    pub name: String,
    /// The kind's settings and the names of its credentials' secrets.
    pub config: Value,
    /// Every event up to this sequence number was accepted.
    pub delivered_seq: u64,
    /// Microseconds since the epoch.
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// The last run of events it will never get, and why.
    pub last_gap: Option<String>,
    /// Why delivery stopped until someone acts; `None` while it goes on.
    pub stopped: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewDestination<'a> {
    pub organization_id: &'a str,
    pub kind: DestinationKind,
    pub name: &'a str,
    pub config: Value,
    /// Deliver the events after this sequence number (the log's start, or
    /// its end when older events would be refused anyway).
    pub start_after: u64,
}

/// The repository of audit destinations.
pub struct Destinations<'s> {
    pub(crate) store: &'s Store,
}

const COLUMNS: &str = "id, organization_id, kind, name, config, delivered_seq, last_success_at, \
     last_error, last_error_at, last_gap, stopped, created_by, created_at, removed_at";

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        table: "audit_destinations",
        detail,
    }
}

fn destination_from(row: &AnyRow) -> Result<Destination, Error> {
    let kind: String = row.try_get("kind")?;
    let config: String = row.try_get("config")?;
    let delivered: i64 = row.try_get("delivered_seq")?;
    Ok(Destination {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        kind: DestinationKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        name: row.try_get("name")?,
        config: serde_json::from_str(&config).map_err(|e| corrupt(format!("config: {e}")))?,
        delivered_seq: u64::try_from(delivered)
            .map_err(|_| corrupt(format!("delivered_seq {delivered}")))?,
        last_success_at: row.try_get("last_success_at")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
        last_gap: row.try_get("last_gap")?,
        stopped: row.try_get("stopped")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        removed_at: row.try_get("removed_at")?,
    })
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Destinations<'_> {
    /// Adds a destination, recorded as `audit.destination_added` (kind,
    /// name, config: secret names, never values) by `actor`.
    ///
    /// Errors: `Invalid` for an empty or over-long name; `Conflict` when
    /// the organization has a destination of that name; the audit log's.
    pub async fn add_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        new: NewDestination<'_>,
    ) -> Result<Destination, Error> {
        let name = new.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::Invalid(format!(
                "destination name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        let (mut tx, chain) = crate::audited::begin(self.store, new.organization_id).await?;
        let taken = sqlx::query(
            "SELECT id FROM audit_destinations \
             WHERE organization_id = $1 AND name = $2 AND removed_at IS NULL",
        )
        .bind(new.organization_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "organization {:?} has a destination named {name:?} already",
                new.organization_id
            )));
        }
        let now = now_micros();
        let id = format!("dst_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!(
            "INSERT INTO audit_destinations ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL, NULL, $7, $8, NULL)"
        ))
        .bind(&id)
        .bind(new.organization_id)
        .bind(new.kind.as_str())
        .bind(name)
        .bind(new.config.to_string())
        .bind(signed(new.start_after))
        .bind(actor.1)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            new.organization_id,
            actor,
            "audit.destination_added",
            ("audit_destination", &id),
            serde_json::json!({
                "kind": new.kind.as_str(),
                "name": name,
                "config": new.config,
                "start_after": new.start_after,
            }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        self.get(new.organization_id, &id).await
    }

    /// Removes destination `id` of `organization_id` (delivery to it
    /// stops), recorded as `audit.destination_removed` by `actor`.
    ///
    /// Errors: `NotFound` for no such destination (or one removed).
    pub async fn remove_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        id: &str,
    ) -> Result<Destination, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE audit_destinations SET removed_at = $3 \
             WHERE organization_id = $1 AND id = $2 AND removed_at IS NULL",
        )
        .bind(organization_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("no destination {id}")));
        }
        let event = crate::audited::event(
            organization_id,
            actor,
            "audit.destination_removed",
            ("audit_destination", id),
            serde_json::json!({}),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        self.get(organization_id, id).await
    }

    /// Destination `id` of `organization_id`, removed or not.
    ///
    /// Errors: `NotFound`.
    pub async fn get(&self, organization_id: &str, id: &str) -> Result<Destination, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_destinations WHERE organization_id = $1 AND id = $2"
        ))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("no destination {id}")))?;
        destination_from(&row)
    }

    /// The organization's destinations not removed, oldest first.
    pub async fn list(&self, organization_id: &str) -> Result<Vec<Destination>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_destinations \
             WHERE organization_id = $1 AND removed_at IS NULL ORDER BY created_at, id"
        ))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(destination_from).collect()
    }

    /// Every destination of every organization not removed: what the
    /// delivery workers serve.
    pub async fn all(&self) -> Result<Vec<Destination>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_destinations WHERE removed_at IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(destination_from).collect()
    }

    /// Moves the cursor to `through` (never back) after the destination
    /// accepted everything up to it, clearing the last error.
    pub async fn advance(&self, id: &str, through: u64) -> Result<(), Error> {
        sqlx::query(
            "UPDATE audit_destinations SET delivered_seq = $2, last_success_at = $3, \
               last_error = NULL, last_error_at = NULL \
             WHERE id = $1 AND delivered_seq <= $2",
        )
        .bind(id)
        .bind(signed(through))
        .bind(now_micros())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Records a failed delivery (`stop`: delivery stays stopped until the
    /// destination is tested successfully).
    pub async fn failed(&self, id: &str, error: &str, stop: bool) -> Result<(), Error> {
        sqlx::query(
            "UPDATE audit_destinations SET last_error = $2, last_error_at = $3, \
               stopped = CASE WHEN $4 = 1 THEN $2 ELSE stopped END WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(now_micros())
        .bind(i64::from(stop))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Records that events `from..=through` of the organization will never
    /// reach destination `id` (`count` of them, `reason`: e.g. older than
    /// the destination takes), as `audit.destination_gap` and as its
    /// `last_gap`, and moves its cursor past them.
    #[allow(clippy::too_many_arguments)] // one event's worth of facts
    pub async fn record_gap(
        &self,
        signer: &CheckpointSigner,
        organization_id: &str,
        id: &str,
        from: u64,
        through: u64,
        count: u64,
        reason: &str,
    ) -> Result<(), Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let said = format!("events {from}..={through} ({count}) not delivered: {reason}");
        sqlx::query(
            "UPDATE audit_destinations SET last_gap = $3, last_error_at = $4, \
               delivered_seq = CASE WHEN delivered_seq < $2 THEN $2 ELSE delivered_seq END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(signed(through))
        .bind(&said)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            organization_id,
            (ActorType::System, "smithers"),
            "audit.destination_gap",
            ("audit_destination", id),
            serde_json::json!({
                "from": from,
                "through": through,
                "count": count,
                "reason": reason,
            }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await
    }

    /// Records a test of destination `id` (`audit.destination_tested`,
    /// with whether it passed and why not) by `actor`; a passing test lets
    /// a stopped destination go on.
    pub async fn record_test(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        id: &str,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        if error.is_none() {
            sqlx::query("UPDATE audit_destinations SET stopped = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let event = crate::audited::event(
            organization_id,
            actor,
            "audit.destination_tested",
            ("audit_destination", id),
            serde_json::json!({ "delivered": error.is_none(), "error": error }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await
    }

    /// Lets a stopped destination go on (after a successful test).
    pub async fn restart(&self, id: &str) -> Result<(), Error> {
        sqlx::query("UPDATE audit_destinations SET stopped = NULL WHERE id = $1")
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The lowest cursor of the organization's destinations still
    /// delivering (not stopped, not removed): what retention may not prune
    /// past. `None` when it has none.
    pub async fn slowest(&self, organization_id: &str) -> Result<Option<u64>, Error> {
        let (min,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(delivered_seq) FROM audit_destinations \
             WHERE organization_id = $1 AND removed_at IS NULL AND stopped IS NULL",
        )
        .bind(organization_id)
        .fetch_one(self.store.pool())
        .await?;
        Ok(min.and_then(|m| u64::try_from(m).ok()))
    }
}

impl Store {
    /// The audit destinations.
    pub fn destinations(&self) -> Destinations<'_> {
        Destinations { store: self }
    }
}
