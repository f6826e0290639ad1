//! The GitHub App's records: webhook deliveries (recorded before they are
//! answered, carried out once), and the installations and repositories
//! that connect GitHub accounts to an organization. Every change of an
//! installation or of its repositories commits with its audit events
//! (`github.installation_*`, `repository.connected`,
//! `repository.disconnected`) or not at all.

use serde_json::{Value, json};
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use sqlx::{Any, Row, Transaction};

use crate::{Error, Store, now_micros};

/// The actor id of what GitHub's webhooks do, in the audit log.
pub const GITHUB_ACTOR: &str = "github";

/// A webhook delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Delivery`: the same for every redelivery of an event.
    pub guid: String,
    pub organization_id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    /// Lowercase hex SHA-256 of the raw body.
    pub body_sha256: String,
    /// The raw body (JSON, UTF-8), exactly as signed.
    pub body: String,
    /// Microseconds since the epoch.
    pub received_at: i64,
    pub processed_at: Option<i64>,
    /// `handled`, `ignored` or `failed`, once processed.
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub guid: &'a str,
    pub organization_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub installation_id: Option<i64>,
    pub body_sha256: &'a str,
    pub body: &'a str,
}

/// What recording a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First seen now: it is to be carried out.
    New(Delivery),
    /// Recorded before (a redelivery or a duplicate): nothing more is done.
    SeenBefore(Delivery),
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Carried out.
    Handled,
    /// An event or action Smithers does not act on.
    Ignored,
    /// Could not be carried out (the detail says why).
    Failed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Handled => "handled",
            Outcome::Ignored => "ignored",
            Outcome::Failed => "failed",
        }
    }
}

/// An installation of the GitHub App, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// GitHub's installation id.
    pub id: i64,
    pub organization_id: String,
    pub account_login: String,
    pub account_id: i64,
    /// `Organization` or `User`.
    pub account_type: String,
    /// The permissions granted, as GitHub lists them
    /// (`{"contents": "write", …}`).
    pub permissions: Value,
    /// `all` or `selected`.
    pub repository_selection: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub suspended_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// A repository an installation connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// GitHub's repository id.
    pub id: i64,
    pub installation_id: i64,
    pub organization_id: String,
    /// `owner/name`.
    pub full_name: String,
    pub private: bool,
    /// Microseconds since the epoch.
    pub connected_at: i64,
    pub disconnected_at: Option<i64>,
    /// The default branch as last checked.
    pub default_branch: Option<String>,
    /// Whether a protection rule covers the default branch, as last
    /// checked.
    pub default_protected: Option<bool>,
    /// Microseconds since the epoch.
    pub protection_checked_at: Option<i64>,
}

/// A repository as GitHub names it in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRef {
    pub id: i64,
    pub full_name: String,
    pub private: bool,
}

/// An installation as GitHub describes it in an event.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallationRef {
    pub id: i64,
    pub account_login: String,
    pub account_id: i64,
    pub account_type: String,
    pub permissions: Value,
    pub repository_selection: String,
}

/// What a webhook says happened to an installation.
#[derive(Debug, Clone, PartialEq)]
pub enum InstallationChange {
    /// Installed (or installed again) with these repositories.
    Created(InstallationRef, Vec<RepositoryRef>),
    /// Uninstalled: every repository is disconnected.
    Deleted(i64),
    Suspended(i64),
    Unsuspended(i64),
    /// The account accepted new permissions.
    PermissionsAccepted(InstallationRef),
    /// Repositories added to or removed from the installation.
    Repositories {
        installation: InstallationRef,
        added: Vec<RepositoryRef>,
        removed: Vec<RepositoryRef>,
    },
}

impl InstallationChange {
    /// The installation it changes.
    pub fn installation(&self) -> i64 {
        match self {
            InstallationChange::Created(i, _) | InstallationChange::PermissionsAccepted(i) => i.id,
            InstallationChange::Deleted(id)
            | InstallationChange::Suspended(id)
            | InstallationChange::Unsuspended(id) => *id,
            InstallationChange::Repositories { installation, .. } => installation.id,
        }
    }

    /// One line saying what it changes (`installation 7 suspended`,
    /// `repositories of installation 7: added acme/api; removed acme/old`).
    pub fn describe(&self) -> String {
        let names = |repositories: &[RepositoryRef]| {
            repositories
                .iter()
                .map(|r| r.full_name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            InstallationChange::Created(i, repositories) => {
                format!("installation {} created with {}", i.id, names(repositories))
            }
            InstallationChange::Deleted(id) => format!("installation {id} deleted"),
            InstallationChange::Suspended(id) => format!("installation {id} suspended"),
            InstallationChange::Unsuspended(id) => format!("installation {id} unsuspended"),
            InstallationChange::PermissionsAccepted(i) => {
                format!("installation {} accepted new permissions", i.id)
            }
            InstallationChange::Repositories {
                installation,
                added,
                removed,
            } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("added {}", names(added)));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed {}", names(removed)));
                }
                format!(
                    "repositories of installation {}: {}",
                    installation.id,
                    parts.join("; ")
                )
            }
        }
    }
}

