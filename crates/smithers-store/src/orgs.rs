//! Organizations and their users.

use smithers_audit::{ActorType, CheckpointSigner};
use sqlx::{Any, Row, Transaction};

use crate::{Error, Store, now_micros};

/// The organization of the embedded, single-machine mode.
pub const DEFAULT_ORGANIZATION: &str = "local";
/// Its administrator.
pub const DEFAULT_ADMIN: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Grants admin-only approvals and manages the organization.
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

fn organization_from_row(row: &sqlx::any::AnyRow) -> Result<Organization, Error> {
    Ok(Organization {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

const USER_COLUMNS: &str = "id, organization_id, name, role, created_at";

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| Error::Corrupt {
            table: "users",
            detail: format!("unknown role {role:?}"),
        })?,
        created_at: row.try_get("created_at")?,
    })
}

/// Inserts a user inside `tx`.
async fn insert_user(
    tx: &mut Transaction<'static, Any>,
    organization_id: &str,
    name: &str,
    role: Role,
) -> Result<User, Error> {
    if !valid_id(name) {
        return Err(Error::Invalid(format!(
            "user name {name:?} must be 1-64 letters, digits, `-`, `_` or `.`"
        )));
    }
    let organization = sqlx::query("SELECT id FROM organizations WHERE id = $1")
        .bind(organization_id)
        .fetch_optional(&mut **tx)
        .await?;
    if organization.is_none() {
        return Err(Error::NotFound(format!(
            "no organization {organization_id:?}"
        )));
    }
    let user = User {
        id: format!("{organization_id}:{name}"),
        organization_id: organization_id.to_string(),
        name: name.to_string(),
        role,
        created_at: now_micros(),
    };
    let done = sqlx::query(
        "INSERT INTO users (id, organization_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&user.id)
    .bind(&user.organization_id)
    .bind(&user.name)
    .bind(role.as_str())
    .bind(user.created_at)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "user {name:?} already exists in {organization_id:?}"
        )));
    }
    Ok(user)
}

/// The organizations repository.
pub struct Organizations<'s> {
    pub(crate) store: &'s Store,
}

/// Letters, digits, `-`, `_`, `.`, at most 64, and not only dots: `.` and
/// `..` would be dot-segments in a URL path, which clients normalize
/// away (RFC 3986 §5.2.4), so such a user could not be named in one.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.chars().all(|c| c == '.')
}

