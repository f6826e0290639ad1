//! An organization's users.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What a user may do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the organization: users, policies, secrets; decides
    /// admin-only approvals.
    Admin,
    Member,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 2] = [Role::Admin, Role::Member];

    /// `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

/// `{"organization", "name", "role", "created_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub organization: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}