/// Who, on GitHub's side, made a change: recorded with its events.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// The delivery that carried it.
    pub delivery: &'a str,
    /// The GitHub login of the event's `sender`.
    pub sender: Option<&'a str>,
}

const DELIVERY_COLUMNS: &str = "guid, organization_id, event, action, installation_id, \
     body_sha256, body, received_at, processed_at, outcome, detail";

const INSTALLATION_COLUMNS: &str = "id, organization_id, account_login, account_id, \
     account_type, permissions, repository_selection, created_at, updated_at, suspended_at, \
     deleted_at";

const REPOSITORY_COLUMNS: &str = "id, installation_id, organization_id, full_name, private, \
     connected_at, disconnected_at, default_branch, default_protected, protection_checked_at";

fn delivery_from(row: &sqlx::any::AnyRow) -> Result<Delivery, Error> {
    Ok(Delivery {
        guid: row.try_get("guid")?,
        organization_id: row.try_get("organization_id")?,
        event: row.try_get("event")?,
        action: row.try_get("action")?,
        installation_id: row.try_get("installation_id")?,
        body_sha256: row.try_get("body_sha256")?,
        body: row.try_get("body")?,
        received_at: row.try_get("received_at")?,
        processed_at: row.try_get("processed_at")?,
        outcome: row.try_get("outcome")?,
        detail: row.try_get("detail")?,
    })
}

