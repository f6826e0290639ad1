//! Where an organization's audit log is streamed besides NATS.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// An audit destination and how far its delivery is: `{"id", "kind",
/// "name", "settings", "delivered_seq", "log_seq", "lag",
/// "last_success_at", "last_error", "last_error_at", "last_gap", "stopped",
/// "created_by", "created_at"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditDestination {
    /// `dst_…`.
    pub id: String,
    /// `s3` or `datadog`.
    pub kind: String,
    pub name: String,
    /// The kind's settings (bucket, prefix, region, endpoint; site) and the
    /// names of the secrets holding its credentials — never their values.
    pub settings: serde_json::Value,
    /// Every event up to this sequence number was accepted.
    pub delivered_seq: u64,
    /// The organization's last sequence number.
    pub log_seq: u64,
    /// Events not delivered yet: `log_seq - delivered_seq`.
    pub lag: u64,
    pub last_success_at: Option<Timestamp>,
    /// What went wrong last (cleared by the next success).
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// The last run of events it will never get (older than Datadog takes,
    /// or pruned while it was stopped) and where they can be read instead.
    pub last_gap: Option<String>,
    /// Why delivery stopped until someone acts (`audit destinations test`
    /// starts it again once it passes); `None` while it goes on.
    pub stopped: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// What a test of a destination did: `{"destination", "delivered",
/// "error"}`. A passing test starts a stopped destination again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationTest {
    pub destination: AuditDestination,
    /// Whether the marked test event was accepted.
    pub delivered: bool,
    pub error: Option<String>,
}

/// `audit verify --from-s3`: the log as an S3 destination's bucket holds
/// it, verified from the bucket alone — `{"destination", "intact",
/// "objects", "first_seq", "last_seq", "pruned", "checkpoints"}` when its
/// chain, Merkle roots, checkpoint signatures and every line's inclusion
/// proof hold, else also `"seq"`, `"problem"` and `"object"`, the key of
/// the object at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct S3Verification {
    pub destination: String,
    pub intact: bool,
    /// Events objects read.
    pub objects: u64,
    /// The first and last sequence numbers the bucket holds.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The prune base the bucket's history starts from, if not from 1.
    pub pruned: Option<u64>,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}
