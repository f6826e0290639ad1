//! Browser sessions and the sign-ins that open them. A sign-in (a one-time
//! local link, or an OAuth/OIDC authorization request) is taken once; a
//! session starts with its `user.login` event and ends with `user.logout`
//! (or expires, or is ended when its user's role changes), each in the
//! same transaction as its event. Only SHA-256 digests of the link tokens,
//! the states and the cookies' secrets are kept.

use smithers_audit::{ActorType, CheckpointSigner};
use sqlx::Row;

use crate::{Error, Store, now_micros};

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub id: String,
    /// `local`, `oidc` or `github`.
    pub method: String,
    pub organization_id: String,
    /// The user a local link signs in.
    pub user: Option<String>,
    /// The OpenID Connect nonce.
    pub nonce: Option<String>,
    /// The PKCE code verifier (RFC 7636).
    pub pkce_verifier: Option<String>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A sign-in to record.
#[derive(Debug, Clone)]
pub struct NewSignIn<'a> {
    /// Lowercase hex SHA-256 of the link's token or of the state.
    pub sha256: &'a str,
    pub method: &'a str,
    pub organization_id: &'a str,
    pub user: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub pkce_verifier: Option<&'a str>,
    /// Microseconds since the epoch.
    pub expires_at: i64,
}

/// What taking a sign-in found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Taken now: it can be used.
    Fresh(SignIn),
    /// Taken before.
    Used(SignIn),
    Expired(SignIn),
    /// No sign-in has that digest.
    Unknown,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub organization_id: String,
    pub user: String,
    pub method: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub ended_why: Option<String>,
}

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub organization_id: &'a str,
    pub user: &'a str,
    /// Lowercase hex SHA-256 of the cookie's secret.
    pub sha256: &'a str,
    pub method: &'a str,
    /// Microseconds since the epoch.
    pub expires_at: i64,
    /// What else `user.login` records (the provider's subject, the client).
    pub details: serde_json::Value,
}

const SIGN_IN_COLUMNS: &str = "id, method, organization_id, user_name, nonce, pkce_verifier, \
     created_at, expires_at, used_at";

const SESSION_COLUMNS: &str =
    "id, organization_id, user_name, method, created_at, expires_at, ended_at, ended_why";

fn sign_in_from(row: &sqlx::any::AnyRow) -> Result<SignIn, Error> {
    Ok(SignIn {
        id: row.try_get("id")?,
        method: row.try_get("method")?,
        organization_id: row.try_get("organization_id")?,
        user: row.try_get("user_name")?,
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

fn session_from(row: &sqlx::any::AnyRow) -> Result<SessionRecord, Error> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        user: row.try_get("user_name")?,
        method: row.try_get("method")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        ended_why: row.try_get("ended_why")?,
    })
}

/// The sessions repository.
pub struct Sessions<'s> {
    pub(crate) store: &'s Store,
}

