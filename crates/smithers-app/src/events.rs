//! Audit events the application records itself.

use smithers_audit::{ActorType, AuditEvent};

/// An audit event of `organization` happening now: `actor` did `action`
/// (`sandbox.egress.allowed`) to `resource` (type, id), with `details`.
pub fn audit_event(
    organization: &str,
    actor: (ActorType, String),
    action: &str,
    resource: (&str, String),
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        organization_id: organization.to_string(),
        actor_type: actor.0,
        actor_id: actor.1,
        action: action.to_string(),
        resource_type: resource.0.to_string(),
        resource_id: resource.1,
        details,
        ip_address: None,
        timestamp: smithers_store::now_micros(),
    }
}