fn installation_from(row: &sqlx::any::AnyRow) -> Result<Installation, Error> {
    let permissions: String = row.try_get("permissions")?;
    Ok(Installation {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        account_login: row.try_get("account_login")?,
        account_id: row.try_get("account_id")?,
        account_type: row.try_get("account_type")?,
        permissions: serde_json::from_str(&permissions).map_err(|e| Error::Corrupt {
            table: "github_installations",
            detail: format!("permissions: {e}"),
        })?,
        repository_selection: row.try_get("repository_selection")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        suspended_at: row.try_get("suspended_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn repository_from(row: &sqlx::any::AnyRow) -> Result<Repository, Error> {
    let private: i64 = row.try_get("private")?;
    Ok(Repository {
        id: row.try_get("id")?,
        installation_id: row.try_get("installation_id")?,
        organization_id: row.try_get("organization_id")?,
        full_name: row.try_get("full_name")?,
        private: private != 0,
        connected_at: row.try_get("connected_at")?,
        disconnected_at: row.try_get("disconnected_at")?,
        default_branch: row.try_get("default_branch")?,
        default_protected: row
            .try_get::<Option<i64>, _>("default_protected")?
            .map(|p| p != 0),
        protection_checked_at: row.try_get("protection_checked_at")?,
    })
}

/// The GitHub App's repository of records.
pub struct Github<'s> {
    pub(crate) store: &'s Store,
}

impl Github<'_> {
    /// Records a delivery with its `github.delivery_received` event, in
    /// one transaction; a GUID recorded before, or a body recorded before
    /// under another GUID, changes nothing and is answered
    /// [`Recorded::SeenBefore`] (a single conditional INSERT
    /// decides, so two concurrent deliveries of one GUID cannot both be
    /// new).
    ///
    /// Errors: the database's; the audit log's (nothing is recorded then).
    pub async fn record_delivery(
        &self,
        signer: &CheckpointSigner,
        new: NewDelivery<'_>,
    ) -> Result<Recorded, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, new.organization_id).await?;
        let now = now_micros();
        let inserted = sqlx::query(
            "INSERT INTO github_deliveries (guid, organization_id, event, action, \
               installation_id, body_sha256, body, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(new.guid)
        .bind(new.organization_id)
        .bind(new.event)
        .bind(new.action)
        .bind(new.installation_id)
        .bind(new.body_sha256)
        .bind(new.body)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            drop(tx);
            // The same GUID, or the same signed body under another GUID (a
            // replay: the signature does not cover the GUID).
            let seen = match self.delivery(new.guid).await? {
                Some(seen) => seen,
                None => {
                    let row = sqlx::query(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM github_deliveries \
                         WHERE organization_id = $1 AND body_sha256 = $2"
                    ))
                    .bind(new.organization_id)
                    .bind(new.body_sha256)
                    .fetch_optional(self.store.pool())
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("delivery {} vanished", new.guid)))?;
                    delivery_from(&row)?
                }
            };
            return Ok(Recorded::SeenBefore(seen));
        }
        let event = crate::audited::event(
            new.organization_id,
            (ActorType::Webhook, GITHUB_ACTOR),
            "github.delivery_received",
            ("github_delivery", new.guid),
            json!({
                "event": new.event,
                "action": new.action,
                "installation": new.installation_id,
                "body_sha256": new.body_sha256,
            }),
            now,
        );
        crate::audited::commit(self.store, tx, chain, vec![event], signer, now).await?;
        Ok(Recorded::New(Delivery {
            guid: new.guid.to_string(),
            organization_id: new.organization_id.to_string(),
            event: new.event.to_string(),
            action: new.action.map(str::to_string),
            installation_id: new.installation_id,
            body_sha256: new.body_sha256.to_string(),
            body: new.body.to_string(),
            received_at: now,
            processed_at: None,
            outcome: None,
            detail: None,
        }))
    }

    /// The delivery with this GUID.
    pub async fn delivery(&self, guid: &str) -> Result<Option<Delivery>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM github_deliveries WHERE guid = $1"
        ))
        .bind(guid)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(delivery_from).transpose()
    }

    /// Deliveries recorded and not yet carried out, oldest first, at most
    /// `limit`.
    pub async fn pending_deliveries(&self, limit: u32) -> Result<Vec<Delivery>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM github_deliveries WHERE processed_at IS NULL \
             ORDER BY received_at, guid LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(delivery_from).collect()
    }

    /// The organization's most recent deliveries, newest first, at most
    /// `limit`.
    pub async fn recent_deliveries(
        &self,
        organization_id: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM github_deliveries WHERE organization_id = $2 \
             ORDER BY received_at DESC, guid DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(delivery_from).collect()
    }

    /// Marks a delivery carried out, once: a delivery finished already is
    /// left as it is (answered `false`).
    pub async fn finish_delivery(
        &self,
        guid: &str,
        outcome: Outcome,
        detail: Option<&str>,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE github_deliveries SET processed_at = $2, outcome = $3, detail = $4 \
             WHERE guid = $1 AND processed_at IS NULL",
        )
        .bind(guid)
        .bind(now_micros())
        .bind(outcome.as_str())
        .bind(detail)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// The installation with this id, whichever organization it serves.
    pub async fn installation(&self, id: i64) -> Result<Option<Installation>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM github_installations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(installation_from).transpose()
    }

    /// The organization's installations, deleted ones too, by id.
    pub async fn installations(&self, organization_id: &str) -> Result<Vec<Installation>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM github_installations \
             WHERE organization_id = $1 ORDER BY id"
        ))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(installation_from).collect()
    }

    /// Records what a check of repository `id`'s default branch found.
    pub async fn set_protection(
        &self,
        id: i64,
        default_branch: &str,
        protected: bool,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE github_repositories SET default_branch = $2, default_protected = $3, \
               protection_checked_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(default_branch)
        .bind(i64::from(protected))
        .bind(now_micros())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Repository `id` (GitHub's), connected or not, whichever
    /// organization it serves.
    pub async fn repository(&self, id: i64) -> Result<Option<Repository>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM github_repositories WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(repository_from).transpose()
    }

    /// The organization's repositories, disconnected ones too, by name.
    pub async fn repositories(&self, organization_id: &str) -> Result<Vec<Repository>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM github_repositories \
             WHERE organization_id = $1 ORDER BY full_name, id"
        ))
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(repository_from).collect()
    }

    /// Applies what a webhook says happened to an installation of
    /// `organization_id`, with its audit events, in one transaction.
    /// Applying a change twice changes nothing the second time and
    /// records nothing (a repository connected already is not connected
    /// again), so a redelivered or reordered event is harmless. Answers
    /// the audit actions recorded.
    ///
    /// Errors: `Conflict` for an installation that serves another
    /// organization; `NotFound` for a change to an installation never
    /// created; the database's; the audit log's.
    pub async fn apply(
        &self,
        signer: &CheckpointSigner,
        organization_id: &str,
        change: &InstallationChange,
        cause: Cause<'_>,
    ) -> Result<Vec<String>, Error> {
        let (mut tx, chain) = crate::audited::begin(self.store, organization_id).await?;
        let now = now_micros();
        let mut changes = Changes {
            organization_id,
            cause,
            now,
            events: Vec::new(),
        };
        match change {
            InstallationChange::Created(installation, repositories) => {
                changes
                    .upsert_installation(&mut tx, installation, "github.installation_created")
                    .await?;
                for repository in repositories {
                    changes
                        .connect(&mut tx, installation.id, repository)
                        .await?;
                }
            }
            InstallationChange::Deleted(id) => {
                let installation = changes.existing(&mut tx, *id).await?;
                if installation.deleted_at.is_none() {
                    sqlx::query(
                        "UPDATE github_installations SET deleted_at = $2, updated_at = $2 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    changes.record("github.installation_deleted", *id, json!({}));
                }
                for repository in connected(&mut tx, *id).await? {
                    changes.disconnect(&mut tx, *id, &repository).await?;
                }
            }
            InstallationChange::Suspended(id) => {
                let installation = changes.existing(&mut tx, *id).await?;
                if installation.suspended_at.is_none() {
                    sqlx::query(
                        "UPDATE github_installations SET suspended_at = $2, updated_at = $2 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    changes.record("github.installation_suspended", *id, json!({}));
                }
            }
            InstallationChange::Unsuspended(id) => {
                let installation = changes.existing(&mut tx, *id).await?;
                if installation.suspended_at.is_some() {
                    sqlx::query(
                        "UPDATE github_installations SET suspended_at = NULL, updated_at = $2 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    changes.record("github.installation_unsuspended", *id, json!({}));
                }
            }
            InstallationChange::PermissionsAccepted(installation) => {
                changes
                    .upsert_installation(
                        &mut tx,
                        installation,
                        "github.installation_permissions_accepted",
                    )
                    .await?;
            }
            InstallationChange::Repositories {
                installation,
                added,
                removed,
            } => {
                // Arrived before its installation's `created` (deliveries
                // are not ordered): the payload describes the installation.
                match changes.existing(&mut tx, installation.id).await {
                    Ok(_) => {}
                    Err(Error::NotFound(_)) => {
                        changes
                            .upsert_installation(
                                &mut tx,
                                installation,
                                "github.installation_created",
                            )
                            .await?;
                    }
                    Err(e) => return Err(e),
                }
                for repository in added {
                    changes
                        .connect(&mut tx, installation.id, repository)
                        .await?;
                }
                for repository in removed {
                    changes
                        .disconnect(&mut tx, installation.id, repository)
                        .await?;
                }
            }
        }
        let actions = changes.events.iter().map(|e| e.action.clone()).collect();
        crate::audited::commit(self.store, tx, chain, changes.events, signer, now).await?;
        Ok(actions)
    }
}

/// The events of one [`Github::apply`], and what they share.
struct Changes<'a> {
    organization_id: &'a str,
    cause: Cause<'a>,
    now: i64,
    events: Vec<AuditEvent>,
}

impl Changes<'_> {
    fn record(&mut self, action: &str, installation: i64, details: Value) {
        let mut details = match details {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        details.insert("installation".into(), installation.into());
        details.insert("delivery".into(), self.cause.delivery.into());
        details.insert("sender".into(), self.cause.sender.into());
        let (resource_type, resource_id) = match details.get("repository").and_then(Value::as_str) {
            Some(name) => ("repository", name.to_string()),
            None => ("github_installation", installation.to_string()),
        };
        self.events.push(crate::audited::event(
            self.organization_id,
            (ActorType::Webhook, GITHUB_ACTOR),
            action,
            (resource_type, &resource_id),
            Value::Object(details),
            self.now,
        ));
    }

    /// The installation `id`, which must serve this organization.
    async fn existing(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: i64,
    ) -> Result<Installation, Error> {
        let row = sqlx::query(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM github_installations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no GitHub App installation {id}")))?;
        let installation = installation_from(&row)?;
        if installation.organization_id != self.organization_id {
            return Err(Error::Conflict(format!(
                "GitHub App installation {id} serves another organization"
            )));
        }
        Ok(installation)
    }

    async fn upsert_installation(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        installation: &InstallationRef,
        action: &str,
    ) -> Result<(), Error> {
        let permissions = installation.permissions.to_string();
        let before = match self.existing(tx, installation.id).await {
            Ok(before) => Some(before),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        match &before {
            None => {
                sqlx::query(
                    "INSERT INTO github_installations (id, organization_id, account_login, \
                       account_id, account_type, permissions, repository_selection, created_at, \
                       updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(installation.id)
                .bind(self.organization_id)
                .bind(&installation.account_login)
                .bind(installation.account_id)
                .bind(&installation.account_type)
                .bind(&permissions)
                .bind(&installation.repository_selection)
                .bind(self.now)
                .execute(&mut **tx)
                .await?;
            }
            Some(before) => {
                let same = before.deleted_at.is_none()
                    && before.account_login == installation.account_login
                    && before.permissions == installation.permissions
                    && before.repository_selection == installation.repository_selection;
                if same {
                    return Ok(());
                }
                sqlx::query(
                    "UPDATE github_installations SET account_login = $2, permissions = $3, \
                       repository_selection = $4, deleted_at = NULL, updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(installation.id)
                .bind(&installation.account_login)
                .bind(&permissions)
                .bind(&installation.repository_selection)
                .bind(self.now)
                .execute(&mut **tx)
                .await?;
            }
        }
        self.record(
            action,
            installation.id,
            json!({
                "account": installation.account_login,
                "account_id": installation.account_id,
                "account_type": installation.account_type,
                "permissions": installation.permissions,
                "repository_selection": installation.repository_selection,
            }),
        );
        Ok(())
    }

    /// Connects a repository to the installation, unless it is connected
    /// to it already.
    async fn connect(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        installation: i64,
        repository: &RepositoryRef,
    ) -> Result<(), Error> {
        let row = sqlx::query(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM github_repositories WHERE id = $1"
        ))
        .bind(repository.id)
        .fetch_optional(&mut **tx)
        .await?;
        let before = row.as_ref().map(repository_from).transpose()?;
        if let Some(before) = &before
            && before.organization_id != self.organization_id
        {
            return Err(Error::Conflict(format!(
                "repository {} is connected to another organization",
                repository.full_name
            )));
        }
        let connected_here = before.as_ref().is_some_and(|b| {
            b.disconnected_at.is_none()
                && b.installation_id == installation
                && b.full_name == repository.full_name
        });
        if connected_here {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO github_repositories (id, installation_id, organization_id, full_name, \
               private, connected_at, disconnected_at) VALUES ($1, $2, $3, $4, $5, $6, NULL) \
             ON CONFLICT (id) DO UPDATE SET installation_id = $2, full_name = $4, private = $5, \
               connected_at = $6, disconnected_at = NULL",
        )
        .bind(repository.id)
        .bind(installation)
        .bind(self.organization_id)
        .bind(&repository.full_name)
        .bind(i64::from(repository.private))
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        self.record(
            "repository.connected",
            installation,
            json!({
                "repository": repository.full_name,
                "repository_id": repository.id,
                "private": repository.private,
            }),
        );
        Ok(())
    }

    /// Disconnects a repository from the installation, if it is connected
    /// to it.
    async fn disconnect(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        installation: i64,
        repository: &RepositoryRef,
    ) -> Result<(), Error> {
        let done = sqlx::query(
            "UPDATE github_repositories SET disconnected_at = $3 \
             WHERE id = $1 AND installation_id = $2 AND disconnected_at IS NULL",
        )
        .bind(repository.id)
        .bind(installation)
        .bind(self.now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if done == 1 {
            self.record(
                "repository.disconnected",
                installation,
                json!({
                    "repository": repository.full_name,
                    "repository_id": repository.id,
                }),
            );
        }
        Ok(())
    }
}

/// The repositories connected through installation `id`.
async fn connected(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<Vec<RepositoryRef>, Error> {
    let rows = sqlx::query(&format!(
        "SELECT {REPOSITORY_COLUMNS} FROM github_repositories \
         WHERE installation_id = $1 AND disconnected_at IS NULL ORDER BY id"
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let repository = repository_from(row)?;
            Ok(RepositoryRef {
                id: repository.id,
                full_name: repository.full_name,
                private: repository.private,
            })
        })
        .collect()
}

/// A run the GitHub App started, with what its statuses report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRun {
    pub run_id: String,
    pub organization_id: String,
    pub installation_id: i64,
    pub repository_id: i64,
    /// `owner/name`.
    pub repository: String,
    pub pull_number: Option<i64>,
    /// The commit tested, which the status is posted on.
    pub head_sha: String,
    pub workflow: String,
    /// The delivery that started it.
    pub delivery: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// The run state the last status posted reports.
    pub reported_state: Option<String>,
    pub superseded_by: Option<String>,
    /// The branch a pull request delivering the run's work is based on.
    pub result_base: String,
    /// Whether the code under test came from a fork.
    pub from_fork: bool,
    /// `delivered`, `nothing` or `failed`, once settled.
    pub result: Option<String>,
    pub result_detail: Option<String>,
    /// The pull request carrying the run's work.
    pub result_pull: Option<i64>,
    /// The run's state now (from the runs table).
    pub run_state: String,
}

/// A run to remember as the App's.
#[derive(Debug, Clone)]
pub struct NewGithubRun<'a> {
    pub run_id: &'a str,
    pub organization_id: &'a str,
    pub installation_id: i64,
    pub repository_id: i64,
    pub repository: &'a str,
    pub pull_number: Option<i64>,
    pub head_sha: &'a str,
    pub workflow: &'a str,
    pub delivery: &'a str,
    /// The branch a pull request delivering the run's work is based on.
    pub result_base: &'a str,
    /// Whether the code under test came from a fork.
    pub from_fork: bool,
}

/// What became of a run's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultState {
    /// Pushed, and carried by a pull request.
    Delivered,
    /// The run committed nothing.
    Nothing,
    /// It could not be delivered (the detail says why).
    Failed,
}

impl ResultState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultState::Delivered => "delivered",
            ResultState::Nothing => "nothing",
            ResultState::Failed => "failed",
        }
    }
}

