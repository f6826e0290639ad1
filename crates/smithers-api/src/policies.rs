//! Organizations' policies.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicyState {
    /// It published a policy text.
    Published,
    /// It unpublished the organization's policy.
    Unpublished,
}

/// `{"organization", "version", "state", "sha256", "created_by",
/// "created_at", "text"}`; `sha256` (lowercase hex of the text) and
/// `text` are absent for an unpublishing version, and `text` in a
/// history's summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyVersion {
    pub organization: String,
    pub version: u32,
    pub state: PolicyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
