CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at INTEGER NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE audit_events (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    id TEXT NOT NULL UNIQUE,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'agent', 'system', 'webhook')),
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    details TEXT NOT NULL,
    ip_address TEXT,
    timestamp INTEGER NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (organization_id, seq)
);

CREATE INDEX audit_events_by_action ON audit_events (organization_id, action);
CREATE INDEX audit_events_by_time ON audit_events (organization_id, timestamp);

CREATE TABLE audit_checkpoints (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 1),
    root BLOB NOT NULL,
    chain_head BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (organization_id, tree_size)
);

-- Where each organization's chain stands: the only audit table that changes.
CREATE TABLE audit_heads (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    last_seq INTEGER NOT NULL,
    head BLOB NOT NULL,
    frontier BLOB NOT NULL,
    checkpointed_seq INTEGER NOT NULL,
    checkpointed_at INTEGER NOT NULL
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
