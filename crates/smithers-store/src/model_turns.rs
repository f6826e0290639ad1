//! What a model answered an agent step, one row per request, recorded
//! before any call it asks for is decided. A model does not answer the
//! same way twice, so a resumed run replays these answers to rebuild the
//! conversation instead of asking again. Append-only.
//!
//! An answer is stored sealed under its run's history key
//! ([`smithers_secrets::HistoryKey`], sealed by the caller, which holds
//! the keyring); once the run has ended and the key is gone it opens no
//! more. Answers recorded before history keys existed are plain until
//! their run's history is destroyed, which deletes them.

use serde_json::Value;
use smithers_audit::ActorType;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Runs};

/// A model's answer as the driver hands it over.
#[derive(Debug, Clone)]
pub struct NewModelTurn<'a> {
    pub position: u32,
    pub attempt: u32,
    /// The request's number within the attempt (from 0).
    pub turn: u32,
    /// `openai` or `anthropic`.
    pub driver: &'a str,
    pub model: &'a str,
    /// The provider's response body (JSON) sealed under the run's history
    /// key as item [`ModelTurn::item`].
    pub sealed_response: &'a [u8],
    /// How many tool calls it asks for.
    pub calls: u32,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// A recorded answer's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Sealed under the run's history key (nonce ‖ ciphertext ‖ tag).
    Sealed(Vec<u8>),
    /// Recorded before history keys existed: the provider's response body.
    Plain(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelTurn {
    pub run_id: String,
    pub position: u32,
    pub attempt: u32,
    pub turn: u32,
    pub driver: String,
    pub model: String,
    pub response: Answer,
    pub calls: u32,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub created_at: i64,
}

const COLUMNS: &str = "run_id, position, attempt, turn, driver, model, response, \
     sealed_response, calls, input_tokens, output_tokens, created_at";

impl ModelTurn {
    /// What an answer is sealed as (the history key's item): its step,
    /// attempt and turn, so that a sealed answer moved to another row does
    /// not open.
    pub fn item(position: u32, attempt: u32, turn: u32) -> [String; 3] {
        [position.to_string(), attempt.to_string(), turn.to_string()]
    }
}

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        table: "model_turns",
        detail,
    }
}

fn small(row: &AnyRow, column: &str) -> Result<u32, Error> {
    let n: i64 = row.try_get(column)?;
    u32::try_from(n).map_err(|_| corrupt(format!("{column} {n}")))
}

fn tokens(row: &AnyRow, column: &str) -> Result<Option<u64>, Error> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u64::try_from(n).map_err(|_| corrupt(format!("{column} {n}"))))
        .transpose()
}

fn turn_from(row: &AnyRow) -> Result<ModelTurn, Error> {
    let sealed: Option<Vec<u8>> = row.try_get("sealed_response")?;
    let response = match sealed {
        Some(sealed) => Answer::Sealed(sealed),
        None => {
            let plain: String = row.try_get("response")?;
            Answer::Plain(
                serde_json::from_str(&plain).map_err(|e| corrupt(format!("response: {e}")))?,
            )
        }
    };
    Ok(ModelTurn {
        run_id: row.try_get("run_id")?,
        position: small(row, "position")?,
        attempt: small(row, "attempt")?,
        turn: small(row, "turn")?,
        driver: row.try_get("driver")?,
        model: row.try_get("model")?,
        response,
        calls: small(row, "calls")?,
        input_tokens: tokens(row, "input_tokens")?,
        output_tokens: tokens(row, "output_tokens")?,
        created_at: row.try_get("created_at")?,
    })
}

fn signed(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Runs {
    /// The answers recorded for one attempt of a step, in order.
    pub async fn model_turns(
        &self,
        run_id: &str,
        position: u32,
        attempt: u32,
    ) -> Result<Vec<ModelTurn>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM model_turns \
             WHERE run_id = $1 AND position = $2 AND attempt = $3 ORDER BY turn"
        ))
        .bind(run_id)
        .bind(i64::from(position))
        .bind(i64::from(attempt))
        .fetch_all(self.store().pool())
        .await?;
        rows.iter().map(turn_from).collect()
    }

    /// Every answer of a run, in order.
    pub async fn all_model_turns(&self, run_id: &str) -> Result<Vec<ModelTurn>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM model_turns WHERE run_id = $1 ORDER BY position, attempt, turn"
        ))
        .bind(run_id)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter().map(turn_from).collect()
    }

    /// Records an answer with its `agent.turn` event (one transaction). A
    /// turn is recorded once: a second answer for the same turn is a
    /// conflict, never a replacement.
    pub async fn record_model_turn(
        &self,
        run_id: &str,
        turn: NewModelTurn<'_>,
    ) -> Result<(), Error> {
        let organization_id = self.organization_of(run_id).await?;
        let (mut tx, chain) = crate::audited::begin(self.store(), &organization_id).await?;
        let now = self.now();
        let taken = sqlx::query(
            "SELECT 1 AS taken FROM model_turns \
             WHERE run_id = $1 AND position = $2 AND attempt = $3 AND turn = $4",
        )
        .bind(run_id)
        .bind(i64::from(turn.position))
        .bind(i64::from(turn.attempt))
        .bind(i64::from(turn.turn))
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "turn {} of step {} (attempt {}) of run {run_id} is already recorded",
                turn.turn, turn.position, turn.attempt
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO model_turns ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11)"
        ))
        .bind(run_id)
        .bind(i64::from(turn.position))
        .bind(i64::from(turn.attempt))
        .bind(i64::from(turn.turn))
        .bind(turn.driver)
        .bind(turn.model)
        .bind(turn.sealed_response)
        .bind(i64::from(turn.calls))
        .bind(signed(turn.input_tokens))
        .bind(signed(turn.output_tokens))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            &organization_id,
            (ActorType::System, "engine"),
            "agent.turn",
            ("run", run_id),
            serde_json::json!({
                "position": turn.position,
                "attempt": turn.attempt,
                "turn": turn.turn,
                "driver": turn.driver,
                "model": turn.model,
                "calls": turn.calls,
                "input_tokens": turn.input_tokens,
                "output_tokens": turn.output_tokens,
            }),
            now,
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await
    }
}
