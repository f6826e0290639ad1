//! Secret versions: set, rotate, destroy, metadata, and reading a value
//! under a grant.

use serde_json::json;
use smithers_audit::ActorType;
use smithers_secrets::{Scope, SealedSecret, SecretValue};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Actor, SecretRef, Secrets, to_u32};
use crate::Error;

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// The value a read gets by default; one per secret at most.
    Active,
    /// Replaced by a rotation; kept, and readable by version.
    Inactive,
    /// The ciphertext is erased; only the metadata remains.
    Destroyed,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Active => "active",
            VersionState::Inactive => "inactive",
            VersionState::Destroyed => "destroyed",
        }
    }

    fn parse(text: &str) -> Result<VersionState, Error> {
        match text {
            "active" => Ok(VersionState::Active),
            "inactive" => Ok(VersionState::Inactive),
            "destroyed" => Ok(VersionState::Destroyed),
            other => Err(Error::Corrupt {
                table: "secret_versions",
                detail: format!("unknown state {other:?}"),
            }),
        }
    }
}

/// One version's metadata: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    pub organization_id: String,
    pub environment: String,
    pub name: String,
    pub version: u32,
    pub state: VersionState,
    /// The keyring key wrapping its data key; `None` once destroyed.
    pub key_id: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub deactivated_at: Option<i64>,
    pub destroyed_at: Option<i64>,
    pub destroyed_by: Option<String>,
}

/// One secret, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    pub environment: String,
    pub name: String,
    pub active_version: Option<u32>,
    pub latest_version: u32,
    pub versions: u32,
    /// The key wrapping the active version.
    pub key_id: Option<String>,
    pub updated_at: i64,
}

/// What a read asks for.
#[derive(Debug, Clone, Default)]
pub struct ReadRequest<'a> {
    /// A specific version; the active one if `None`.
    pub version: Option<u32>,
    /// A specific grant; otherwise the reader's usable grant on the secret.
    pub grant_id: Option<&'a str>,
    /// The run reading, for grants bound to a run.
    pub run_id: Option<&'a str>,
}

/// A value released under a grant, with where it came from.
#[derive(Debug)]
pub struct SecretRead {
    pub value: SecretValue,
    pub version: u32,
    /// The grant that released it; empty for a service credential
    /// ([`Secrets::read_for_service`]).
    pub grant_id: String,
}

/// The actor id of what Smithers does by itself, in the audit log.
const SYSTEM_ACTOR: &str = "smithers";

const VERSION_COLUMNS: &str = "organization_id, environment, name, version, state, key_id, \
                               created_at, created_by, deactivated_at, destroyed_at, destroyed_by";

fn version_from_row(row: &AnyRow) -> Result<SecretVersion, Error> {
    let state: String = row.try_get("state")?;
    Ok(SecretVersion {
        organization_id: row.try_get("organization_id")?,
        environment: row.try_get("environment")?,
        name: row.try_get("name")?,
        version: to_u32(row.try_get("version")?, "secret_versions", "version")?,
        state: VersionState::parse(&state)?,
        key_id: row.try_get("key_id")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        deactivated_at: row.try_get("deactivated_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
        destroyed_by: row.try_get("destroyed_by")?,
    })
}

/// Whether a write expects the secret to be new or to be at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Set,
    Rotate,
}

impl Secrets {
    /// Creates a secret at version 1. Refuses if it exists (use rotate).
    /// `expect_version`: check-and-set; `Some(0)` means "must not exist".
    pub async fn set(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        value: &SecretValue,
        expect_version: Option<u32>,
    ) -> Result<SecretVersion, Error> {
        self.write_version(actor, secret, value, expect_version, WriteKind::Set)
            .await
    }

    /// Adds a new active version and deactivates the previous one (kept).
    pub async fn rotate(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        value: &SecretValue,
        expect_version: Option<u32>,
    ) -> Result<SecretVersion, Error> {
        self.write_version(actor, secret, value, expect_version, WriteKind::Rotate)
            .await
    }