impl Organizations<'_> {
    /// Creates the default organization and, with it, its admin, the first
    /// time (one transaction). An organization that exists is left as it
    /// is: an admin removed stays removed.
    pub async fn ensure_default(&self) -> Result<(), Error> {
        let mut tx = self.store.pool().begin().await?;
        let now = now_micros();
        let created = sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(DEFAULT_ORGANIZATION)
            .bind("Local")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if created {
            sqlx::query(
                "INSERT INTO users (id, organization_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(format!("{DEFAULT_ORGANIZATION}:{DEFAULT_ADMIN}"))
            .bind(DEFAULT_ORGANIZATION)
            .bind(DEFAULT_ADMIN)
            .bind(Role::Admin.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates an organization; its id is letters, digits, `-`, `_`, `.`.
    pub async fn create(&self, id: &str, name: &str) -> Result<Organization, Error> {
        if !valid_id(id) {
            return Err(Error::Invalid(format!(
                "organization id {id:?} must be 1-64 letters, digits, `-`, `_` or `.`"
            )));
        }
        let created_at = now_micros();
        let done = sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(name)
            .bind(created_at)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Invalid(format!(
                "organization {id:?} already exists"
            )));
        }
        Ok(Organization {
            id: id.to_string(),
            name: name.to_string(),
            created_at,
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<Organization>, Error> {
        let row = sqlx::query("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(organization_from_row).transpose()
    }

    pub async fn list(&self) -> Result<Vec<Organization>, Error> {
        let rows = sqlx::query("SELECT id, name, created_at FROM organizations ORDER BY id")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(organization_from_row).collect()
    }

    /// Adds a user to an organization, unrecorded: for setting up a store
    /// (tests, the demo's own throwaway store). What a person asks for goes
    /// through [`Organizations::add_user_recorded`].
    ///
    /// Errors: `Invalid` for a malformed name, `NotFound` for an unknown
    /// organization, `Conflict` when the user exists.
    pub async fn add_user(
        &self,
        organization_id: &str,
        name: &str,
        role: Role,
    ) -> Result<User, Error> {
        let mut tx = self.store.pool().begin().await?;
        let user = insert_user(&mut tx, organization_id, name, role).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Adds a user and records `user.add` by `actor` (details: name, role)
    /// in the same transaction: both are committed or neither (invariant
    /// 4). Whether `actor` may do it is the caller's to decide.
    ///
    /// Errors: as [`Organizations::add_user`], and the audit log's.
    pub async fn add_user_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        name: &str,
        role: Role,
    ) -> Result<User, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let user = insert_user(&mut tx, organization_id, name, role).await?;
        let event = crate::audited::event(
            organization_id,
            actor,
            "user.add",
            ("user", name),
            serde_json::json!({"name": name, "role": role.as_str()}),
            user.created_at,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, user.created_at).await?;
        Ok(user)
    }

    /// Gives user `name` the role `role`, ends their sessions (a session
    /// carries the role it was opened with in the person's mind; they sign
    /// in again), and records `user.role_changed` (details: from, to,
    /// sessions_ended) by `actor`, all in one transaction.
    ///
    /// Errors: `NotFound` for no such user; `Conflict` when the user has
    /// that role already, or is the organization's last admin and would
    /// stop being one; the audit log's.
    pub async fn set_role_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        name: &str,
        role: Role,
    ) -> Result<User, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let user = user_in(&mut tx, organization_id, name).await?;
        if user.role == role {
            return Err(Error::Conflict(format!(
                "user {name:?} is {} already",
                role.as_str()
            )));
        }
        if user.role == Role::Admin {
            last_admin_check(&mut tx, organization_id, name).await?;
        }
        sqlx::query("UPDATE users SET role = $3 WHERE organization_id = $1 AND name = $2")
            .bind(organization_id)
            .bind(name)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        let ended =
            crate::sessions::end_sessions_of(&mut tx, organization_id, name, "the role changed")
                .await?;
        let now = now_micros();
        let event = crate::audited::event(
            organization_id,
            actor,
            "user.role_changed",
            ("user", name),
            serde_json::json!({
                "from": user.role.as_str(),
                "to": role.as_str(),
                "sessions_ended": ended,
            }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(User { role, ..user })
    }

    /// How long `organization_id` keeps run logs, tool-call outputs and
    /// audit events (seconds); `None`: for ever.
    ///
    /// Errors: `NotFound` for no such organization.
    pub async fn log_retention(&self, organization_id: &str) -> Result<Option<u64>, Error> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT log_retention_secs FROM organizations WHERE id = $1")
                .bind(organization_id)
                .fetch_optional(self.store.pool())
                .await?;
        let (secs,) =
            row.ok_or_else(|| Error::NotFound(format!("no organization {organization_id:?}")))?;
        secs.map(|s| {
            u64::try_from(s).map_err(|_| Error::Corrupt {
                table: "organizations",
                detail: format!("log_retention_secs {s}"),
            })
        })
        .transpose()
    }

    /// Sets how long `organization_id` keeps run logs, tool-call outputs
    /// and audit events (seconds, `None` for ever), recording
    /// `organization.retention_changed` (details: from, to, in seconds) by
    /// `actor` in the same transaction. The previous value.
    ///
    /// Errors: `Invalid` for 0 seconds; `NotFound` for no such
    /// organization; the audit log's.
    pub async fn set_log_retention_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        secs: Option<u64>,
    ) -> Result<Option<u64>, Error> {
        if secs == Some(0) {
            return Err(Error::Invalid(
                "a retention of 0 seconds keeps nothing".into(),
            ));
        }
        let stored = secs
            .map(|s| {
                i64::try_from(s).map_err(|_| Error::Invalid(format!("{s} seconds is too long")))
            })
            .transpose()?;
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let (before,): (Option<i64>,) =
            sqlx::query_as("SELECT log_retention_secs FROM organizations WHERE id = $1")
                .bind(organization_id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("UPDATE organizations SET log_retention_secs = $2 WHERE id = $1")
            .bind(organization_id)
            .bind(stored)
            .execute(&mut *tx)
            .await?;
        let now = now_micros();
        let event = crate::audited::event(
            organization_id,
            actor,
            "organization.retention_changed",
            ("organization", organization_id),
            serde_json::json!({ "logs": { "from": before, "to": stored } }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(before.and_then(|b| u64::try_from(b).ok()))
    }

    /// Organizations with a log retention, and theirs (seconds).
    pub async fn retention_policies(&self) -> Result<Vec<(String, u64)>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, log_retention_secs FROM organizations \
             WHERE log_retention_secs IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, secs)| Some((id, u64::try_from(secs).ok()?)))
            .collect())
    }

    /// Removes user `name` with their sessions and API tokens, recording
    /// `user.removed` (details: role, sessions_ended, tokens_removed) by
    /// `actor`, in one transaction. What they did stays in the audit log
    /// and in the runs and approvals that name them.
    ///
    /// Errors: `NotFound` for no such user; `Conflict` for the
    /// organization's last admin; the audit log's.
    pub async fn remove_user_recorded(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        name: &str,
    ) -> Result<User, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let user = user_in(&mut tx, organization_id, name).await?;
        if user.role == Role::Admin {
            last_admin_check(&mut tx, organization_id, name).await?;
        }
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE organization_id = $1 AND user_name = $2 AND ended_at IS NULL",
        )
        .bind(organization_id)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE organization_id = $1 AND user_name = $2")
            .bind(organization_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let tokens =
            sqlx::query("DELETE FROM api_tokens WHERE organization_id = $1 AND user_name = $2")
                .bind(organization_id)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("DELETE FROM users WHERE organization_id = $1 AND name = $2")
            .bind(organization_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let now = now_micros();
        let event = crate::audited::event(
            organization_id,
            actor,
            "user.removed",
            ("user", name),
            serde_json::json!({
                "role": user.role.as_str(),
                "sessions_ended": sessions,
                "tokens_removed": tokens,
            }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(user)
    }

    pub async fn users(&self, organization_id: &str) -> Result<Vec<User>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 ORDER BY name"
        ))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// One user of an organization, by name.
    pub async fn user(&self, organization_id: &str, name: &str) -> Result<Option<User>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 AND name = $2"
        ))
        .bind(organization_id)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }
}

/// User `name` of the organization, read within `tx`.
///
/// Errors: `NotFound` when there is none.
pub(crate) async fn user_in(
    tx: &mut Transaction<'static, Any>,
    organization_id: &str,
    name: &str,
) -> Result<User, Error> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 AND name = $2"
    ))
    .bind(organization_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| {
        Error::NotFound(format!(
            "no user {name:?} in organization {organization_id:?}"
        ))
    })?;
    user_from_row(&row)
}

/// Refuses to take the admin role from `name` when no other admin would
/// be left to manage the organization.
async fn last_admin_check(
    tx: &mut Transaction<'static, Any>,
    organization_id: &str,
    name: &str,
) -> Result<(), Error> {
    let others: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM users WHERE organization_id = $1 AND role = 'admin' AND name <> $2",
    )
    .bind(organization_id)
    .bind(name)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if others == 0 {
        return Err(Error::Conflict(format!(
            "{name:?} is the last admin of {organization_id:?}: make another admin first"
        )));
    }
    Ok(())
}
