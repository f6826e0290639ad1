//! What runs wait for a human to decide.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// A step's gate (`needs_approval`, an `approval` step).
    Step,
    /// A tool call the kernel answered `ask` or `admin-only`.
    ToolCall,
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    /// Nobody decided in time: a rejection.
    Expired,
}

impl ApprovalState {
    /// `pending`, `approved`, `rejected` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Expired => "expired",
        }
    }
}

/// `{"id", "run", "workflow", "position", "kind", "admin_only", "role",
/// "requested_by", "summary", "details", "state", "decided_by", "comment",
/// "created_at", "expires_at"}`. `summary` is what is asked, as the
/// approver reads it (the command, the diff); `details` the kernel's
/// decision and what the run recorded with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub id: String,
    pub run: String,
    pub workflow: String,
    /// The step's position in the workflow.
    pub position: u32,
    pub kind: ApprovalKind,
    /// Only an admin of the organization may decide it.
    pub admin_only: bool,
    /// The agent's role that asked, for a tool call.
    pub role: Option<String>,
    /// Who started the run: the one user who may not decide it.
    pub requested_by: String,
    pub summary: String,
    pub details: serde_json::Value,
    pub state: ApprovalState,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}
