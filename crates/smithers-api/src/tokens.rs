//! API tokens: a script's or CI's credential, acting as one user of an
//! organization, narrowed to a set of scopes.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What a token may be used for: one area of the service layer, read or
/// write. Wire form: `runs:read`, `approvals:write`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    #[serde(rename = "runs:read")]
    RunsRead,
    /// Start, resume and cancel runs.
    #[serde(rename = "runs:write")]
    RunsWrite,
    #[serde(rename = "approvals:read")]
    ApprovalsRead,
    /// Decide approvals.
    #[serde(rename = "approvals:write")]
    ApprovalsWrite,
    /// Secrets' names, versions and grants; never a value.
    #[serde(rename = "secrets:read")]
    SecretsRead,
    /// Set, rotate and destroy secrets; request and decide grants; keys.
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    /// Read a secret's value under an approved grant.
    #[serde(rename = "secrets:reveal")]
    SecretsReveal,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Deliver the audit log to NATS.
    #[serde(rename = "audit:write")]
    AuditWrite,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "policy:read")]
    PolicyRead,
    /// Publish and unpublish the organization's policy; record decisions.
    #[serde(rename = "policy:write")]
    PolicyWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: &'static [Scope] = &[
        Scope::RunsRead,
        Scope::RunsWrite,
        Scope::ApprovalsRead,
        Scope::ApprovalsWrite,
        Scope::SecretsRead,
        Scope::SecretsWrite,
        Scope::SecretsReveal,
        Scope::AuditRead,
        Scope::AuditWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::PolicyRead,
        Scope::PolicyWrite,
    ];

    /// The wire form, `runs:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsRead => "runs:read",
            Scope::RunsWrite => "runs:write",
            Scope::ApprovalsRead => "approvals:read",
            Scope::ApprovalsWrite => "approvals:write",
            Scope::SecretsRead => "secrets:read",
            Scope::SecretsWrite => "secrets:write",
            Scope::SecretsReveal => "secrets:reveal",
            Scope::AuditRead => "audit:read",
            Scope::AuditWrite => "audit:write",
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::PolicyRead => "policy:read",
            Scope::PolicyWrite => "policy:write",
        }
    }

    /// The scope of wire form `text`, if there is one.
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token as it is listed (never its secret): `{"id", "name",
/// "organization", "user", "scopes", "created_at", "expires_at",
/// "revoked_at", "revoked_by"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: String,
    /// What its owner calls it (`ci-deploy`).
    pub name: String,
    pub organization: String,
    /// The user it acts as.
    pub user: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
}

/// A token just created: its listing and, this once, its secret
/// (`{"token", "secret"}`). Only a hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewApiToken {
    pub token: ApiToken,
    /// `smt_…`: what a client sends as `Authorization: Bearer …`.
    pub secret: String,
}
