//! The audit event model.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::canonical::{canonical_json, write_string};

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
        let mut out = Vec::with_capacity(256);
        let field = |name: &str, out: &mut Vec<u8>| {
            if out.len() > 1 {
                out.push(b',');
            }
            write_string(name, out);
            out.push(b':');
        };
        out.push(b'{');
        field("action", &mut out);
        write_string(&self.action, &mut out);
        field("actor_id", &mut out);
        write_string(&self.actor_id, &mut out);
        field("actor_type", &mut out);
        write_string(self.actor_type.as_str(), &mut out);
        field("details", &mut out);
        canonical_json(&self.details, &mut out);
        field("id", &mut out);
        write_string(&self.id.to_string(), &mut out);
        field("ip_address", &mut out);
        match self.ip_address {
            Some(ip) => write_string(&ip.to_string(), &mut out),
            None => out.extend_from_slice(b"null"),
        }
        field("organization_id", &mut out);
        write_string(&self.organization_id, &mut out);
        field("resource_id", &mut out);
        write_string(&self.resource_id, &mut out);
        field("resource_type", &mut out);
        write_string(&self.resource_type, &mut out);
        field("seq", &mut out);
        out.extend_from_slice(seq.to_string().as_bytes());
        field("timestamp", &mut out);
        out.extend_from_slice(self.timestamp.to_string().as_bytes());
        out.push(b'}');
        out
    }
}
