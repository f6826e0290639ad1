//! Grants: a user asks to read a secret for a run or a purpose; an admin
//! of the organization who is not the requester approves or denies; an
//! approved grant expires, and a single-use grant is spent by one read.

use std::time::Duration;

use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Actor, ReadRequest, SecretRef, Secrets, to_u32};
use crate::{Error, Role};

/// The longest a grant may live once approved.
pub const MAX_GRANT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a grant stands. `Expired` is never stored: an approved grant past
/// its expiry reads as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Pending,
    Approved,
    Denied,
    /// A single-use grant that has been read with.
    Used,
    Expired,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Approved => "approved",
            GrantState::Denied => "denied",
            GrantState::Used => "used",
            GrantState::Expired => "expired",
        }
    }
}

/// What a grant is for: one run, or a stated purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantBinding {
    Run(String),
    Purpose(String),
}

/// A request to read a secret.
#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    pub secret: SecretRef<'a>,
    pub binding: GrantBinding,
    /// How long the grant lives once approved.
    pub ttl: Duration,
    pub single_use: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub organization_id: String,
    pub environment: String,
    pub name: String,
    pub requested_by: String,
    pub run_id: Option<String>,
    pub purpose: String,
    pub ttl_seconds: u32,
    pub single_use: bool,
    pub state: GrantState,
    pub requested_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
}

/// Which grants to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrantFilter<'a> {
    pub environment: Option<&'a str>,
    pub name: Option<&'a str>,
    /// Only pending and usable grants.
    pub open_only: bool,
}

const GRANT_COLUMNS: &str = "id, organization_id, environment, name, requested_by, run_id, purpose, \
     ttl_seconds, single_use, state, requested_at, decided_by, decided_at, comment, expires_at, used_at";

