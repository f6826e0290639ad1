//! How long an organization keeps what its runs leave, and what a
//! retention pass dropped.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// An organization's retention: `{"organization", "logs", "logs_seconds",
/// "model_history", "workspaces"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    pub organization: String,
    /// How long run logs, tool-call outputs and audit events are kept
    /// (e.g. `30days`, `2years`), or `forever`.
    pub logs: String,
    /// The same in seconds; `None`: for ever.
    pub logs_seconds: Option<u64>,
    /// What happens to what models generated for a run: always
    /// `destroyed when the run ends` (sealed under the run's own key, which
    /// goes when it ends).
    pub model_history: String,
    /// What happens to a run's workspace and the repository's source in
    /// it: always `destroyed when the run ends` (with its sandbox).
    pub workspaces: String,
}

/// What one retention pass over an organization dropped, or would drop
/// (`dry_run`): `{"organization", "dry_run", "logs", "before", "runs",
/// "lines", "outputs", "histories_destroyed", "audit"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionPass {
    pub organization: String,
    pub dry_run: bool,
    /// The retention applied (e.g. `30days`), or `forever` (nothing goes).
    pub logs: String,
    /// What is older than this goes; `None` when kept for ever.
    pub before: Option<Timestamp>,
    /// Finished runs whose log and tool-call outputs went.
    pub runs: u64,
    /// Log lines dropped.
    pub lines: u64,
    /// Tool-call outputs dropped.
    pub outputs: u64,
    /// Ended runs whose model history was still there (recorded before
    /// history keys existed), destroyed now; 0 on a dry run.
    pub histories_destroyed: u64,
    /// The audit events dropped behind a signed prune base; `None` when
    /// none were due.
    pub audit: Option<AuditPrune>,
}

/// Audit events dropped behind a prune base: `{"first", "through",
/// "events", "held_back_from", "recorded_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPrune {
    /// The first and last sequence numbers dropped.
    pub first: u64,
    pub through: u64,
    pub events: u64,
    /// Where the cutoff alone would have pruned to, when events NATS has
    /// not had yet held the prune back.
    pub held_back_from: Option<u64>,
    /// The sequence number of the `audit.pruned` event that records it
    /// (`None` on a dry run).
    pub recorded_at: Option<u64>,
}