/// Where the App's runs are read from: each with its run's state.
const GITHUB_RUNS_FROM: &str = "FROM github_runs g JOIN runs r ON r.id = g.run_id";

const GITHUB_RUN_COLUMNS: &str = "g.run_id, g.organization_id, g.installation_id, \
     g.repository_id, g.repository, g.pull_number, g.head_sha, g.workflow, g.delivery, \
     g.created_at, g.reported_state, g.superseded_by, g.result_base, g.from_fork, g.result, \
     g.result_detail, g.result_pull, r.state AS run_state";

fn github_run_from(row: &sqlx::any::AnyRow) -> Result<GithubRun, Error> {
    Ok(GithubRun {
        run_id: row.try_get("run_id")?,
        organization_id: row.try_get("organization_id")?,
        installation_id: row.try_get("installation_id")?,
        repository_id: row.try_get("repository_id")?,
        repository: row.try_get("repository")?,
        pull_number: row.try_get("pull_number")?,
        head_sha: row.try_get("head_sha")?,
        workflow: row.try_get("workflow")?,
        delivery: row.try_get("delivery")?,
        created_at: row.try_get("created_at")?,
        reported_state: row.try_get("reported_state")?,
        superseded_by: row.try_get("superseded_by")?,
        result_base: row.try_get("result_base")?,
        from_fork: row.try_get::<i64, _>("from_fork")? != 0,
        result: row.try_get("result")?,
        result_detail: row.try_get("result_detail")?,
        result_pull: row.try_get("result_pull")?,
        run_state: row.try_get("run_state")?,
    })
}