    async fn write_version(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        value: &SecretValue,
        expect_version: Option<u32>,
        kind: WriteKind,
    ) -> Result<SecretVersion, Error> {
        secret.validate()?;
        if value.is_empty() {
            return Err(Error::Invalid("a secret value cannot be empty".into()));
        }
        self.role_of(actor).await?;
        let org = actor.organization_id.as_str();
        let (mut tx, chain) = self.begin(org).await?;
        let latest = latest_version(&mut tx, org, secret).await?;
        match (kind, latest) {
            (WriteKind::Set, Some(v)) => {
                return Err(Error::Conflict(format!(
                    "secret {} already exists (version {v}); use rotate to change it",
                    secret.resource_id()
                )));
            }
            (WriteKind::Rotate, None) => {
                return Err(Error::NotFound(format!(
                    "no secret {} in {org:?}; use set to create it",
                    secret.resource_id()
                )));
            }
            _ => {}
        }
        let current = latest.unwrap_or(0);
        if let Some(expected) = expect_version
            && expected != current
        {
            return Err(Error::Conflict(format!(
                "secret {} is at version {current}, not {expected}: someone else changed it",
                secret.resource_id()
            )));
        }
        let version = current
            .checked_add(1)
            .ok_or_else(|| Error::Invalid("too many versions".into()))?;
        let now = self.now();
        let previous_active: Option<(i64,)> = sqlx::query_as(
            "UPDATE secret_versions SET state = 'inactive', deactivated_at = $4 \
             WHERE organization_id = $1 AND environment = $2 AND name = $3 AND state = 'active' \
             RETURNING version",
        )
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let scope = Scope {
            organization_id: org,
            environment: secret.environment,
            name: secret.name,
            version,
        };
        let sealed = self.keyring.seal(&scope, value)?;
        sqlx::query(
            "INSERT INTO secret_versions (organization_id, environment, name, version, state, format, \
             key_id, wrapped_key, ciphertext, created_at, created_by) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $10)",
        )
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .bind(i64::from(version))
        .bind(i64::from(sealed.format))
        .bind(&sealed.key_id)
        .bind(sealed.wrapped_key.clone())
        .bind(sealed.ciphertext.clone())
        .bind(now)
        .bind(&actor.user)
        .execute(&mut *tx)
        .await?;
        let action = match kind {
            WriteKind::Set => "secret.set",
            WriteKind::Rotate => "secret.rotate",
        };
        let event = self.user_event(
            actor,
            action,
            &secret.resource_id(),
            json!({
                "environment": secret.environment,
                "name": secret.name,
                "version": version,
                "deactivated_version": previous_active.map(|(v,)| v),
                "key_id": sealed.key_id,
            }),
        );
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(SecretVersion {
            organization_id: org.to_string(),
            environment: secret.environment.to_string(),
            name: secret.name.to_string(),
            version,
            state: VersionState::Active,
            key_id: Some(sealed.key_id),
            created_at: now,
            created_by: actor.user.clone(),
            deactivated_at: None,
            destroyed_at: None,
            destroyed_by: None,
        })
    }

