//! The parts of GitHub's webhook payloads Smithers reads (GitHub Docs,
//! "Webhook events and payloads"; the shapes of `@octokit/webhooks`).
//! Unknown members are ignored; a member Smithers needs and the payload
//! lacks makes the payload malformed.

use serde::Deserialize;
use serde_json::Value;
use smithers_store::{InstallationRef, RepositoryRef};

/// A GitHub account (a user or an organization).
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
    pub id: i64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// What every payload may carry.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationId>,
    #[serde(default)]
    pub sender: Option<Account>,
}

/// An installation named by id (every event sent to an App).
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationId {
    pub id: i64,
}

/// An installation in full (the `installation` events).
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: i64,
    pub account: Account,
    #[serde(default)]
    pub permissions: Value,
    pub repository_selection: String,
    /// When it was suspended (RFC 3339); `None` while it is not.
    #[serde(default)]
    pub suspended_at: Option<String>,
}

impl Installation {
    /// The store's description of it.
    pub fn to_ref(&self) -> InstallationRef {
        InstallationRef {
            id: self.id,
            account_login: self.account.login.clone(),
            account_id: self.account.id,
            account_type: self
                .account
                .kind
                .clone()
                .unwrap_or_else(|| "Organization".into()),
            permissions: self.permissions.clone(),
            repository_selection: self.repository_selection.clone(),
        }
    }
}

/// A repository as the installation events list it.
#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub id: i64,
    pub full_name: String,
    #[serde(default)]
    pub private: bool,
}

impl Repository {
    /// The store's description of it.
    pub fn to_ref(&self) -> RepositoryRef {
        RepositoryRef {
            id: self.id,
            full_name: self.full_name.clone(),
            private: self.private,
        }
    }
}

/// `installation` (created, deleted, suspend, unsuspend,
/// new_permissions_accepted).
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    /// The repositories given, for `created` (absent when GitHub lists too
    /// many to send).
    #[serde(default)]
    pub repositories: Option<Vec<Repository>>,
}

/// `installation_repositories` (added, removed).
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default)]
    pub repositories_added: Vec<Repository>,
    #[serde(default)]
    pub repositories_removed: Vec<Repository>,
}
