//! Approvals: what a run waits for a human to decide. Asking commits the
//! approval, the step's and the run's `waiting_approval` and their events
//! in one transaction; deciding follows the rules every approval keeps —
//! not by the person who started the run, an admin for `admin-only`,
//! once, and never after it expired (an expired approval is a rejection).

use std::time::Duration;

use serde_json::Value;
use smithers_audit::{ActorType, AuditEvent};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::runs::{RunState, StepState};
use crate::{Error, Role, Runs};

/// Why an approval past its time is closed.
const EXPIRED: &str = "nobody decided before it expired";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalKind {
    /// A step's gate (`needs_approval`, an `approval` step).
    Step,
    /// A tool call the kernel answered `ask` or `admin-only`.
    ToolCall,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Step => "step",
            ApprovalKind::ToolCall => "tool_call",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Rejected,
            ApprovalState::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a run asks.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub position: u32,
    pub kind: ApprovalKind,
    pub admin_only: bool,
    /// The agent role that asked, for a tool call.
    pub role: Option<&'a str>,
    /// What is asked, exactly (the command, the diff), already redacted.
    pub summary: &'a str,
    pub details: Value,
    /// Rejected if nobody decides within this time.
    pub ttl: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub id: String,
    pub organization_id: String,
    pub run_id: String,
    pub position: u32,
    pub kind: ApprovalKind,
    pub admin_only: bool,
    pub role: Option<String>,
    /// Who started the run: the one person who may not decide.
    pub requested_by: String,
    pub summary: String,
    pub details: Value,
    pub state: ApprovalState,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub decided_at: Option<i64>,
}

const COLUMNS: &str = "id, organization_id, run_id, position, kind, admin_only, role, \
     requested_by, summary, details, state, decided_by, comment, created_at, expires_at, decided_at";

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        table: "approvals",
        detail,
    }
}

