//! The shapes Smithers' front ends return — the command line's `--json`,
//! and the HTTP API to come — and the one error model behind every
//! refusal. Pure data: no I/O, no async, nothing that decides.
//!
//! Field names are stable: a script written against `--json` keeps working.
//! A DTO's fields are serialized in declaration order.

mod approvals;
mod audit;
mod destinations;
mod error;
mod events;
mod github;
mod page;
mod policies;
mod retention;
mod runs;
mod secrets;
mod stacks;
mod time;
mod tokens;
mod users;

pub use approvals::{Approval, ApprovalKind, ApprovalState};
pub use audit::*;
pub use destinations::{AuditDestination, DestinationTest, S3Verification};
pub use error::{Error, ErrorKind};
pub use events::{CursoredEvent, EventCursor, RunChange, RunEvent, RunEvents};
pub use github::{GithubDelivery, GithubInstallation, GithubRepository, GithubStatus};
pub use page::Page;
pub use policies::{PolicyState, PolicyVersion};
pub use retention::{AuditPrune, Retention, RetentionPass};
pub use runs::*;
pub use secrets::*;
pub use stacks::{Stack, StackMember};
pub use time::Timestamp;
pub use tokens::{ApiToken, NewApiToken, Scope};
pub use users::{Role, User};
