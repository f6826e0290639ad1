//! API tokens: created and revoked each with its audit event
//! (`token.created`, `token.revoked`) in the same transaction, found by
//! the SHA-256 of the token (the token itself is never stored).

use smithers_audit::{ActorType, CheckpointSigner};
use sqlx::Row;

use crate::{Error, Store, now_micros};

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub organization_id: String,
    /// The user it acts as.
    pub user: String,
    pub name: String,
    /// Scope names (`runs:read`), as the caller gave them.
    pub scopes: Vec<String>,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

/// A token to record.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub organization_id: &'a str,
    pub user: &'a str,
    pub name: &'a str,
    pub scopes: &'a [&'a str],
    /// Lowercase hex SHA-256 of the token.
    pub sha256: &'a str,
    /// Microseconds since the epoch.
    pub expires_at: i64,
}

const COLUMNS: &str = "id, organization_id, user_name, name, scopes, token_sha256, created_at, \
     expires_at, revoked_at, revoked_by";

fn from_row(row: &sqlx::any::AnyRow) -> Result<TokenRecord, Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        user: row.try_get("user_name")?,
        name: row.try_get("name")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        sha256: row.try_get("token_sha256")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

/// The API tokens repository.
pub struct Tokens<'s> {
    pub(crate) store: &'s Store,
}

impl Tokens<'_> {
    /// Records a token with its `token.created` event (details: id, name,
    /// user, scopes, expires_at — never the token) in one transaction.
    /// Who may create it, and the token's strength, are the caller's.
    ///
    /// Errors: `NotFound` when the user is not one of the organization's;
    /// the audit log's.
    pub async fn create(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        new: NewToken<'_>,
    ) -> Result<TokenRecord, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, new.organization_id).await?;
        crate::orgs::user_in(&mut tx, new.organization_id, new.user).await?;
        let record = TokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: new.organization_id.to_string(),
            user: new.user.to_string(),
            name: new.name.to_string(),
            scopes: new.scopes.iter().map(|s| (*s).to_string()).collect(),
            sha256: new.sha256.to_string(),
            created_at: now_micros(),
            expires_at: new.expires_at,
            revoked_at: None,
            revoked_by: None,
        };
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)"
        ))
        .bind(&record.id)
        .bind(&record.organization_id)
        .bind(&record.user)
        .bind(&record.name)
        .bind(record.scopes.join(" "))
        .bind(&record.sha256)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            new.organization_id,
            actor,
            "token.created",
            ("token", &record.id),
            serde_json::json!({
                "name": record.name,
                "user": record.user,
                "scopes": record.scopes,
                "expires_at": record.expires_at,
            }),
            record.created_at,
        );
        crate::audited::commit(
            self.store,
            tx,
            chain,
            vec![event],
            signer,
            record.created_at,
        )
        .await?;
        Ok(record)
    }

    /// The token whose SHA-256 is `sha256`, revoked and expired ones too.
    pub async fn by_sha256(&self, sha256: &str) -> Result<Option<TokenRecord>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = $1"
        ))
        .bind(sha256)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// One token of the organization.
    ///
    /// Errors: `NotFound` when there is none by that id there.
    pub async fn get(&self, organization_id: &str, id: &str) -> Result<TokenRecord, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE organization_id = $1 AND id = $2"
        ))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => from_row(&row),
            None => Err(Error::NotFound(format!(
                "no token {id} in {organization_id:?}"
            ))),
        }
    }

    /// The organization's tokens (`user`'s only, when given), newest first.
    pub async fn list(
        &self,
        organization_id: &str,
        user: Option<&str>,
    ) -> Result<Vec<TokenRecord>, Error> {
        let order = "ORDER BY created_at DESC, id DESC";
        let rows = match user {
            Some(user) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE organization_id = $1 \
                     AND user_name = $2 {order}"
                ))
                .bind(organization_id)
                .bind(user)
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE organization_id = $1 {order}"
                ))
                .bind(organization_id)
                .fetch_all(self.store.pool())
                .await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    /// Revokes token `id` with its `token.revoked` event in one
    /// transaction. Who may revoke it is the caller's to decide.
    ///
    /// Errors: `NotFound` when there is no such token there; `Conflict`
    /// when it is revoked already; the audit log's.
    pub async fn revoke(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        id: &str,
    ) -> Result<TokenRecord, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3, revoked_by = $4 \
             WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(organization_id)
        .bind(id)
        .bind(now)
        .bind(actor.1)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            let existing = self.get(organization_id, id).await?;
            return Err(Error::Conflict(format!(
                "token {} ({}) is revoked already",
                existing.id, existing.name
            )));
        }
        let event = crate::audited::event(
            organization_id,
            actor,
            "token.revoked",
            ("token", id),
            serde_json::json!({}),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        self.get(organization_id, id).await
    }

    /// Records that a known token was refused (`token.refused`, details:
    /// why), as its own transaction.
    pub async fn record_refusal(
        &self,
        signer: &CheckpointSigner,
        token: &TokenRecord,
        why: &str,
    ) -> Result<(), Error> {
        let (tx, chain) = crate::audited::begin(self.store, &token.organization_id).await?;
        let now = now_micros();
        let event = crate::audited::event(
            &token.organization_id,
            (ActorType::System, "api"),
            "token.refused",
            ("token", &token.id),
            serde_json::json!({"user": token.user, "why": why}),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await
    }
}
