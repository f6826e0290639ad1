//! The audit event model.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::canonical::{canonical_json, write_int, write_string};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Agent,
    System,
    Webhook,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Agent => "agent",
            ActorType::System => "system",
            ActorType::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<ActorType> {
        [
            ActorType::User,
            ActorType::Agent,
            ActorType::System,
            ActorType::Webhook,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

impl fmt::Display for ActorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened, before it is given its place in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUIDv7: unique, and ordered by creation time.
    pub id: Uuid,
    pub organization_id: String,
    pub actor_type: ActorType,
    pub actor_id: String,
    /// What was done, e.g. `capability_check`, `secret.read`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Anything else worth keeping; never a secret value.
    pub details: Value,
    pub ip_address: Option<IpAddr>,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp: i64,
}

impl AuditEvent {
    /// Refuses events that could not be told apart or attributed.
    pub fn validate(&self) -> Result<(), crate::Error> {
        for (name, value) in [
            ("organization_id", &self.organization_id),
            ("actor_id", &self.actor_id),
            ("action", &self.action),
            ("resource_type", &self.resource_type),
        ] {
            if value.trim().is_empty() {
                return Err(crate::Error::InvalidEvent(format!("{name} is empty")));
            }
        }
        Ok(())
    }

    /// The bytes a leaf hash covers: the event and its sequence number, in
    /// canonical JSON (keys in code point order).
    pub fn canonical_bytes(&self, seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        self.write_canonical(seq, &mut out);
        out
    }

    /// [`AuditEvent::canonical_bytes`] into a buffer the caller reuses.
    pub fn write_canonical(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        let field = |name: &str, out: &mut Vec<u8>| {
            if out.len() > 1 {
                out.push(b',');
            }
            write_string(name, out);
            out.push(b':');
        };
        out.push(b'{');
        field("action", out);
        write_string(&self.action, out);
        field("actor_id", out);
        write_string(&self.actor_id, out);
        field("actor_type", out);
        write_string(self.actor_type.as_str(), out);
        field("details", out);
        canonical_json(&self.details, out);
        field("id", out);
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        write_string(self.id.hyphenated().encode_lower(&mut uuid), out);
        field("ip_address", out);
        match self.ip_address {
            Some(ip) => write_string(&ip.to_string(), out),
            None => out.extend_from_slice(b"null"),
        }
        field("organization_id", out);
        write_string(&self.organization_id, out);
        field("resource_id", out);
        write_string(&self.resource_id, out);
        field("resource_type", out);
        write_string(&self.resource_type, out);
        field("seq", out);
        write_int(seq, out);
        field("timestamp", out);
        write_int(self.timestamp, out);
        out.push(b'}');
    }
}
