//! Secrets and grants as front ends show them: metadata, versions, key
//! usage and grants; never a value (reading one is not a wire operation:
//! a value leaves Smithers only to the command line's own pipe).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One secret, as `secrets list` shows it: `{"environment", "name",
/// "active_version", "latest_version", "versions", "key_id",
/// "updated_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretSummary {
    pub environment: String,
    pub name: String,
    /// The version a read gets by default; none when every version was
    /// destroyed.
    pub active_version: Option<u32>,
    pub latest_version: u32,
    /// How many versions there are, destroyed ones included.
    pub versions: u32,
    /// The keyring key wrapping the active version.
    pub key_id: Option<String>,
    /// The last version's creation or destruction.
    pub updated_at: Timestamp,
}

/// Where a secret version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecretVersionState {
    /// The value a read gets by default; one per secret at most.
    Active,
    /// Replaced by a rotation; kept, and readable by version.
    Inactive,
    /// The ciphertext is erased; only the metadata remains.
    Destroyed,
}

impl SecretVersionState {
    /// `active`, `inactive` or `destroyed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretVersionState::Active => "active",
            SecretVersionState::Inactive => "inactive",
            SecretVersionState::Destroyed => "destroyed",
        }
    }
}

/// One version's metadata, never its value: `{"organization",
/// "environment", "name", "version", "state", "key_id", "created_at",
/// "created_by", "deactivated_at", "destroyed_at", "destroyed_by"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretVersion {
    pub organization: String,
    pub environment: String,
    pub name: String,
    pub version: u32,
    pub state: SecretVersionState,
    /// The keyring key wrapping its data key; none once destroyed.
    pub key_id: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub deactivated_at: Option<Timestamp>,
    pub destroyed_at: Option<Timestamp>,
    pub destroyed_by: Option<String>,
}

/// One key id, of the keyring or of stored versions, and what it wraps:
/// `{"key_id", "versions", "history_keys", "in_keyring", "primary",
/// "removable"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyUsage {
    pub key_id: String,
    /// Versions (not destroyed) whose data key it wraps, in every
    /// organization of the deployment.
    pub versions: u64,
    /// Runs not yet ended whose history key (the key their model answers
    /// are sealed under) it wraps.
    pub history_keys: u64,
    /// Whether `SECRET_ENCRYPTION_KEYS` holds it; the versions of a key
    /// that is not cannot be read until it is put back.
    pub in_keyring: bool,
    /// The key new values are sealed with (the keyring's first).
    pub primary: bool,
    /// It can leave the keyring: in it, not the primary, wrapping nothing.
    pub removable: bool,
}

/// A version a rewrap could not move, and why: `{"version", "error"}`.
/// `version` names it as `organization/environment/name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewrapFailure {
    pub version: String,
    pub error: String,
}

/// What a rewrap did: `{"primary_key", "rewrapped", "already_current",
/// "by_old_key", "failed"}`. Versions that failed stay as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewrapSummary {
    /// The key every version is now wrapped by.
    pub primary_key: String,
    /// Versions moved to the primary key.
    pub rewrapped: u64,
    /// Versions that were on it already.
    pub already_current: u64,
    /// History keys of runs not yet ended moved to the primary key.
    pub history_keys: u64,
    /// Versions and history keys moved, by the key they were moved off.
    pub by_old_key: BTreeMap<String, u64>,
    pub failed: Vec<RewrapFailure>,
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Waiting for an admin other than the requester.
    Pending,
    /// Usable until it expires.
    Approved,
    Denied,
    /// A single-use grant that has been read with.
    Used,
    /// Approved, and past its expiry.
    Expired,
}

impl GrantState {
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Approved => "approved",
            GrantState::Denied => "denied",
            GrantState::Used => "used",
            GrantState::Expired => "expired",
        }
    }
}

/// What a grant is for: one run (only it can read with the grant), or a
/// stated purpose. Written `{"run": "…"}` or `{"purpose": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantBinding {
    Run(String),
    Purpose(String),
}

/// A request to read a secret: `{"environment", "name", "binding",
/// "ttl_seconds", "single_use"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub environment: String,
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    )]
    pub name: String,
    pub binding: GrantBinding,
    /// How long the grant lives once approved: 1 second to 7 days.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604_800))]
    pub ttl_seconds: u64,
    /// The grant is spent by one read.
    pub single_use: bool,
}

/// A grant to read a secret: `{"id", "organization", "environment",
/// "name", "requested_by", "run_id", "purpose", "ttl_seconds",
/// "single_use", "state", "requested_at", "decided_by", "decided_at",
/// "comment", "expires_at", "used_at"}`. `purpose` is `run <id>` for a
/// grant bound to a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: String,
    pub organization: String,
    pub environment: String,
    pub name: String,
    pub requested_by: String,
    /// The run it is bound to, if any.
    pub run_id: Option<String>,
    pub purpose: String,
    pub ttl_seconds: u32,
    pub single_use: bool,
    pub state: GrantState,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// The approver's comment, or the reason of a denial.
    pub comment: Option<String>,
    /// Set once approved.
    pub expires_at: Option<Timestamp>,
    /// When a single-use grant was spent.
    pub used_at: Option<Timestamp>,
}
