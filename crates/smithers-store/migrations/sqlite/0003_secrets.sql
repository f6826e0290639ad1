-- Secret versions: the value is sealed (envelope encryption); the row says
-- which keyring key wraps its data key. Versions are never deleted, so the
-- history stays auditable; destroying one erases its ciphertext for good.
CREATE TABLE secret_versions (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    state TEXT NOT NULL CHECK (state IN ('active', 'inactive', 'destroyed')),
    format INTEGER NOT NULL,
    key_id TEXT,
    wrapped_key BLOB,
    ciphertext BLOB,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    deactivated_at INTEGER,
    destroyed_at INTEGER,
    destroyed_by TEXT,
    PRIMARY KEY (organization_id, environment, name, version),
    CHECK ((state = 'destroyed') = (ciphertext IS NULL)),
    CHECK ((ciphertext IS NULL) = (wrapped_key IS NULL) AND (ciphertext IS NULL) = (key_id IS NULL))
);

-- At most one active version per secret.
CREATE UNIQUE INDEX secret_versions_one_active
    ON secret_versions (organization_id, environment, name) WHERE state = 'active';
CREATE INDEX secret_versions_by_key ON secret_versions (key_id);

CREATE TRIGGER secret_versions_no_delete BEFORE DELETE ON secret_versions
BEGIN SELECT RAISE(ABORT, 'secret versions are never deleted; destroy erases the value'); END;
CREATE TRIGGER secret_versions_destroyed_is_final BEFORE UPDATE ON secret_versions
WHEN OLD.state = 'destroyed'
BEGIN SELECT RAISE(ABORT, 'a destroyed secret version cannot change'); END;

-- Requests to read a secret's value, and their decisions.
CREATE TABLE secret_grants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    run_id TEXT,
    purpose TEXT NOT NULL,
    ttl_seconds INTEGER NOT NULL CHECK (ttl_seconds >= 1),
    single_use INTEGER NOT NULL CHECK (single_use IN (0, 1)),
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    requested_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    comment TEXT,
    expires_at INTEGER,
    used_at INTEGER
);

CREATE INDEX secret_grants_by_secret ON secret_grants (organization_id, environment, name);
