//! Chains of pull requests Smithers opened and keeps current:
//! `smithers stacks list|show|sync`, `GET /api/v1/stacks`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A chain of pull requests a run delivered, each based on the one below.
///
/// `state` is `active` (kept current), `paused` (waiting for a person:
/// `paused_reason` says why, `sync` goes on), `finished` (every member
/// merged) or `superseded` (a later run of the same work took its
/// branches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stack {
    /// `stk_` and 32 hexadecimal digits.
    pub id: String,
    /// `owner/name` on GitHub.
    pub repository: String,
    /// The run that delivered it.
    pub run: String,
    /// The branch the bottom pull request is based on.
    pub base: String,
    pub state: String,
    pub paused_reason: Option<String>,
    /// A sync was asked for and the next pass has not carried it out yet.
    pub sync_requested: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bottom first.
    pub members: Vec<StackMember>,
}

/// One pull request of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackMember {
    /// Its `smithers/…` branch.
    pub branch: String,
    /// As the run wrote it.
    pub title: String,
    /// Its pull request's number; `null` until opened.
    pub pull: Option<i64>,
    /// `open` or `merged`.
    pub state: String,
    /// The commit Smithers last pushed to its branch.
    pub head: String,
    /// The commit its own commits sit on.
    pub built_on: String,
    /// The branch it is based on now: the stack's base or the branch of
    /// the open member below it; `null` once merged.
    pub based_on: Option<String>,
}
