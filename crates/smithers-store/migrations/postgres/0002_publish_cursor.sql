-- How far each organization's log has been delivered to NATS JetStream:
-- the events table itself is the outbox (committed with the event).
CREATE TABLE audit_publish_cursor (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    published_seq BIGINT NOT NULL
);