    /// Erases a version's ciphertext and wrapped key for good.
    pub async fn destroy(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        version: u32,
    ) -> Result<SecretVersion, Error> {
        secret.validate()?;
        self.role_of(actor).await?;
        let org = actor.organization_id.as_str();
        let (mut tx, chain) = self.begin(org).await?;
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions \
             WHERE organization_id = $1 AND environment = $2 AND name = $3 AND version = $4"
        ))
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .bind(i64::from(version))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "secret {} has no version {version}",
                secret.resource_id()
            ))
        })?;
        let mut before = version_from_row(&row)?;
        if before.state == VersionState::Destroyed {
            return Err(Error::Conflict(format!(
                "version {version} of {} is already destroyed",
                secret.resource_id()
            )));
        }
        let now = self.now();
        sqlx::query(
            "UPDATE secret_versions SET state = 'destroyed', key_id = NULL, wrapped_key = NULL, \
             ciphertext = NULL, destroyed_at = $5, destroyed_by = $6, \
             deactivated_at = COALESCE(deactivated_at, $5) \
             WHERE organization_id = $1 AND environment = $2 AND name = $3 AND version = $4",
        )
        .bind(org)
        .bind(secret.environment)
        .bind(secret.name)
        .bind(i64::from(version))
        .bind(now)
        .bind(&actor.user)
        .execute(&mut *tx)
        .await?;
        let event = self.user_event(
            actor,
            "secret.destroy",
            &secret.resource_id(),
            json!({
                "environment": secret.environment,
                "name": secret.name,
                "version": version,
                "was": before.state.as_str(),
                "key_id": before.key_id,
            }),
        );
        self.commit_with(tx, chain, vec![event]).await?;
        before.deactivated_at = before.deactivated_at.or(Some(now));
        before.state = VersionState::Destroyed;
        before.key_id = None;
        before.destroyed_at = Some(now);
        before.destroyed_by = Some(actor.user.clone());
        Ok(before)
    }

    /// Every version of secrets named `name` (in `environment`, or in all),
    /// oldest first.
    pub async fn versions(
        &self,
        organization_id: &str,
        environment: Option<&str>,
        name: &str,
    ) -> Result<Vec<SecretVersion>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions \
             WHERE organization_id = $1 AND name = $2 AND ($3 IS NULL OR environment = $3) \
             ORDER BY environment, version"
        ))
        .bind(organization_id)
        .bind(name)
        .bind(environment)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The environments holding a secret called `name`.
    pub async fn environments_of(
        &self,
        organization_id: &str,
        name: &str,
    ) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT environment FROM secret_versions \
             WHERE organization_id = $1 AND name = $2 ORDER BY environment",
        )
        .bind(organization_id)
        .bind(name)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    /// One line per secret, by environment then name.
    pub async fn list(
        &self,
        organization_id: &str,
        environment: Option<&str>,
    ) -> Result<Vec<SecretSummary>, Error> {
        let rows = sqlx::query(
            "SELECT environment, name, \
               MAX(CASE WHEN state = 'active' THEN version END) AS active_version, \
               MAX(version) AS latest_version, COUNT(*) AS versions, \
               MAX(CASE WHEN state = 'active' THEN key_id END) AS key_id, \
               MAX(COALESCE(destroyed_at, created_at)) AS updated_at \
             FROM secret_versions WHERE organization_id = $1 AND ($2 IS NULL OR environment = $2) \
             GROUP BY environment, name ORDER BY environment, name",
        )
        .bind(organization_id)
        .bind(environment)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let active: Option<i64> = row.try_get("active_version")?;
                Ok(SecretSummary {
                    environment: row.try_get("environment")?,
                    name: row.try_get("name")?,
                    active_version: active
                        .map(|v| to_u32(v, "secret_versions", "version"))
                        .transpose()?,
                    latest_version: to_u32(
                        row.try_get("latest_version")?,
                        "secret_versions",
                        "version",
                    )?,
                    versions: to_u32(row.try_get("versions")?, "secret_versions", "count")?,
                    key_id: row.try_get("key_id")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Releases a value: needs an approved, unexpired grant of the reader
    /// on this secret (and this run, if the grant is bound to one). The
    /// grant is spent (if single-use) and the read is recorded in the same
    /// transaction; the value is returned only once that has committed.
    /// A refusal, or a value that fails to open, is recorded too.
    pub async fn read(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        request: &ReadRequest<'_>,
    ) -> Result<SecretRead, Error> {
        secret.validate()?;
        self.role_of(actor).await?;
        match self.read_under_grant(actor, secret, request).await {
            Err(Error::Denied(reason)) => {
                self.record_refusal(actor, secret, request, "secret.read_refused", &reason)
                    .await;
                Err(Error::Denied(reason))
            }
            // A value that does not open under its own scope was moved or
            // damaged: worth a trace of its own.
            Err(Error::Secrets(e)) => {
                self.record_refusal(actor, secret, request, "secret.read_failed", &e.to_string())
                    .await;
                Err(Error::Secrets(e))
            }
            other => other,
        }
    }

    async fn read_under_grant(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        request: &ReadRequest<'_>,
    ) -> Result<SecretRead, Error> {
        let org = actor.organization_id.as_str();
        let now = self.now();
        let (mut tx, chain) = self.begin(org).await?;
        let grant = self
            .usable_grant(&mut tx, actor, secret, request, now)
            .await?;
        let (version, sealed) = sealed_version(&mut tx, org, secret, request.version).await?;
        let value = self.keyring.open(
            &Scope {
                organization_id: org,
                environment: secret.environment,
                name: secret.name,
                version,
            },
            &sealed,
        )?;
        if grant.single_use {
            Self::spend_grant(&mut tx, &grant.id, now).await?;
        }
        let event = self.user_event(
            actor,
            "secret.read",
            &secret.resource_id(),
            json!({
                "environment": secret.environment,
                "name": secret.name,
                "version": version,
                "key_id": sealed.key_id,
                "grant_id": grant.id,
                "run_id": request.run_id,
                "purpose": grant.purpose,
                "single_use": grant.single_use,
            }),
        );
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(SecretRead {
            value,
            version,
            grant_id: grant.id,
        })
    }

    /// Releases the active value of a credential Smithers itself uses
    /// (`purpose`, e.g. `github-app`): the GitHub App's private key and
    /// webhook secret, which the operator names when starting the server.
    /// No grant is asked for — the operator who can start the server holds
    /// the keyring and the database already — but the read is recorded
    /// (`secret.read` by the system actor `smithers`, with the purpose)
    /// and the value is returned only once that has committed.
    ///
    /// Errors: `NotFound` without an active version; `Secrets` for a value
    /// that does not open; the database's and the audit log's.
    pub async fn read_for_service(
        &self,
        organization_id: &str,
        secret: SecretRef<'_>,
        purpose: &str,
    ) -> Result<SecretRead, Error> {
        secret.validate()?;
        let (mut tx, chain) = self.begin(organization_id).await?;
        let (version, sealed) = sealed_version(&mut tx, organization_id, secret, None).await?;
        let value = self.keyring.open(
            &Scope {
                organization_id,
                environment: secret.environment,
                name: secret.name,
                version,
            },
            &sealed,
        )?;
        let event = self.event(
            ActorType::System,
            organization_id,
            SYSTEM_ACTOR,
            "secret.read",
            &secret.resource_id(),
            json!({
                "environment": secret.environment,
                "name": secret.name,
                "version": version,
                "key_id": sealed.key_id,
                "purpose": purpose,
            }),
        );
        self.commit_with(tx, chain, vec![event]).await?;
        Ok(SecretRead {
            value,
            version,
            grant_id: String::new(),
        })
    }

    async fn record_refusal(
        &self,
        actor: &Actor,
        secret: SecretRef<'_>,
        request: &ReadRequest<'_>,
        action: &str,
        reason: &str,
    ) {
        let event = self.user_event(
            actor,
            action,
            &secret.resource_id(),
            json!({
                "environment": secret.environment,
                "name": secret.name,
                "version": request.version,
                "grant_id": request.grant_id,
                "run_id": request.run_id,
                "reason": reason,
            }),
        );
        let recorded = async {
            let (tx, chain) = self.begin(&actor.organization_id).await?;
            self.commit_with(tx, chain, vec![event]).await
        };
        // The read is refused either way; failing to record the refusal
        // must not turn it into something else.
        if let Err(e) = recorded.await {
            tracing::error!(error = %e, "could not record a refused secret read");
        }
    }
}

/// The highest version number of a secret, destroyed ones included.
async fn latest_version(
    tx: &mut Transaction<'static, Any>,
    org: &str,
    secret: SecretRef<'_>,
) -> Result<Option<u32>, Error> {
    let row: (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(version) FROM secret_versions \
         WHERE organization_id = $1 AND environment = $2 AND name = $3",
    )
    .bind(org)
    .bind(secret.environment)
    .bind(secret.name)
    .fetch_one(&mut **tx)
    .await?;
    row.0
        .map(|v| to_u32(v, "secret_versions", "version"))
        .transpose()
}

/// The sealed value of `version`, or of the active version.
async fn sealed_version(
    tx: &mut Transaction<'static, Any>,
    org: &str,
    secret: SecretRef<'_>,
    version: Option<u32>,
) -> Result<(u32, SealedSecret), Error> {
    let row = sqlx::query(
        "SELECT version, state, format, key_id, wrapped_key, ciphertext FROM secret_versions \
         WHERE organization_id = $1 AND environment = $2 AND name = $3 \
           AND (($4 IS NULL AND state = 'active') OR version = $4)",
    )
    .bind(org)
    .bind(secret.environment)
    .bind(secret.name)
    .bind(version.map(i64::from))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Err(Error::NotFound(match version {
            Some(v) => format!("secret {} has no version {v}", secret.resource_id()),
            None => format!(
                "secret {} has no active version (missing, or its active version was destroyed)",
                secret.resource_id()
            ),
        }));
    };
    let number = to_u32(row.try_get("version")?, "secret_versions", "version")?;
    let state: String = row.try_get("state")?;
    if VersionState::parse(&state)? == VersionState::Destroyed {
        return Err(Error::NotFound(format!(
            "version {number} of {} was destroyed",
            secret.resource_id()
        )));
    }
    let format: i64 = row.try_get("format")?;
    let key_id: Option<String> = row.try_get("key_id")?;
    let wrapped_key: Option<Vec<u8>> = row.try_get("wrapped_key")?;
    let ciphertext: Option<Vec<u8>> = row.try_get("ciphertext")?;
    let corrupt = || Error::Corrupt {
        table: "secret_versions",
        detail: format!(
            "version {number} of {} has no ciphertext",
            secret.resource_id()
        ),
    };
    Ok((
        number,
        SealedSecret {
            format: u8::try_from(format).map_err(|_| corrupt())?,
            key_id: key_id.ok_or_else(corrupt)?,
            wrapped_key: wrapped_key.ok_or_else(corrupt)?,
            ciphertext: ciphertext.ok_or_else(corrupt)?,
        },
    ))
}

/// The secrets of an organization that have a readable (active) version,
/// as (name, environment): what a workflow check needs, without a keyring.
pub async fn readable_secrets(
    store: &crate::Store,
    organization_id: &str,
) -> Result<std::collections::BTreeSet<(String, String)>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT name, environment FROM secret_versions \
         WHERE organization_id = $1 AND state = 'active'",
    )
    .bind(organization_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().collect())
}
