CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE audit_events (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    id TEXT NOT NULL UNIQUE,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'agent', 'system', 'webhook')),
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    -- TEXT, not JSONB: the hash covers the JSON as written.
    details TEXT NOT NULL,
    ip_address TEXT,
    timestamp BIGINT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (organization_id, seq)
);

CREATE INDEX audit_events_by_action ON audit_events (organization_id, action);
CREATE INDEX audit_events_by_time ON audit_events (organization_id, timestamp);

CREATE TABLE audit_checkpoints (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    tree_size BIGINT NOT NULL CHECK (tree_size >= 1),
    root BYTEA NOT NULL,
    chain_head BYTEA NOT NULL,
    timestamp BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL,
    PRIMARY KEY (organization_id, tree_size)
);

-- Where each organization's chain stands: the only audit table that changes.
CREATE TABLE audit_heads (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    last_seq BIGINT NOT NULL,
    head BYTEA NOT NULL,
    frontier BYTEA NOT NULL,
    checkpointed_seq BIGINT NOT NULL,
    checkpointed_at BIGINT NOT NULL
);

CREATE FUNCTION smithers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();
