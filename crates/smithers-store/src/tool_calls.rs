//! The tool calls of a run, each a row before it is an action: decided by
//! the kernel (the decision and its audit event commit together), started,
//! and finished with the result the agent was shown. A finished call is
//! frozen; a resumed run reads its result instead of carrying it out again.

use serde_json::Value;
use smithers_audit::ActorType;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::runs::{either, states_list};
use crate::{Error, Runs};

/// Which call: the step's position, the step's attempt (from 1) and the
/// call's number within the attempt (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToolCallKey {
    pub position: u32,
    pub attempt: u32,
    pub seq: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallState {
    /// The kernel allowed it; not started yet.
    Allowed,
    /// The kernel asked a human; waiting for the approval.
    Asked,
    /// Being carried out (a call found here after a crash was interrupted).
    Running,
    Completed,
    /// The kernel denied it (the refusal is its output).
    Denied,
    /// A human rejected it, or the approval expired.
    Rejected,
}

impl ToolCallState {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallState::Allowed => "allowed",
            ToolCallState::Asked => "asked",
            ToolCallState::Running => "running",
            ToolCallState::Completed => "completed",
            ToolCallState::Denied => "denied",
            ToolCallState::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<ToolCallState> {
        [
            ToolCallState::Allowed,
            ToolCallState::Asked,
            ToolCallState::Running,
            ToolCallState::Completed,
            ToolCallState::Denied,
            ToolCallState::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ToolCallState::Completed | ToolCallState::Denied | ToolCallState::Rejected
        )
    }
}

/// A call as the kernel decided it.
#[derive(Debug, Clone)]
pub struct NewToolCall<'a> {
    pub key: ToolCallKey,
    pub tool: &'a str,
    /// The kernel subject (the agent's role, or `workflow`).
    pub subject: &'a str,
    /// Redacted.
    pub arguments: Value,
    /// `allow`, `ask`, `admin-only` or `deny`.
    pub verdict: &'a str,
    /// Rule, source and reason.
    pub decision: Value,
    /// For a denied call: the refusal the agent reads.
    pub refusal: Option<&'a str>,
}

/// What a finished call gave back (redacted, capped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    pub run_id: String,
    pub key: ToolCallKey,
    pub tool: String,
    pub subject: String,
    pub arguments: Value,
    pub verdict: String,
    pub decision: Value,
    pub state: ToolCallState,
    pub approval_id: Option<String>,
    pub result: Option<ToolResult>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "run_id, position, attempt, seq, tool, subject, arguments, verdict, decision, \
     state, approval_id, ok, exit_code, output, created_at, finished_at";

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        table: "tool_calls",
        detail,
    }
}

fn number(row: &AnyRow, column: &str) -> Result<u32, Error> {
    let n: i64 = row.try_get(column)?;
    u32::try_from(n).map_err(|_| corrupt(format!("{column} {n}")))
}

fn json(row: &AnyRow, column: &str) -> Result<Value, Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{column}: {e}")))
}

