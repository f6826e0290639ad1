//! The audit log's core: what an audit event is, how it is encoded and
//! hashed, how events are chained and gathered into an RFC 6962 Merkle tree,
//! how checkpoints over that tree are signed, and how a whole log is
//! verified.
//!
//! Pure: no I/O, no clock, no database. The store decides where events live;
//! this crate decides what makes them trustworthy.
//!
//! - leaf = SHA-256(0x00 ‖ canonical JSON of the event and its sequence number)
//! - chain hash = SHA-256(previous chain hash ‖ leaf), starting from 32 zero bytes
//! - Merkle tree over the leaves as RFC 6962 defines it (inner nodes
//!   SHA-256(0x01 ‖ left ‖ right))
//! - checkpoint = Ed25519 signature over (organization, tree size, Merkle
//!   root, chain head, time) by a key that does not live with the events.
//! - prune base = the same over a dropped prefix, under its own domain, with
//!   the prefix's compact Merkle range: verification starts from it, and the
//!   kept events' inclusion proofs still compute.

mod canonical;
mod chain;
mod checkpoint;
mod event;
pub mod merkle;
mod prune;
mod verify;

pub use canonical::canonical_json;
pub use chain::{AuditChain, SealedEvent};
pub use checkpoint::{Checkpoint, CheckpointSigner, key_id};
pub use event::{ActorType, AuditEvent};
pub use prune::{PRUNED_ACTION, PruneBase};
pub use verify::{Failure, LogVerifier, Problem, Report, verify_log};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event that cannot be sealed into this chain.
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// A key that is not a valid Ed25519 key.
    #[error("invalid signing key: {0}")]
    InvalidKey(String),
}