impl Github<'_> {
    /// Remembers a run as the App's (its status is to be reported).
    pub async fn record_run(&self, new: NewGithubRun<'_>) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO github_runs (run_id, organization_id, installation_id, repository_id, \
               repository, pull_number, head_sha, workflow, delivery, created_at, result_base, \
               from_fork) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(new.run_id)
        .bind(new.organization_id)
        .bind(new.installation_id)
        .bind(new.repository_id)
        .bind(new.repository)
        .bind(new.pull_number)
        .bind(new.head_sha)
        .bind(new.workflow)
        .bind(new.delivery)
        .bind(now_micros())
        .bind(new.result_base)
        .bind(i64::from(new.from_fork))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The App's runs that succeeded and whose work is not settled yet,
    /// oldest first, at most `limit`; none of a suspended or deleted
    /// installation.
    pub async fn undelivered_runs(&self, limit: u32) -> Result<Vec<GithubRun>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {GITHUB_RUN_COLUMNS} {GITHUB_RUNS_FROM} \
               JOIN github_installations i ON i.id = g.installation_id \
             WHERE g.result IS NULL AND r.state = 'succeeded' \
               AND i.suspended_at IS NULL AND i.deleted_at IS NULL \
             ORDER BY g.created_at, g.run_id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(github_run_from).collect()
    }

    /// Settles what became of run `run_id`'s work, once.
    pub async fn set_result(
        &self,
        run_id: &str,
        result: ResultState,
        detail: Option<&str>,
        pull: Option<i64>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE github_runs SET result = $2, result_detail = $3, result_pull = $4 \
             WHERE run_id = $1 AND result IS NULL",
        )
        .bind(run_id)
        .bind(result.as_str())
        .bind(detail)
        .bind(pull)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The commit the App last pushed to `branch` of repository
    /// `repository_id`, and the run it pushed it for, if it ever pushed it.
    pub async fn pushed_branch(
        &self,
        repository_id: i64,
        branch: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT sha, run_id FROM github_branches WHERE repository_id = $1 AND branch = $2",
        )
        .bind(repository_id)
        .bind(branch)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row)
    }

    /// Records that the App pushed `branch` at `sha` for run `run_id`.
    pub async fn set_pushed_branch(
        &self,
        repository_id: i64,
        branch: &str,
        sha: &str,
        run_id: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO github_branches (repository_id, branch, sha, run_id, pushed_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repository_id, branch) DO UPDATE SET sha = $3, run_id = $4, pushed_at = $5",
        )
        .bind(repository_id)
        .bind(branch)
        .bind(sha)
        .bind(run_id)
        .bind(now_micros())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Forgets what the App pushed to `branch` (the App deleted it): its
    /// next push requires that the branch not exist.
    ///
    /// Errors: the database's.
    pub async fn forget_pushed_branch(
        &self,
        repository_id: i64,
        branch: &str,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM github_branches WHERE repository_id = $1 AND branch = $2")
            .bind(repository_id)
            .bind(branch)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The App's run `run_id`.
    pub async fn run(&self, run_id: &str) -> Result<Option<GithubRun>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {GITHUB_RUN_COLUMNS} {GITHUB_RUNS_FROM} \
             WHERE g.run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(github_run_from).transpose()
    }

    /// The App's runs whose state differs from what their last status
    /// reported, oldest first, at most `limit`; none of a suspended or
    /// deleted installation (GitHub refuses its tokens: they wait).
    pub async fn unreported_runs(&self, limit: u32) -> Result<Vec<GithubRun>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {GITHUB_RUN_COLUMNS} {GITHUB_RUNS_FROM} \
               JOIN github_installations i ON i.id = g.installation_id \
             WHERE (g.reported_state IS NULL OR g.reported_state <> r.state) \
               AND i.suspended_at IS NULL AND i.deleted_at IS NULL \
             ORDER BY g.created_at, g.run_id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(github_run_from).collect()
    }

    /// The App's unfinished runs of workflow `workflow` for pull request
    /// `number` of repository `repository_id`.
    pub async fn open_runs_of_pull(
        &self,
        repository_id: i64,
        number: i64,
        workflow: &str,
    ) -> Result<Vec<GithubRun>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {GITHUB_RUN_COLUMNS} {GITHUB_RUNS_FROM} \
             WHERE g.repository_id = $1 AND g.pull_number = $2 AND g.workflow = $3 \
               AND r.state IN ('queued', 'running', 'waiting_approval') \
             ORDER BY g.created_at"
        ))
        .bind(repository_id)
        .bind(number)
        .bind(workflow)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(github_run_from).collect()
    }

    /// The App's run of workflow `workflow` at commit `head_sha` for pull
    /// request `number` (none: for a push), if there is one (finished or
    /// not); scheduled runs are not counted.
    pub async fn run_of_head(
        &self,
        repository_id: i64,
        number: Option<i64>,
        workflow: &str,
        head_sha: &str,
    ) -> Result<Option<GithubRun>, Error> {
        let pull = match number {
            Some(_) => "g.pull_number = $4",
            None => "g.pull_number IS NULL AND $4 = 0",
        };
        let row = sqlx::query(&format!(
            "SELECT {GITHUB_RUN_COLUMNS} {GITHUB_RUNS_FROM} \
             WHERE g.repository_id = $1 AND g.workflow = $2 AND g.head_sha = $3 AND {pull} \
               AND r.trigger <> 'schedule' \
             ORDER BY g.created_at LIMIT 1"
        ))
        .bind(repository_id)
        .bind(workflow)
        .bind(head_sha)
        .bind(number.unwrap_or(0))
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(github_run_from).transpose()
    }

    /// The ids of installation `installation_id`'s unfinished runs, oldest
    /// first: what its suspension pauses and its unsuspension carries on.
    pub async fn unfinished_runs_of_installation(
        &self,
        installation_id: i64,
    ) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT g.run_id {GITHUB_RUNS_FROM} \
             WHERE g.installation_id = $1 \
               AND r.state IN ('queued', 'running', 'waiting_approval') \
             ORDER BY g.created_at, g.run_id"
        ))
        .bind(installation_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(|row| Ok(row.try_get("run_id")?)).collect()
    }

    /// Whether run `run_id` is an unfinished run of a suspended
    /// installation (one of [`Github::paused_runs`]).
    pub async fn is_paused(&self, run_id: &str) -> Result<bool, Error> {
        let row = sqlx::query(&format!(
            "SELECT g.run_id {GITHUB_RUNS_FROM} \
               JOIN github_installations i ON i.id = g.installation_id \
             WHERE g.run_id = $1 AND i.suspended_at IS NOT NULL \
               AND r.state IN ('queued', 'running', 'waiting_approval')"
        ))
        .bind(run_id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The ids of every unfinished run of a suspended installation: runs
    /// that stay paused, which a starting server must not carry on.
    pub async fn paused_runs(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT g.run_id {GITHUB_RUNS_FROM} \
               JOIN github_installations i ON i.id = g.installation_id \
             WHERE i.suspended_at IS NOT NULL \
               AND r.state IN ('queued', 'running', 'waiting_approval') \
             ORDER BY g.created_at, g.run_id"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(|row| Ok(row.try_get("run_id")?)).collect()
    }

    /// When scheduled workflow `workflow` of repository `repository_id`
    /// last fired (microseconds since the epoch); a workflow not seen
    /// before is recorded as firing at `now` and answered so, so that it
    /// fires first at its cron's next time after `now`.
    pub async fn schedule_fired_at(
        &self,
        repository_id: i64,
        workflow: &str,
        now: i64,
    ) -> Result<i64, Error> {
        sqlx::query(
            "INSERT INTO github_schedules (repository_id, workflow, fired_at) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(repository_id)
        .bind(workflow)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(sqlx::query(
            "SELECT fired_at FROM github_schedules WHERE repository_id = $1 AND workflow = $2",
        )
        .bind(repository_id)
        .bind(workflow)
        .fetch_one(self.store.pool())
        .await?
        .try_get("fired_at")?)
    }

    /// The App's unfinished scheduled run of workflow `workflow` of
    /// repository `repository_id`, if there is one.
    pub async fn unfinished_scheduled_run(
        &self,
        repository_id: i64,
        workflow: &str,
    ) -> Result<Option<String>, Error> {
        let row = sqlx::query(&format!(
            "SELECT g.run_id {GITHUB_RUNS_FROM} \
             WHERE g.repository_id = $1 AND g.workflow = $2 AND r.trigger = 'schedule' \
               AND r.state IN ('queued', 'running', 'waiting_approval') \
             ORDER BY g.created_at LIMIT 1"
        ))
        .bind(repository_id)
        .bind(workflow)
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| Ok(row.try_get("run_id")?)).transpose()
    }

    /// Claims a firing of scheduled workflow `workflow`: moves its last
    /// firing from `read` (what [`Github::schedule_fired_at`] answered) to
    /// `at`. `false` when another process moved it first: that one fires.
    pub async fn claim_schedule(
        &self,
        repository_id: i64,
        workflow: &str,
        read: i64,
        at: i64,
    ) -> Result<bool, Error> {
        let moved = sqlx::query(
            "UPDATE github_schedules SET fired_at = $4 \
             WHERE repository_id = $1 AND workflow = $2 AND fired_at = $3",
        )
        .bind(repository_id)
        .bind(workflow)
        .bind(read)
        .bind(at)
        .execute(self.store.pool())
        .await?;
        Ok(moved.rows_affected() == 1)
    }

    /// Records that a status reporting `state` was posted for run
    /// `run_id`.
    pub async fn set_reported(&self, run_id: &str, state: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE github_runs SET reported_state = $2, reported_at = $3 WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(state)
        .bind(now_micros())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Records that a push of `by` superseded run `run_id`.
    pub async fn set_superseded(&self, run_id: &str, by: &str) -> Result<(), Error> {
        sqlx::query("UPDATE github_runs SET superseded_by = $2 WHERE run_id = $1")
            .bind(run_id)
            .bind(by)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

/// A GitHub organization member who is a user of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubMember {
    pub organization_id: String,
    /// GitHub's numeric user id.
    pub github_id: i64,
    /// The login as last seen.
    pub login: String,
    /// The user it is.
    pub user_name: String,
}

impl Github<'_> {
    /// The organization's members linked to users, by GitHub id.
    pub async fn members(&self, organization_id: &str) -> Result<Vec<GithubMember>, Error> {
        let rows = sqlx::query(
            "SELECT organization_id, github_id, login, user_name FROM github_members \
             WHERE organization_id = $1 ORDER BY github_id",
        )
        .bind(organization_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GithubMember {
                    organization_id: row.try_get("organization_id")?,
                    github_id: row.try_get("github_id")?,
                    login: row.try_get("login")?,
                    user_name: row.try_get("user_name")?,
                })
            })
            .collect()
    }

    /// Links GitHub user `github_id` (`login`) to user `user_name`, or
    /// updates the login of a link that exists.
    pub async fn link_member(
        &self,
        organization_id: &str,
        github_id: i64,
        login: &str,
        user_name: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO github_members (organization_id, github_id, login, user_name, linked_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (organization_id, github_id) DO UPDATE SET login = $3",
        )
        .bind(organization_id)
        .bind(github_id)
        .bind(login)
        .bind(user_name)
        .bind(now_micros())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Forgets the link of GitHub user `github_id`.
    pub async fn unlink_member(&self, organization_id: &str, github_id: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM github_members WHERE organization_id = $1 AND github_id = $2")
            .bind(organization_id)
            .bind(github_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}