fn record_from(row: &AnyRow) -> Result<ToolCallRecord, Error> {
    let state: String = row.try_get("state")?;
    let ok: Option<i64> = row.try_get("ok")?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    let output: Option<String> = row.try_get("output")?;
    // A finished call keeps its outcome when retention has dropped its
    // output (the run's `logs_dropped_at` says so).
    let result = match (ok, output) {
        (Some(ok), output) => Some(ToolResult {
            ok: ok != 0,
            exit_code: exit_code
                .map(|c| i32::try_from(c).map_err(|_| corrupt(format!("exit code {c}"))))
                .transpose()?,
            output: output.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(ToolCallRecord {
        run_id: row.try_get("run_id")?,
        key: ToolCallKey {
            position: number(row, "position")?,
            attempt: number(row, "attempt")?,
            seq: number(row, "seq")?,
        },
        tool: row.try_get("tool")?,
        subject: row.try_get("subject")?,
        arguments: json(row, "arguments")?,
        verdict: row.try_get("verdict")?,
        decision: json(row, "decision")?,
        state: ToolCallState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        approval_id: row.try_get("approval_id")?,
        result,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn key_json(run_id: &str, key: ToolCallKey) -> Value {
    serde_json::json!({
        "run": run_id,
        "position": key.position,
        "attempt": key.attempt,
        "seq": key.seq,
    })
}

impl Runs {
    /// The call at `key`, if it was recorded.
    pub async fn tool_call(
        &self,
        run_id: &str,
        key: ToolCallKey,
    ) -> Result<Option<ToolCallRecord>, Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tool_calls \
             WHERE run_id = $1 AND position = $2 AND attempt = $3 AND seq = $4"
        ))
        .bind(run_id)
        .bind(i64::from(key.position))
        .bind(i64::from(key.attempt))
        .bind(i64::from(key.seq))
        .fetch_optional(self.store().pool())
        .await?
        .as_ref()
        .map(record_from)
        .transpose()
    }

    /// Every call of a run, in order.
    pub async fn tool_calls(&self, run_id: &str) -> Result<Vec<ToolCallRecord>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tool_calls WHERE run_id = $1 ORDER BY position, attempt, seq"
        ))
        .bind(run_id)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter().map(record_from).collect()
    }

    /// Records the kernel's decision on a call with its `tool_call.decided`
    /// event. A call already recorded at that key (a resumed run) is
    /// returned as it stands; its tool must be the same.
    pub async fn decide_tool_call(
        &self,
        run_id: &str,
        call: NewToolCall<'_>,
    ) -> Result<ToolCallRecord, Error> {
        if let Some(existing) = self.tool_call(run_id, call.key).await? {
            if existing.tool != call.tool {
                return Err(Error::Conflict(format!(
                    "run {run_id} recorded {} as call {} of step {}, not {}",
                    existing.tool, call.key.seq, call.key.position, call.tool
                )));
            }
            return Ok(existing);
        }
        let state = match call.verdict {
            "allow" => ToolCallState::Allowed,
            "ask" | "admin-only" => ToolCallState::Asked,
            "deny" => ToolCallState::Denied,
            other => return Err(Error::Invalid(format!("unknown verdict {other:?}"))),
        };
        let organization_id = self.organization_of(run_id).await?;
        let (mut tx, chain) = crate::audited::begin(self.store(), &organization_id).await?;
        let now = self.now();
        let denied = state == ToolCallState::Denied;
        sqlx::query(&format!(
            "INSERT INTO tool_calls ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, NULL, $12, $13, $14)"
        ))
        .bind(run_id)
        .bind(i64::from(call.key.position))
        .bind(i64::from(call.key.attempt))
        .bind(i64::from(call.key.seq))
        .bind(call.tool)
        .bind(call.subject)
        .bind(call.arguments.to_string())
        .bind(call.verdict)
        .bind(call.decision.to_string())
        .bind(state.as_str())
        .bind(denied.then_some(0_i64))
        .bind(if denied { call.refusal } else { None })
        .bind(now)
        .bind(denied.then_some(now))
        .execute(&mut *tx)
        .await?;
        let mut details = key_json(run_id, call.key);
        details["tool"] = call.tool.into();
        details["subject"] = call.subject.into();
        details["arguments"] = call.arguments.clone();
        details["decision"] = call.decision.clone();
        let event = crate::audited::event(
            &organization_id,
            (ActorType::Agent, call.subject),
            "tool_call.decided",
            ("tool_call", &format!("{run_id}/{}", call.tool)),
            details,
            now,
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await?;
        self.tool_call(run_id, call.key)
            .await?
            .ok_or_else(|| corrupt(format!("call {:?} of run {run_id} vanished", call.key)))
    }

    /// Notes the approval an asked call waits for.
    pub async fn link_tool_call_approval(
        &self,
        run_id: &str,
        key: ToolCallKey,
        approval_id: &str,
    ) -> Result<(), Error> {
        self.set_state(
            run_id,
            key,
            &[ToolCallState::Asked],
            ToolCallState::Asked,
            Some(approval_id),
        )
        .await
    }

    /// Marks a call as being carried out (allowed, approved, or interrupted
    /// and carried out again from the snapshot before it).
    pub async fn start_tool_call(&self, run_id: &str, key: ToolCallKey) -> Result<(), Error> {
        self.set_state(
            run_id,
            key,
            &[
                ToolCallState::Allowed,
                ToolCallState::Asked,
                ToolCallState::Running,
            ],
            ToolCallState::Running,
            None,
        )
        .await
    }

    async fn set_state(
        &self,
        run_id: &str,
        key: ToolCallKey,
        from: &[ToolCallState],
        to: ToolCallState,
        approval_id: Option<&str>,
    ) -> Result<(), Error> {
        let from_list = states_list(from, ToolCallState::as_str);
        let done = sqlx::query(&format!(
            "UPDATE tool_calls SET state = $5, approval_id = COALESCE($6, approval_id) \
             WHERE run_id = $1 AND position = $2 AND attempt = $3 AND seq = $4 \
               AND state IN ({from_list})"
        ))
        .bind(run_id)
        .bind(i64::from(key.position))
        .bind(i64::from(key.attempt))
        .bind(i64::from(key.seq))
        .bind(to.as_str())
        .bind(approval_id)
        .execute(self.store().pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "call {} of step {} (attempt {}) of run {run_id} is not {}",
                key.seq,
                key.position,
                key.attempt,
                either(from, ToolCallState::as_str)
            )));
        }
        Ok(())
    }

    /// Finishes a call: completed with its result, or rejected (its result
    /// the refusal); `snapshot` is the workspace snapshot taken after it,
    /// which a resumed run starts from. One transaction with the
    /// `tool_call.<state>` event.
    pub async fn finish_tool_call(
        &self,
        run_id: &str,
        key: ToolCallKey,
        state: ToolCallState,
        result: &ToolResult,
        snapshot: Option<&str>,
    ) -> Result<(), Error> {
        if !matches!(state, ToolCallState::Completed | ToolCallState::Rejected) {
            return Err(Error::Invalid(format!(
                "a call finishes completed or rejected, not {}",
                state.as_str()
            )));
        }
        let organization_id = self.organization_of(run_id).await?;
        let (mut tx, chain) = crate::audited::begin(self.store(), &organization_id).await?;
        let now = self.now();
        let done = sqlx::query(
            "UPDATE tool_calls SET state = $5, ok = $6, exit_code = $7, output = $8, finished_at = $9 \
             WHERE run_id = $1 AND position = $2 AND attempt = $3 AND seq = $4 \
               AND state IN ('running', 'asked')",
        )
        .bind(run_id)
        .bind(i64::from(key.position))
        .bind(i64::from(key.attempt))
        .bind(i64::from(key.seq))
        .bind(state.as_str())
        .bind(i64::from(result.ok))
        .bind(result.exit_code.map(i64::from))
        .bind(&result.output)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "call {} of step {} of run {run_id} is not running",
                key.seq, key.position
            )));
        }
        if let Some(snapshot) = snapshot {
            sqlx::query("UPDATE runs SET workspace_snapshot = $2 WHERE id = $1")
                .bind(run_id)
                .bind(snapshot)
                .execute(&mut *tx)
                .await?;
        }
        let tool: String = sqlx::query(
            "SELECT tool FROM tool_calls WHERE run_id = $1 AND position = $2 AND attempt = $3 AND seq = $4",
        )
        .bind(run_id)
        .bind(i64::from(key.position))
        .bind(i64::from(key.attempt))
        .bind(i64::from(key.seq))
        .fetch_one(&mut *tx)
        .await?
        .try_get("tool")?;
        let mut details = key_json(run_id, key);
        details["tool"] = tool.clone().into();
        details["ok"] = result.ok.into();
        details["exit_code"] = result.exit_code.into();
        details["snapshot"] = snapshot.into();
        let event = crate::audited::event(
            &organization_id,
            (ActorType::System, "engine"),
            &format!("tool_call.{}", state.as_str()),
            ("tool_call", &format!("{run_id}/{tool}")),
            details,
            now,
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await
    }

    /// The snapshot a resumed run restores its workspace from.
    pub async fn workspace_snapshot(&self, run_id: &str) -> Result<Option<String>, Error> {
        Ok(
            sqlx::query("SELECT workspace_snapshot FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(self.store().pool())
                .await?
                .ok_or_else(|| Error::NotFound(format!("no run {run_id}")))?
                .try_get("workspace_snapshot")?,
        )
    }

    /// Records an event of a run that is not a state change (its workspace
    /// created or destroyed, a secret released to it); fails closed.
    pub async fn record(&self, run_id: &str, action: &str, details: Value) -> Result<(), Error> {
        let organization_id = self.organization_of(run_id).await?;
        let (tx, chain) = crate::audited::begin(self.store(), &organization_id).await?;
        let now = self.now();
        let event = crate::audited::event(
            &organization_id,
            (ActorType::System, "engine"),
            action,
            ("run", run_id),
            details,
            now,
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await
    }
}
