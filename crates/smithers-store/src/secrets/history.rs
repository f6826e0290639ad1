//! Runs' history keys over the store: made (wrapped by the keyring) the
//! first time a run needs one, opened while the run lives, and gone once
//! it has ended — [`crate::Runs::transition`] deletes the key in the
//! transaction that finishes the run.

use smithers_audit::ActorType;
use smithers_secrets::{HISTORY_FORMAT, HistoryKey, WrappedHistoryKey};
use sqlx::Row as _;

use super::Secrets;
use crate::{Error, RunState};

impl Secrets {
    /// Run `run_id`'s history key: the one it has, or a new one (recorded
    /// with `run.history_key_created`) if it has none yet.
    ///
    /// Errors: [`Error::NotFound`] for no such run; [`Error::Conflict`]
    /// once the run has ended (its history is destroyed, and no new key is
    /// ever made for it); [`Error::Secrets`] when the key's keyring key is
    /// gone or the stored key is damaged.
    pub async fn history_key(&self, run_id: &str) -> Result<HistoryKey, Error> {
        let organization_id: String = sqlx::query("SELECT organization_id FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(self.store.pool())
            .await?
            .map(|row| row.try_get("organization_id"))
            .transpose()?
            .ok_or_else(|| Error::NotFound(format!("no run {run_id}")))?;
        // The chain lock serializes this with the transition that ends the
        // run (which takes the same lock): a key is never made after it.
        let (mut tx, chain) = self.begin(&organization_id).await?;
        let row = sqlx::query("SELECT state, history_destroyed_at FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        let state: String = row.try_get("state")?;
        let destroyed: Option<i64> = row.try_get("history_destroyed_at")?;
        let finished = RunState::parse(&state).is_none_or(|s| s.is_finished());
        if destroyed.is_some() || finished {
            return Err(Error::Conflict(format!(
                "run {run_id} has ended: its model history was destroyed with its key"
            )));
        }
        let stored = sqlx::query(
            "SELECT format, key_id, wrapped_key FROM run_history_keys WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = stored {
            tx.rollback().await?;
            let format: i64 = row.try_get("format")?;
            let wrapped = WrappedHistoryKey {
                format: u8::try_from(format).map_err(|_| Error::Corrupt {
                    table: "run_history_keys",
                    detail: format!("format {format}"),
                })?,
                key_id: row.try_get("key_id")?,
                wrapped: row.try_get("wrapped_key")?,
            };
            return Ok(self
                .keyring
                .open_history_key(&organization_id, run_id, &wrapped)?);
        }
        let (key, wrapped) = self.keyring.new_history_key(&organization_id, run_id)?;
        let now = self.now();
        sqlx::query(
            "INSERT INTO run_history_keys (run_id, format, key_id, wrapped_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(i64::from(HISTORY_FORMAT))
        .bind(&wrapped.key_id)
        .bind(&wrapped.wrapped)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            &organization_id,
            (ActorType::System, "engine"),
            "run.history_key_created",
            ("run", run_id),
            serde_json::json!({ "key_id": wrapped.key_id }),
            now,
        );
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(key)
    }
}
