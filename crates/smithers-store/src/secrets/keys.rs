//! Which keyring keys are in use, and rewrap: moving every version still
//! wrapped by an older key onto the primary key. Only data keys are
//! re-wrapped; values are never decrypted.

use std::collections::BTreeMap;

use serde_json::json;
use smithers_audit::ActorType;
use smithers_secrets::{Scope, SealedSecret, WrappedHistoryKey};
use sqlx::Row;

use super::{Secrets, to_u32};
use crate::Error;

/// How many versions one rewrap transaction moves.
const REWRAP_BATCH: usize = 64;

/// One key id and what it wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: String,
    /// Versions (not destroyed) whose data key it wraps, in all organizations.
    pub versions: u64,
    /// Runs not yet ended whose history key it wraps.
    pub history_keys: u64,
    pub in_keyring: bool,
    pub primary: bool,
}

impl KeyUsage {
    /// A key can leave the keyring once nothing uses it; the primary never.
    pub fn removable(&self) -> bool {
        self.in_keyring && !self.primary && self.versions == 0 && self.history_keys == 0
    }
}

/// What a rewrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapSummary {
    /// Versions moved to the primary key.
    pub rewrapped: u64,
    /// Versions that were on the primary key already.
    pub already_current: u64,
    /// Versions moved, by the key they were moved off.
    pub by_old_key: BTreeMap<String, u64>,
    /// Versions (and runs' history keys, named `run <id>`) that could not
    /// be moved, with why (e.g. a key missing from the keyring); they stay
    /// as they were.
    pub failed: Vec<(String, String)>,
    /// History keys of runs not yet ended moved to the primary key.
    pub history_keys: u64,
}

/// Called after each batch: (done, total).
pub trait RewrapProgress {
    fn advanced(&mut self, done: u64, total: u64);
}

impl<F: FnMut(u64, u64)> RewrapProgress for F {
    fn advanced(&mut self, done: u64, total: u64) {
        self(done, total)
    }
}

struct Candidate {
    organization_id: String,
    environment: String,
    name: String,
    version: u32,
    key_id: String,
}