impl Sessions<'_> {
    /// Records a sign-in under way.
    ///
    /// Errors: the database's (a digest seen before is a `Conflict`).
    pub async fn begin_sign_in(&self, new: NewSignIn<'_>) -> Result<SignIn, Error> {
        let record = SignIn {
            id: uuid::Uuid::now_v7().to_string(),
            method: new.method.to_string(),
            organization_id: new.organization_id.to_string(),
            user: new.user.map(str::to_string),
            nonce: new.nonce.map(str::to_string),
            pkce_verifier: new.pkce_verifier.map(str::to_string),
            created_at: now_micros(),
            expires_at: new.expires_at,
            used_at: None,
        };
        sqlx::query(
            "INSERT INTO sign_ins (id, secret_sha256, method, organization_id, user_name, nonce, \
               pkce_verifier, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(&record.id)
        .bind(new.sha256)
        .bind(&record.method)
        .bind(&record.organization_id)
        .bind(&record.user)
        .bind(&record.nonce)
        .bind(&record.pkce_verifier)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(self.store.pool())
        .await?;
        Ok(record)
    }

    /// Takes the sign-in whose digest is `sha256`, once: the first taker of
    /// a live one gets [`Taken::Fresh`], every later one [`Taken::Used`]
    /// (a single conditional UPDATE decides, so two concurrent takers
    /// cannot both win).
    pub async fn take_sign_in(&self, sha256: &str) -> Result<Taken, Error> {
        let now = now_micros();
        let taken = sqlx::query(
            "UPDATE sign_ins SET used_at = $2 \
             WHERE secret_sha256 = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(sha256)
        .bind(now)
        .execute(self.store.pool())
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(&format!(
            "SELECT {SIGN_IN_COLUMNS} FROM sign_ins WHERE secret_sha256 = $1"
        ))
        .bind(sha256)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Taken::Unknown);
        };
        let sign_in = sign_in_from(&row)?;
        Ok(if taken {
            Taken::Fresh(sign_in)
        } else if sign_in.used_at.is_some() {
            Taken::Used(sign_in)
        } else {
            Taken::Expired(sign_in)
        })
    }

    /// Starts a session with its `user.login` event (details: session id,
    /// method, and `new.details`) in one transaction.
    ///
    /// Errors: `NotFound` when the user is not one of the organization's;
    /// the audit log's.
    pub async fn start(
        &self,
        signer: &CheckpointSigner,
        new: NewSession<'_>,
    ) -> Result<SessionRecord, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, new.organization_id).await?;
        crate::orgs::user_in(&mut tx, new.organization_id, new.user).await?;
        let record = SessionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: new.organization_id.to_string(),
            user: new.user.to_string(),
            method: new.method.to_string(),
            created_at: now_micros(),
            expires_at: new.expires_at,
            ended_at: None,
            ended_why: None,
        };
        sqlx::query(
            "INSERT INTO sessions (id, organization_id, user_name, secret_sha256, method, \
               created_at, expires_at, ended_at, ended_why) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)",
        )
        .bind(&record.id)
        .bind(&record.organization_id)
        .bind(&record.user)
        .bind(new.sha256)
        .bind(&record.method)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&mut *tx)
        .await?;
        let mut details = match new.details {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        details.insert("session".into(), record.id.clone().into());
        details.insert("method".into(), record.method.clone().into());
        details.insert("expires_at".into(), record.expires_at.into());
        let event = crate::audited::event(
            new.organization_id,
            (ActorType::User, new.user),
            "user.login",
            ("user", new.user),
            serde_json::Value::Object(details),
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

    /// The session whose cookie's digest is `sha256`, ended ones too.
    pub async fn by_sha256(&self, sha256: &str) -> Result<Option<SessionRecord>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE secret_sha256 = $1"
        ))
        .bind(sha256)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// Ends session `id` of `user` of the organization (signed out) with
    /// its `user.logout` event, in one transaction; a session that has
    /// ended already is left as it is.
    ///
    /// Errors: `NotFound` for no such session of theirs; the audit log's.
    pub async fn sign_out(
        &self,
        signer: &CheckpointSigner,
        organization_id: &str,
        user: &str,
        id: &str,
    ) -> Result<SessionRecord, Error> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE id = $1 AND organization_id = $2 AND user_name = $3"
        ))
        .bind(id)
        .bind(organization_id)
        .bind(user)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("no session {id} of {user:?}")))?;
        let session = session_from(&row)?;
        if session.ended_at.is_some() {
            return Ok(session);
        }
        let (mut tx, chain) = crate::audited::begin(self.store, &session.organization_id).await?;
        let now = now_micros();
        sqlx::query(
            "UPDATE sessions SET ended_at = $2, ended_why = 'signed out' \
             WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = crate::audited::event(
            &session.organization_id,
            (ActorType::User, &session.user),
            "user.logout",
            ("user", &session.user),
            serde_json::json!({"session": id}),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(SessionRecord {
            ended_at: Some(now),
            ended_why: Some("signed out".into()),
            ..session
        })
    }

    /// Records a refused sign-in, `user.login_failed` (details: method,
    /// why, and the user or the provider's subject when known), in its own
    /// transaction.
    ///
    /// Errors: the audit log's.
    pub async fn record_failure(
        &self,
        signer: &CheckpointSigner,
        organization_id: &str,
        who: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let (tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let event = crate::audited::event(
            organization_id,
            match who {
                Some(user) => (ActorType::User, user),
                None => (ActorType::System, "anonymous"),
            },
            "user.login_failed",
            ("user", who.unwrap_or("unknown")),
            details,
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await
    }
}

/// Ends every live session of `user` within `tx` (its role changed, or it
/// was removed), saying `why`; how many were ended. The caller's event
/// records the change in the same transaction.
pub(crate) async fn end_sessions_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    organization_id: &str,
    user: &str,
    why: &str,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE sessions SET ended_at = $3, ended_why = $4 \
         WHERE organization_id = $1 AND user_name = $2 AND ended_at IS NULL",
    )
    .bind(organization_id)
    .bind(user)
    .bind(now_micros())
    .bind(why)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
