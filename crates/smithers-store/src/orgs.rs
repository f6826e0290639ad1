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

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Organizations<'_> {
    /// Creates the default organization and its admin if they are missing.
    pub async fn ensure_default(&self) -> Result<(), Error> {
        let pool = self.store.pool();
        let now = now_micros();
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(DEFAULT_ORGANIZATION)
            .bind("Local")
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO users (id, organization_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(format!("{DEFAULT_ORGANIZATION}:{DEFAULT_ADMIN}"))
        .bind(DEFAULT_ORGANIZATION)
        .bind(DEFAULT_ADMIN)
        .bind(Role::Admin.as_str())
        .bind(now)
        .execute(pool)
        .await?;
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
