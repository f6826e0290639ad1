//! Organizations' policies: versions, each committed with its audit event
//! (`policy.created`, `policy.modified`, `policy.deleted`) or not at all.

use sha2::{Digest, Sha256};
use smithers_audit::{ActorType, CheckpointSigner};
use sqlx::{Any, Row, Transaction};

use crate::{Error, Store, now_micros};

/// One version of an organization's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub organization_id: String,
    /// 1, 2, … in the order they were made.
    pub version: u32,
    /// The policy's text; `None` for a version that unpublished it.
    pub text: Option<String>,
    /// Lowercase hex SHA-256 of `text`.
    pub sha256: Option<String>,
    pub created_by: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
}

const COLUMNS: &str = "organization_id, version, text, sha256, created_by, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<PolicyVersion, Error> {
    let version: i64 = row.try_get("version")?;
    Ok(PolicyVersion {
        organization_id: row.try_get("organization_id")?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt {
            table: "policy_versions",
            detail: format!("version {version}"),
        })?,
        text: row.try_get("text")?,
        sha256: row.try_get("sha256")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The policy versions repository.
pub struct Policies<'s> {
    pub(crate) store: &'s Store,
}

impl Policies<'_> {
    /// The organization's policy now: its newest version, unless that one
    /// unpublished it.
    pub async fn current(&self, organization_id: &str) -> Result<Option<PolicyVersion>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE organization_id = $1 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(organization_id)
        .fetch_optional(self.store.pool())
        .await?;
        let newest = row.as_ref().map(from_row).transpose()?;
        Ok(newest.filter(|v| v.text.is_some()))
    }

    /// One version. Errors: `NotFound` when there is no such version.
    pub async fn version(
        &self,
        organization_id: &str,
        version: u32,
    ) -> Result<PolicyVersion, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE organization_id = $1 AND version = $2"
        ))
        .bind(organization_id)
        .bind(i64::from(version))
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => from_row(&row),
            None => Err(Error::NotFound(format!(
                "{organization_id:?} has no policy version {version}"
            ))),
        }
    }

    /// Every version, oldest first.
    pub async fn history(&self, organization_id: &str) -> Result<Vec<PolicyVersion>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE organization_id = $1 ORDER BY version"
        ))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Publishes `text` as the organization's next version, with
    /// `policy.created` (none was in force) or `policy.modified` (details:
    /// version, sha256, previous version) in the same transaction. Whether
    /// the text is a valid policy, and whether `actor` may publish, is the
    /// caller's to decide.
    ///
    /// Errors: `NotFound` for an unknown organization; `Conflict` when the
    /// policy in force has the same text; the audit log's.
    pub async fn publish(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
        text: &str,
    ) -> Result<PolicyVersion, Error> {
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let newest = newest(&mut tx, organization_id).await?;
        let in_force = newest.as_ref().filter(|v| v.text.is_some());
        if let Some(current) = in_force
            && current.sha256.as_deref() == Some(sha256.as_str())
        {
            return Err(Error::Conflict(format!(
                "the policy of {organization_id:?} is already this text (version {})",
                current.version
            )));
        }
        let action = if in_force.is_some() {
            "policy.modified"
        } else {
            "policy.created"
        };
        let version = PolicyVersion {
            organization_id: organization_id.to_string(),
            version: newest.as_ref().map_or(1, |v| v.version + 1),
            text: Some(text.to_string()),
            sha256: Some(sha256.clone()),
            created_by: actor.1.to_string(),
            created_at: now_micros(),
        };
        let details = serde_json::json!({
            "version": version.version,
            "sha256": sha256,
            "previous": in_force.map(|v| v.version),
        });
        self.commit_version(tx, chain, signer, actor, version, action, details)
            .await
    }

    /// Unpublishes the organization's policy: a version without text, with
    /// `policy.deleted` (details: version, the version it ends) in the same
    /// transaction.
    ///
    /// Errors: `NotFound` when no policy is in force; the audit log's.
    pub async fn unpublish(
        &self,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        organization_id: &str,
    ) -> Result<PolicyVersion, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let newest = newest(&mut tx, organization_id).await?;
        let Some(current) = newest.filter(|v| v.text.is_some()) else {
            return Err(Error::NotFound(format!(
                "{organization_id:?} has no policy in force to unpublish"
            )));
        };
        let version = PolicyVersion {
            organization_id: organization_id.to_string(),
            version: current.version + 1,
            text: None,
            sha256: None,
            created_by: actor.1.to_string(),
            created_at: now_micros(),
        };
        let details = serde_json::json!({"version": version.version, "ends": current.version});
        self.commit_version(tx, chain, signer, actor, version, "policy.deleted", details)
            .await
    }

    /// Inserts `version` and commits it with its event `action`.
    #[allow(clippy::too_many_arguments)] // one transaction's parts
    async fn commit_version(
        &self,
        mut tx: Transaction<'static, Any>,
        chain: crate::audit::ChainLock,
        signer: &CheckpointSigner,
        actor: (ActorType, &str),
        version: PolicyVersion,
        action: &str,
        details: serde_json::Value,
    ) -> Result<PolicyVersion, Error> {
        insert(&mut tx, &version).await?;
        let event = crate::audited::event(
            &version.organization_id,
            actor,
            action,
            ("policy", &version.version.to_string()),
            details,
            version.created_at,
        );
        crate::audited::commit(
            self.store,
            tx,
            chain,
            vec![event],
            signer,
            version.created_at,
        )
        .await?;
        Ok(version)
    }
}

/// The newest version, read under the organization's chain lock (which
/// serializes its changes, so the next number is free).
async fn newest(
    tx: &mut Transaction<'static, Any>,
    organization_id: &str,
) -> Result<Option<PolicyVersion>, Error> {
    let organization = sqlx::query("SELECT id FROM organizations WHERE id = $1")
        .bind(organization_id)
        .fetch_optional(&mut **tx)
        .await?;
    if organization.is_none() {
        return Err(Error::NotFound(format!(
            "no organization {organization_id:?}"
        )));
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE organization_id = $1 \
         ORDER BY version DESC LIMIT 1"
    ))
    .bind(organization_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(from_row).transpose()
}

async fn insert(tx: &mut Transaction<'static, Any>, v: &PolicyVersion) -> Result<(), Error> {
    sqlx::query(&format!(
        "INSERT INTO policy_versions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&v.organization_id)
    .bind(i64::from(v.version))
    .bind(v.text.as_deref())
    .bind(v.sha256.as_deref())
    .bind(&v.created_by)
    .bind(v.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
