//! The audit log as front ends show it: events, verification reports,
//! inclusion proofs and exports.
//!
//! Hashes and keys are lowercase hex. A leaf is the RFC 6962 leaf hash
//! (SHA-256 of `0x00` and the event's canonical JSON with its sequence
//! number); an inclusion proof is RFC 6962's audit path (RFC 9162
//! section 2.1.3), checked against a Merkle root a checkpoint signed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditActorType {
    User,
    Agent,
    System,
    Webhook,
}

impl AuditActorType {
    /// `user`, `agent`, `system` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditActorType::User => "user",
            AuditActorType::Agent => "agent",
            AuditActorType::System => "system",
            AuditActorType::Webhook => "webhook",
        }
    }
}

impl std::fmt::Display for AuditActorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an organization's log, at its place in the hash chain:
/// `{"seq", "id", "organization_id", "actor_type", "actor_id", "action",
/// "resource_type", "resource_id", "details", "ip_address", "timestamp",
/// "time", "prev_hash", "hash"}`.
///
/// Every field the leaf hash covers is here under the name the canonical
/// encoding gives it, so a line deserializes into the audit core's event
/// and its leaf can be recomputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// The place in the organization's log: gap-free from 1.
    pub seq: u64,
    /// A UUIDv7.
    pub id: String,
    pub organization_id: String,
    pub actor_type: AuditActorType,
    pub actor_id: String,
    /// What was done, e.g. `capability_check`, `secret.read`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Anything else worth keeping; never a secret value.
    pub details: Value,
    /// The client's address, when one came over the network (else null).
    pub ip_address: Option<String>,
    /// Microseconds since the Unix epoch, UTC: the hashed value.
    pub timestamp: i64,
    /// The same instant in RFC 3339, for people.
    pub time: Timestamp,
    /// The previous event's chain hash (32 zero bytes before the first).
    pub prev_hash: String,
    /// SHA-256(prev_hash ‖ leaf).
    pub hash: String,
}

/// A signed checkpoint: `{"organization_id", "tree_size", "root",
/// "chain_head", "timestamp", "key_id", "signature"}`. The Ed25519
/// signature covers
/// `smithers-audit-checkpoint/v1\n{organization_id}\n{tree_size}\n{root}\n{chain_head}\n{timestamp}\n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditCheckpoint {
    pub organization_id: String,
    /// Events covered: sequence numbers 1..=tree_size.
    pub tree_size: u64,
    /// The RFC 6962 Merkle root of those events' leaves.
    pub root: String,
    /// The chain hash of event `tree_size`.
    pub chain_head: String,
    /// When it was signed, microseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// Which key signed: the first 8 bytes of SHA-256 of the public key.
    pub key_id: String,
    /// 64 bytes.
    pub signature: String,
}

/// That one leaf is in the tree a checkpoint signed: `{"tree_size",
/// "leaf_index", "inclusion", "checkpoint"}`. Recomputing the root from
/// the leaf at `leaf_index` and the `inclusion` hashes (RFC 9162 section
/// 2.1.3.2) gives `checkpoint.root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The size of the tree the proof is in: the checkpoint's.
    pub tree_size: u64,
    /// The leaf's index in the tree: its sequence number − 1.
    pub leaf_index: u64,
    /// The audit path, from the leaf's sibling up.
    pub inclusion: Vec<String>,
    pub checkpoint: AuditCheckpoint,
}

/// `audit prove`: one event, its leaf and its inclusion proof —
/// `{"tree_size", "leaf_index", "inclusion", "checkpoint", "seq", "leaf",
/// "event"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditProof {
    #[serde(flatten)]
    pub proof: InclusionProof,
    pub seq: u64,
    /// The event's leaf hash.
    pub leaf: String,
    pub event: AuditEvent,
}

/// One line of `audit export --format jsonl`: the event's fields, then
/// `"leaf"` and `"proof"` (null while no checkpoint covers the event yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditExportLine {
    #[serde(flatten)]
    pub event: AuditEvent,
    pub leaf: Option<String>,
    pub proof: Option<InclusionProof>,
}

/// `audit verify`: `{"intact", "organizations"}`, intact when every
/// organization's log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    pub intact: bool,
    pub organizations: Vec<LogVerification>,
}

/// One organization's log, verified: `{"organization", "intact": true,
/// "events", "checkpoints", "root"}` when its chain, Merkle roots and
/// checkpoint signatures all hold, else `{"organization", "intact": false,
/// "seq", "problem"}` naming the first bad sequence number (0 when a
/// checkpoint itself is unreadable) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogVerification {
    pub organization: String,
    pub intact: bool,
    /// The log's size, its last sequence number (intact only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Events dropped by retention behind the signed prune base the check
    /// started from (intact only; absent when none were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<u64>,
    /// Checkpoints whose signature and root were checked (intact only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<u64>,
    /// The Merkle root of the whole log (intact only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The first bad sequence number (tampered only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What is wrong there, e.g. `hash mismatch: the event's content was
    /// changed` (tampered only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The key that verifies checkpoints: `{"key_id", "algorithm",
/// "public_key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPublicKey {
    /// The first 8 bytes of SHA-256 of the public key.
    pub key_id: String,
    /// `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key.
    pub public_key: String,
}

/// `audit publish`: how many events went to which NATS JetStream stream:
/// `{"delivered", "stream"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDelivery {
    pub delivered: u64,
    pub stream: String,
}
