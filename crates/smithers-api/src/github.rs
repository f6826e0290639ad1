//! The GitHub App as an organization sees it: `smithers github status`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// `{"installations", "repositories", "deliveries", "warnings"}`: the
/// App's installations, the repositories they connect (with their default
/// branch's protection), the latest webhook deliveries, and what needs a
/// person's attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubStatus {
    pub installations: Vec<GithubInstallation>,
    pub repositories: Vec<GithubRepository>,
    /// Newest first.
    pub deliveries: Vec<GithubDelivery>,
    /// One line each: an unprotected default branch, a suspended
    /// installation, a failed delivery.
    pub warnings: Vec<String>,
}

/// An installation of the App.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubInstallation {
    /// GitHub's installation id.
    pub id: i64,
    /// The GitHub account it is installed on.
    pub account: String,
    /// `Organization` or `User`.
    pub account_type: String,
    /// `all` or `selected`.
    pub repository_selection: String,
    /// The permissions granted, as GitHub names them.
    pub permissions: serde_json::Value,
    pub suspended: bool,
    pub deleted: bool,
    pub created_at: Timestamp,
}

/// A repository an installation connects (or connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubRepository {
    /// GitHub's repository id.
    pub id: i64,
    /// `owner/name`.
    pub full_name: String,
    pub installation: i64,
    pub private: bool,
    pub connected: bool,
    pub default_branch: Option<String>,
    /// Whether a protection rule covers the default branch, as last
    /// checked; `null`: not checked yet.
    pub default_branch_protected: Option<bool>,
    pub protection_checked_at: Option<Timestamp>,
}

/// A webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubDelivery {
    /// `X-GitHub-Delivery`.
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub received_at: Timestamp,
    /// `handled`, `ignored` or `failed`; `null` while pending.
    pub outcome: Option<String>,
    pub detail: Option<String>,
}