fn approval_from(row: &AnyRow) -> Result<Approval, Error> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let details: String = row.try_get("details")?;
    let position: i64 = row.try_get("position")?;
    let admin_only: i64 = row.try_get("admin_only")?;
    Ok(Approval {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        run_id: row.try_get("run_id")?,
        position: u32::try_from(position).map_err(|_| corrupt(format!("position {position}")))?,
        kind: match kind.as_str() {
            "step" => ApprovalKind::Step,
            "tool_call" => ApprovalKind::ToolCall,
            other => return Err(corrupt(format!("kind {other:?}"))),
        },
        admin_only: admin_only == 1,
        role: row.try_get("role")?,
        requested_by: row.try_get("requested_by")?,
        summary: row.try_get("summary")?,
        details: serde_json::from_str(&details).map_err(|e| corrupt(format!("details: {e}")))?,
        state: ApprovalState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        decided_by: row.try_get("decided_by")?,
        comment: row.try_get("comment")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

impl Runs {
    fn approval_event(
        &self,
        approval: &Approval,
        actor: (ActorType, &str),
        action: &str,
        details: Value,
    ) -> AuditEvent {
        crate::audited::event(
            &approval.organization_id,
            actor,
            action,
            ("approval", &approval.id),
            details,
            self.now(),
        )
    }

    /// Asks for an approval: the approval, the step and the run waiting for
    /// it, and their events, in one transaction. The step must be running
    /// and the run running.
    pub async fn request_approval(
        &self,
        run_id: &str,
        new: NewApproval<'_>,
    ) -> Result<Approval, Error> {
        let run = self.get(run_id).await?;
        let now = self.now();
        let expires_at = match new.ttl {
            Some(ttl) => Some(
                now.saturating_add(
                    i64::try_from(ttl.as_micros())
                        .map_err(|_| Error::Invalid("the approval TTL is too long".into()))?,
                ),
            ),
            None => None,
        };
        let approval = Approval {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: run.organization_id.clone(),
            run_id: run.id.clone(),
            position: new.position,
            kind: new.kind,
            admin_only: new.admin_only,
            role: new.role.map(str::to_string),
            requested_by: run.requested_by.clone(),
            summary: new.summary.to_string(),
            details: new.details,
            state: ApprovalState::Pending,
            decided_by: None,
            comment: None,
            created_at: now,
            expires_at,
            decided_at: None,
        };
        let (mut tx, chain) = crate::audited::begin(self.store(), &run.organization_id).await?;
        let states: (String, Option<String>) = {
            let row = sqlx::query(
                "SELECT r.state AS run_state, s.state AS step_state, s.step_id AS step_id FROM runs r \
                 LEFT JOIN run_steps s ON s.run_id = r.id AND s.position = $2 WHERE r.id = $1",
            )
            .bind(run_id)
            .bind(i64::from(new.position))
            .fetch_one(&mut *tx)
            .await?;
            (row.try_get("run_state")?, row.try_get("step_state")?)
        };
        if states.0 != RunState::Running.as_str()
            || states.1.as_deref() != Some(StepState::Running.as_str())
        {
            return Err(Error::Conflict(format!(
                "run {run_id} step {} cannot wait for an approval: the run is {}, the step {}",
                new.position,
                states.0,
                states.1.as_deref().unwrap_or("missing")
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', NULL, NULL, $11, $12, NULL)"
        ))
        .bind(&approval.id)
        .bind(&approval.organization_id)
        .bind(&approval.run_id)
        .bind(i64::from(approval.position))
        .bind(approval.kind.as_str())
        .bind(i64::from(approval.admin_only))
        .bind(&approval.role)
        .bind(&approval.requested_by)
        .bind(&approval.summary)
        .bind(approval.details.to_string())
        .bind(approval.created_at)
        .bind(approval.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE run_steps SET state = 'waiting_approval' WHERE run_id = $1 AND position = $2",
        )
        .bind(run_id)
        .bind(i64::from(new.position))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE runs SET state = 'waiting_approval' WHERE id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let engine = (ActorType::System, "engine");
        let detail = serde_json::json!({
            "run": run_id,
            "position": approval.position,
            "kind": approval.kind.as_str(),
            "admin_only": approval.admin_only,
            "role": approval.role,
            "summary": approval.summary,
            "expires_at": approval.expires_at,
        });
        let events = vec![
            self.approval_event(&approval, engine, "approval.requested", detail),
            self.approval_event(&approval, engine, "step.waiting_approval", serde_json::json!({"run": run_id, "position": approval.position, "approval": approval.id})),
            self.approval_event(&approval, engine, "run.waiting_approval", serde_json::json!({"run": run_id, "approval": approval.id})),
        ];
        crate::audited::commit(self.store(), tx, chain, events, self.signer(), now).await?;
        self.store().announce(run_id);
        Ok(approval)
    }

    pub async fn approval(&self, id: &str) -> Result<Approval, Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store().pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("no approval {id}")))?;
        approval_from(&row)
    }

    /// The organization's approvals, newest first; only pending ones with `pending`.
    pub async fn approvals(
        &self,
        organization_id: &str,
        pending: bool,
        limit: u32,
    ) -> Result<Vec<Approval>, Error> {
        let filter = if pending {
            " AND state = 'pending'"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE organization_id = $1{filter} \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(organization_id)
        .bind(i64::from(limit))
        .fetch_all(self.store().pool())
        .await?;
        rows.iter().map(approval_from).collect()
    }

    /// [`Runs::approvals`] with each one's run's workflow, in one query
    /// (a list of approvals shows them), newest first, after `before` (the
    /// last of the previous page: its creation time in microseconds and
    /// its id; keyset pagination, so a page does not shift when approvals
    /// are asked).
    pub async fn approvals_with_workflow(
        &self,
        organization_id: &str,
        pending: bool,
        before: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<(Approval, String)>, Error> {
        let filter = if pending {
            " AND state = 'pending'"
        } else {
            ""
        };
        let after = if before.is_some() {
            " AND (created_at < $3 OR (created_at = $3 AND id < $4))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS}, \
               (SELECT workflow FROM runs WHERE runs.id = approvals.run_id) AS run_workflow \
             FROM approvals WHERE organization_id = $1{filter}{after} \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(organization_id)
            .bind(i64::from(limit));
        if let Some((at, id)) = before {
            query = query.bind(at).bind(id);
        }
        let rows = query.fetch_all(self.store().pool()).await?;
        rows.iter()
            .map(|row| Ok((approval_from(row)?, row.try_get("run_workflow")?)))
            .collect()
    }

    /// A run's approvals, oldest first.
    pub async fn approvals_of_run(&self, run_id: &str) -> Result<Vec<Approval>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE run_id = $1 ORDER BY created_at, id"
        ))
        .bind(run_id)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter().map(approval_from).collect()
    }

    /// Approves or rejects, as `approver` of `organization_id`. An approval
    /// found past its expiry is marked expired (and recorded) and refused.
    pub async fn decide_approval(
        &self,
        organization_id: &str,
        approver: &str,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Approval, Error> {
        let approval = self.approval(id).await?;
        if approval.organization_id != organization_id {
            return Err(Error::NotFound(format!("no approval {id}")));
        }
        let user = self
            .store()
            .organizations()
            .user(organization_id, approver)
            .await?
            .ok_or_else(|| {
                Error::Denied(format!("{approver} is not a user of {organization_id}"))
            })?;
        if !approve && comment.is_none_or(|c| c.trim().is_empty()) {
            return Err(Error::Invalid("a rejection needs a reason".into()));
        }
        let (mut tx, chain) = crate::audited::begin(self.store(), organization_id).await?;
        let now = self.now();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let current = approval_from(&row)?;
        if current.state != ApprovalState::Pending {
            return Err(Error::Conflict(format!(
                "approval {id} is already {}{}",
                current.state.as_str(),
                current
                    .decided_by
                    .as_deref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default()
            )));
        }
        if current.expires_at.is_some_and(|at| now >= at) {
            self.mark_expired(tx, chain, &current, now, EXPIRED).await?;
            return Err(Error::Conflict(format!(
                "approval {id} expired before it was decided"
            )));
        }
        if current.requested_by == approver {
            return Err(Error::Denied(format!(
                "{approver} started run {} and cannot decide its approvals; another user must",
                current.run_id
            )));
        }
        if current.admin_only && user.role != Role::Admin {
            return Err(Error::Denied(format!(
                "approval {id} is admin-only and {approver} is not an admin"
            )));
        }
        let state = if approve {
            ApprovalState::Approved
        } else {
            ApprovalState::Rejected
        };
        sqlx::query("UPDATE approvals SET state = $2, decided_by = $3, comment = $4, decided_at = $5 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(approver)
            .bind(comment)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let event = self.approval_event(
            &current,
            (ActorType::User, approver),
            &format!("approval.{}", state.as_str()),
            serde_json::json!({"run": current.run_id, "position": current.position, "comment": comment}),
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await?;
        self.store().announce(&current.run_id);
        self.approval(id).await
    }

    /// Marks a pending approval expired and records it, committing `tx`;
    /// false if it was no longer pending (decided or expired meanwhile).
    async fn mark_expired(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        chain: crate::audit::ChainLock,
        approval: &Approval,
        now: i64,
        reason: &str,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE approvals SET state = 'expired', decided_at = $2 WHERE id = $1 AND state = 'pending'",
        )
        .bind(&approval.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let event = self.approval_event(
            approval,
            (ActorType::System, "engine"),
            "approval.expired",
            serde_json::json!({"run": approval.run_id, "reason": reason}),
        );
        crate::audited::commit(self.store(), tx, chain, vec![event], self.signer(), now).await?;
        self.store().announce(&approval.run_id);
        Ok(true)
    }

    /// Marks the pending approvals of `run_id` that are past their expiry
    /// as expired (each recorded); returns them.
    pub async fn expire_approvals(&self, run_id: &str) -> Result<Vec<Approval>, Error> {
        self.close_approvals(run_id, false, EXPIRED).await
    }

    /// Withdraws every pending approval of a run that has ended (marked
    /// expired, each recorded with `reason`): nobody can decide on what
    /// no longer waits.
    pub async fn withdraw_approvals(
        &self,
        run_id: &str,
        reason: &str,
    ) -> Result<Vec<Approval>, Error> {
        self.close_approvals(run_id, true, reason).await
    }

    async fn close_approvals(
        &self,
        run_id: &str,
        all: bool,
        reason: &str,
    ) -> Result<Vec<Approval>, Error> {
        let now = self.now();
        let due: Vec<Approval> = self
            .approvals_of_run(run_id)
            .await?
            .into_iter()
            .filter(|a| {
                a.state == ApprovalState::Pending
                    && (all || a.expires_at.is_some_and(|at| now >= at))
            })
            .collect();
        let mut closed = Vec::new();
        for approval in due {
            let (tx, chain) =
                crate::audited::begin(self.store(), &approval.organization_id).await?;
            if self.mark_expired(tx, chain, &approval, now, reason).await? {
                closed.push(self.approval(&approval.id).await?);
            }
        }
        Ok(closed)
    }
}