impl Secrets {
    /// Every key id of the keyring and every key id in use, with counts.
    pub async fn key_usage(&self) -> Result<Vec<KeyUsage>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key_id, COUNT(*) FROM secret_versions \
             WHERE key_id IS NOT NULL GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut used: BTreeMap<String, u64> = rows
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
            .collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key_id, COUNT(*) FROM run_history_keys GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut history: BTreeMap<String, u64> = rows
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
            .collect();
        for id in history.keys() {
            used.entry(id.clone()).or_insert(0);
        }
        let primary = self.keyring.primary_id().to_string();
        let mut usage: Vec<KeyUsage> = self
            .keyring
            .ids()
            .into_iter()
            .map(|id| KeyUsage {
                key_id: id.to_string(),
                versions: used.remove(id).unwrap_or(0),
                history_keys: history.remove(id).unwrap_or(0),
                in_keyring: true,
                primary: id == primary,
            })
            .collect();
        usage.extend(used.into_iter().map(|(key_id, versions)| KeyUsage {
            history_keys: history.remove(&key_id).unwrap_or(0),
            key_id,
            versions,
            in_keyring: false,
            primary: false,
        }));
        Ok(usage)
    }

    /// Key ids that wrap data keys but are missing from the keyring: those
    /// versions cannot be read until the key is put back.
    pub async fn missing_keys(&self) -> Result<Vec<KeyUsage>, Error> {
        Ok(self
            .key_usage()
            .await?
            .into_iter()
            .filter(|k| !k.in_keyring)
            .collect())
    }

    /// Re-wraps every version not on the primary key, in batches, each
    /// batch committed with one `secret.rewrap` event per version moved.
    /// `operator` names who ran it (it spans organizations).
    pub async fn rewrap(
        &self,
        operator: &str,
        progress: &mut dyn RewrapProgress,
    ) -> Result<RewrapSummary, Error> {
        let primary = self.keyring.primary_id().to_string();
        let (current,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM secret_versions WHERE key_id = $1")
                .bind(&primary)
                .fetch_one(self.store.pool())
                .await?;
        let rows = sqlx::query(
            "SELECT organization_id, environment, name, version, key_id FROM secret_versions \
             WHERE key_id IS NOT NULL AND key_id <> $1 \
             ORDER BY organization_id, environment, name, version",
        )
        .bind(&primary)
        .fetch_all(self.store.pool())
        .await?;
        let candidates = rows
            .iter()
            .map(|row| {
                Ok(Candidate {
                    organization_id: row.try_get("organization_id")?,
                    environment: row.try_get("environment")?,
                    name: row.try_get("name")?,
                    version: to_u32(row.try_get("version")?, "secret_versions", "version")?,
                    key_id: row.try_get("key_id")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut summary = RewrapSummary {
            already_current: u64::try_from(current).unwrap_or(0),
            ..RewrapSummary::default()
        };
        let total = candidates.len() as u64;
        let mut done = 0u64;
        progress.advanced(0, total);
        // A batch never spans organizations: it commits with events in one
        // organization's chain.
        let by_organization = candidates.chunk_by(|a, b| a.organization_id == b.organization_id);
        for batch in by_organization.flat_map(|group| group.chunks(REWRAP_BATCH)) {
            self.rewrap_batch(operator, batch, &mut summary).await?;
            done += batch.len() as u64;
            progress.advanced(done, total);
        }
        self.rewrap_history_keys(operator, &primary, &mut summary)
            .await?;
        Ok(summary)
    }

    /// Moves the history keys of runs not yet ended onto the primary key,
    /// one transaction (and one `run.history_key_rewrapped` event) each.
    async fn rewrap_history_keys(
        &self,
        operator: &str,
        primary: &str,
        summary: &mut RewrapSummary,
    ) -> Result<(), Error> {
        let rows = sqlx::query(
            "SELECT k.run_id, r.organization_id FROM run_history_keys k \
             JOIN runs r ON r.id = k.run_id WHERE k.key_id <> $1 ORDER BY k.run_id",
        )
        .bind(primary)
        .fetch_all(self.store.pool())
        .await?;
        for row in rows {
            let run_id: String = row.try_get("run_id")?;
            let org: String = row.try_get("organization_id")?;
            let (mut tx, chain) = self.begin(&org).await?;
            // Read again under the lock: the run may have ended since.
            let Some(row) = sqlx::query(
                "SELECT format, key_id, wrapped_key FROM run_history_keys WHERE run_id = $1",
            )
            .bind(&run_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let format: i64 = row.try_get("format")?;
            let wrapped = WrappedHistoryKey {
                format: u8::try_from(format).unwrap_or(u8::MAX),
                key_id: row.try_get("key_id")?,
                wrapped: row.try_get("wrapped_key")?,
            };
            let moved = match self.keyring.rewrap_history_key(&org, &run_id, &wrapped) {
                Ok(Some(moved)) => moved,
                Ok(None) => continue,
                Err(e) => {
                    summary
                        .failed
                        .push((format!("run {run_id}"), e.to_string()));
                    continue;
                }
            };
            sqlx::query(
                "UPDATE run_history_keys SET key_id = $2, wrapped_key = $3, format = $4 \
                 WHERE run_id = $1",
            )
            .bind(&run_id)
            .bind(&moved.key_id)
            .bind(&moved.wrapped)
            .bind(i64::from(moved.format))
            .execute(&mut *tx)
            .await?;
            let event = crate::audited::event(
                &org,
                (ActorType::System, operator),
                "run.history_key_rewrapped",
                ("run", &run_id),
                json!({ "from_key": wrapped.key_id, "to_key": moved.key_id }),
                self.now(),
            );
            self.commit_with(tx, chain, vec![event]).await?;
            summary.history_keys += 1;
            *summary.by_old_key.entry(wrapped.key_id).or_default() += 1;
        }
        Ok(())
    }

    async fn rewrap_batch(
        &self,
        operator: &str,
        batch: &[Candidate],
        summary: &mut RewrapSummary,
    ) -> Result<(), Error> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let org = first.organization_id.as_str();
        let (mut tx, chain) = self.begin(org).await?;
        let mut events = Vec::new();
        let mut moved: Vec<String> = Vec::new();
        for c in batch {
            let label = format!("{org}/{}/{}@{}", c.environment, c.name, c.version);
            // Read again under the lock: a version destroyed or moved since
            // the listing is left alone.
            let row = sqlx::query(
                "SELECT format, key_id, wrapped_key, ciphertext FROM secret_versions \
                 WHERE organization_id = $1 AND environment = $2 AND name = $3 AND version = $4 \
                   AND key_id = $5",
            )
            .bind(org)
            .bind(&c.environment)
            .bind(&c.name)
            .bind(i64::from(c.version))
            .bind(&c.key_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            let format: i64 = row.try_get("format")?;
            let sealed = SealedSecret {
                format: u8::try_from(format).unwrap_or(u8::MAX),
                key_id: c.key_id.clone(),
                wrapped_key: row.try_get("wrapped_key")?,
                ciphertext: row.try_get("ciphertext")?,
            };
            let scope = Scope {
                organization_id: org,
                environment: &c.environment,
                name: &c.name,
                version: c.version,
            };
            let rewrapped = match self.keyring.rewrap(&scope, &sealed) {
                Ok(Some(rewrapped)) => rewrapped,
                Ok(None) => continue,
                Err(e) => {
                    summary.failed.push((label, e.to_string()));
                    continue;
                }
            };
            sqlx::query(
                "UPDATE secret_versions SET key_id = $6, wrapped_key = $7, format = $8 \
                 WHERE organization_id = $1 AND environment = $2 AND name = $3 AND version = $4 \
                   AND key_id = $5",
            )
            .bind(org)
            .bind(&c.environment)
            .bind(&c.name)
            .bind(i64::from(c.version))
            .bind(&c.key_id)
            .bind(&rewrapped.key_id)
            .bind(rewrapped.wrapped_key)
            .bind(i64::from(rewrapped.format))
            .execute(&mut *tx)
            .await?;
            events.push(self.event(
                ActorType::System,
                org,
                operator,
                "secret.rewrap",
                &format!("{}/{}", c.environment, c.name),
                json!({
                    "environment": c.environment,
                    "name": c.name,
                    "version": c.version,
                    "from_key": c.key_id,
                    "to_key": rewrapped.key_id,
                }),
            ));
            moved.push(c.key_id.clone());
        }
        if events.is_empty() {
            tx.rollback().await?;
            return Ok(());
        }
        self.commit_with(tx, chain, events).await?;
        for key in moved {
            summary.rewrapped += 1;
            *summary.by_old_key.entry(key).or_default() += 1;
        }
        Ok(())
    }
}
