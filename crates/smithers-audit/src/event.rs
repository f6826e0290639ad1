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
        // The keys are fixed and already in code point order, so they are
        // written as literals.
        out.clear();
        out.extend_from_slice(b"{\"action\":");
        write_string(&self.action, out);
        out.extend_from_slice(b",\"actor_id\":");
        write_string(&self.actor_id, out);
        out.extend_from_slice(b",\"actor_type\":");
        write_string(self.actor_type.as_str(), out);
        out.extend_from_slice(b",\"details\":");
        canonical_json(&self.details, out);
        out.extend_from_slice(b",\"id\":");
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        write_string(self.id.hyphenated().encode_lower(&mut uuid), out);
        out.extend_from_slice(b",\"ip_address\":");
        match self.ip_address {
            Some(ip) => write_string(&ip.to_string(), out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"organization_id\":");
        write_string(&self.organization_id, out);
        out.extend_from_slice(b",\"resource_id\":");
        write_string(&self.resource_id, out);
        out.extend_from_slice(b",\"resource_type\":");
        write_string(&self.resource_type, out);
        out.extend_from_slice(b",\"seq\":");
        write_int(seq, out);
        out.extend_from_slice(b",\"timestamp\":");
        write_int(self.timestamp, out);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_canonical_form_is_sorted_json_of_every_field_and_the_seq() {
        let event = AuditEvent {
            id: Uuid::from_u128(1),
            organization_id: "local".into(),
            actor_type: ActorType::Agent,
            actor_id: "a\"1".into(),
            action: "capability_check".into(),
            resource_type: "tool_call".into(),
            resource_id: "r".into(),
            details: json!({"b": 1, "a": "x"}),
            ip_address: Some("::1".parse().unwrap()),
            timestamp: -5,
        };
        let text = String::from_utf8(event.canonical_bytes(7)).unwrap();
        assert_eq!(
            text,
            r#"{"action":"capability_check","actor_id":"a\"1","actor_type":"agent","details":{"a":"x","b":1},"id":"00000000-0000-0000-0000-000000000001","ip_address":"::1","organization_id":"local","resource_id":"r","resource_type":"tool_call","seq":7,"timestamp":-5}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut canonical = Vec::new();
        crate::canonical_json(&parsed, &mut canonical);
        assert_eq!(
            canonical,
            text.as_bytes(),
            "the event's form is the canonical JSON of itself"
        );
    }
}