fn grant_from_row(row: &AnyRow, now: i64) -> Result<Grant, Error> {
    let stored: String = row.try_get("state")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let state = match stored.as_str() {
        "pending" => GrantState::Pending,
        "approved" if expires_at.is_some_and(|t| t <= now) => GrantState::Expired,
        "approved" => GrantState::Approved,
        "denied" => GrantState::Denied,
        "used" => GrantState::Used,
        other => {
            return Err(Error::Corrupt {
                table: "secret_grants",
                detail: format!("unknown state {other:?}"),
            });
        }
    };
    let single_use: i64 = row.try_get("single_use")?;
    Ok(Grant {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        environment: row.try_get("environment")?,
        name: row.try_get("name")?,
        requested_by: row.try_get("requested_by")?,
        run_id: row.try_get("run_id")?,
        purpose: row.try_get("purpose")?,
        ttl_seconds: to_u32(row.try_get("ttl_seconds")?, "secret_grants", "ttl_seconds")?,
        single_use: single_use != 0,
        state,
        requested_at: row.try_get("requested_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        comment: row.try_get("comment")?,
        expires_at,
        used_at: row.try_get("used_at")?,
    })
}

fn grant_details(grant: &Grant) -> serde_json::Value {
    json!({
        "grant_id": grant.id,
        "environment": grant.environment,
        "name": grant.name,
        "requested_by": grant.requested_by,
        "run_id": grant.run_id,
        "purpose": grant.purpose,
        "ttl_seconds": grant.ttl_seconds,
        "single_use": grant.single_use,
        "comment": grant.comment,
        "expires_at": grant.expires_at,
    })
}

impl Secrets {
    /// Files a request to read a secret; it waits for an admin's decision.
    pub async fn request_grant(
        &self,
        actor: &Actor,
        request: &GrantRequest<'_>,
    ) -> Result<Grant, Error> {
        let secret = request.secret;
        secret.validate()?;
        if request.ttl.is_zero() || request.ttl > MAX_GRANT_TTL {
            return Err(Error::Invalid(format!(
                "a grant's TTL must be between 1 second and {} days",
                MAX_GRANT_TTL.as_secs() / 86400
            )));
        }
        let (run_id, purpose) = match &request.binding {
            GrantBinding::Run(run) if !run.trim().is_empty() => {
                (Some(run.clone()), format!("run {run}"))
            }
            GrantBinding::Purpose(text) if !text.trim().is_empty() => (None, text.clone()),
            _ => {
                return Err(Error::Invalid(
                    "a grant needs a run id or a purpose saying why the value is needed".into(),
                ));
            }
        };
        self.role_of(actor).await?;
        let org = actor.organization_id.as_str();
        let (mut tx, chain) = self.begin(org).await?;
        let exists: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM secret_versions \
             WHERE organization_id = $1 AND environment = $2 AND name = $3",
        )
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .fetch_one(&mut *tx)
        .await?;
        if exists.0 == 0 {
            return Err(Error::NotFound(format!(
                "no secret {} in {org:?}",
                secret.resource_id()
            )));
        }
        let grant = Grant {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: org.to_string(),
            environment: secret.environment.to_string(),
            name: secret.name.to_string(),
            requested_by: actor.user.clone(),
            run_id,
            purpose,
            ttl_seconds: u32::try_from(request.ttl.as_secs().max(1)).unwrap_or(u32::MAX),
            single_use: request.single_use,
            state: GrantState::Pending,
            requested_at: self.now(),
            decided_by: None,
            decided_at: None,
            comment: None,
            expires_at: None,
            used_at: None,
        };
        sqlx::query(
            "INSERT INTO secret_grants (id, organization_id, environment, name, requested_by, run_id, \
             purpose, ttl_seconds, single_use, state, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)",
        )
        .bind(&grant.id)
        .bind(org)
        .bind(&grant.environment)
        .bind(&grant.name)
        .bind(&grant.requested_by)
        .bind(grant.run_id.as_deref())
        .bind(&grant.purpose)
        .bind(i64::from(grant.ttl_seconds))
        .bind(i64::from(grant.single_use))
        .bind(grant.requested_at)
        .execute(&mut *tx)
        .await?;
        let event = self.user_event(
            actor,
            "secret.grant.requested",
            &secret.resource_id(),
            grant_details(&grant),
        );
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(grant)
    }

    /// Approves (`approve`) or denies a pending grant. Only an admin of the
    /// organization who did not request it may decide.
    pub async fn decide_grant(
        &self,
        actor: &Actor,
        grant_id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Grant, Error> {
        let role = self.role_of(actor).await?;
        let org = actor.organization_id.as_str();
        let now = self.now();
        let (mut tx, chain) = self.begin(org).await?;
        let mut grant = fetch_grant(&mut tx, org, grant_id, now).await?;
        if role != Role::Admin {
            return Err(Error::Denied(format!(
                "only an admin of {org:?} can decide grants; {:?} is a member",
                actor.user
            )));
        }
        if grant.requested_by == actor.user {
            return Err(Error::Denied(format!(
                "{:?} requested grant {grant_id} and cannot decide it: another admin must",
                actor.user
            )));
        }
        if grant.state != GrantState::Pending {
            return Err(Error::Conflict(format!(
                "grant {grant_id} is {}, not pending",
                grant.state.as_str()
            )));
        }
        let (state, expires_at) = if approve {
            (
                GrantState::Approved,
                Some(now.saturating_add(i64::from(grant.ttl_seconds) * 1_000_000)),
            )
        } else {
            (GrantState::Denied, None)
        };
        sqlx::query(
            "UPDATE secret_grants SET state = $2, decided_by = $3, decided_at = $4, comment = $5, \
             expires_at = $6 WHERE id = $1 AND state = 'pending'",
        )
        .bind(grant_id)
        .bind(state.as_str())
        .bind(&actor.user)
        .bind(now)
        .bind(comment)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        grant.state = state;
        grant.decided_by = Some(actor.user.clone());
        grant.decided_at = Some(now);
        grant.comment = comment.map(str::to_string);
        grant.expires_at = expires_at;
        let action = if approve {
            "secret.grant.approved"
        } else {
            "secret.grant.denied"
        };
        let resource = format!("{}/{}", grant.environment, grant.name);
        let event = self.user_event(actor, action, &resource, grant_details(&grant));
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(grant)
    }

    /// Grants of an organization, newest first.
    pub async fn grants(
        &self,
        organization_id: &str,
        filter: GrantFilter<'_>,
    ) -> Result<Vec<Grant>, Error> {
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM secret_grants WHERE organization_id = $1 \
             AND ($2 IS NULL OR environment = $2) AND ($3 IS NULL OR name = $3) \
             ORDER BY requested_at DESC, id DESC"
        ))
        .bind(organization_id)
        .bind(filter.environment)
        .bind(filter.name)
        .fetch_all(self.store.pool())
        .await?;
        let mut grants = rows
            .iter()
            .map(|r| grant_from_row(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        if filter.open_only {
            grants.retain(|g| matches!(g.state, GrantState::Pending | GrantState::Approved));
        }
        Ok(grants)
    }

    /// The grant a read goes under, checked inside the read's transaction:
    /// the reader's own, approved, unexpired, on this secret, and for this
    /// run if it is bound to one.
    pub(super) async fn usable_grant(
        &self,
        tx: &mut Transaction<'static, Any>,
        actor: &Actor,
        secret: SecretRef<'_>,
        request: &ReadRequest<'_>,
        now: i64,
    ) -> Result<Grant, Error> {
        let org = actor.organization_id.as_str();
        let check = |grant: &Grant| -> Result<(), String> {
            if grant.requested_by != actor.user {
                return Err(format!(
                    "grant {} belongs to {:?}, not {:?}",
                    grant.id, grant.requested_by, actor.user
                ));
            }
            if grant.environment != secret.environment || grant.name != secret.name {
                return Err(format!(
                    "grant {} is for {}/{}, not {}",
                    grant.id,
                    grant.environment,
                    grant.name,
                    secret.resource_id()
                ));
            }
            match grant.state {
                GrantState::Approved => {}
                GrantState::Pending => {
                    return Err(format!("grant {} is not approved yet", grant.id));
                }
                GrantState::Denied => return Err(format!("grant {} was denied", grant.id)),
                GrantState::Used => {
                    return Err(format!("grant {} was single-use and is spent", grant.id));
                }
                GrantState::Expired => return Err(format!("grant {} has expired", grant.id)),
            }
            if let Some(run) = &grant.run_id
                && request.run_id != Some(run.as_str())
            {
                return Err(format!("grant {} is bound to run {run}", grant.id));
            }
            Ok(())
        };
        if let Some(id) = request.grant_id {
            let grant = match fetch_grant(tx, org, id, now).await {
                Ok(grant) => grant,
                Err(Error::NotFound(reason)) => return Err(Error::Denied(reason)),
                Err(e) => return Err(e),
            };
            return check(&grant).map(|()| grant).map_err(Error::Denied);
        }
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM secret_grants WHERE organization_id = $1 \
             AND environment = $2 AND name = $3 AND requested_by = $4 AND state = 'approved' \
             ORDER BY expires_at, id"
        ))
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .bind(&actor.user)
        .fetch_all(&mut **tx)
        .await?;
        // The one expiring first, so longer grants are kept for later.
        for row in &rows {
            let grant = grant_from_row(row, now)?;
            if check(&grant).is_ok() {
                return Ok(grant);
            }
        }
        Err(Error::Denied(format!(
            "{:?} holds no approved, unexpired grant on {}{}; request one with \
             `smithers secrets grant request` and have another admin approve it",
            actor.user,
            secret.resource_id(),
            request
                .run_id
                .map(|r| format!(" for run {r}"))
                .unwrap_or_default()
        )))
    }

    /// Marks a single-use grant spent; fails if another read spent it first.
    pub(super) async fn spend_grant(
        tx: &mut Transaction<'static, Any>,
        grant_id: &str,
        now: i64,
    ) -> Result<(), Error> {
        let done = sqlx::query(
            "UPDATE secret_grants SET state = 'used', used_at = $2 WHERE id = $1 AND state = 'approved'",
        )
        .bind(grant_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Denied(format!(
                "grant {grant_id} was single-use and is spent"
            )));
        }
        Ok(())
    }
}

async fn fetch_grant(
    tx: &mut Transaction<'static, Any>,
    org: &str,
    grant_id: &str,
    now: i64,
) -> Result<Grant, Error> {
    let row = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM secret_grants WHERE organization_id = $1 AND id = $2"
    ))
    .bind(org)
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("no grant {grant_id} in {org:?}")))?;
    grant_from_row(&row, now)
}
