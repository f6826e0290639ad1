-- Secret versions: the value is sealed (envelope encryption); the row says
-- which keyring key wraps its data key. Versions are never deleted, so the
-- history stays auditable; destroying one erases its ciphertext for good.
CREATE TABLE secret_versions (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    state TEXT NOT NULL CHECK (state IN ('active', 'inactive', 'destroyed')),
    format BIGINT NOT NULL,
    key_id TEXT,
    wrapped_key BYTEA,
    ciphertext BYTEA,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deactivated_at BIGINT,
    destroyed_at BIGINT,
    destroyed_by TEXT,
    PRIMARY KEY (organization_id, environment, name, version),
    CHECK ((state = 'destroyed') = (ciphertext IS NULL)),
    CHECK ((ciphertext IS NULL) = (wrapped_key IS NULL) AND (ciphertext IS NULL) = (key_id IS NULL))
);

-- At most one active version per secret.
CREATE UNIQUE INDEX secret_versions_one_active
    ON secret_versions (organization_id, environment, name) WHERE state = 'active';
CREATE INDEX secret_versions_by_key ON secret_versions (key_id);

CREATE FUNCTION smithers_secret_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'secret versions are never deleted; destroy erases the value';
    END IF;
    IF OLD.state = 'destroyed' THEN
        RAISE EXCEPTION 'a destroyed secret version cannot change';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER secret_versions_guard BEFORE UPDATE OR DELETE ON secret_versions
    FOR EACH ROW EXECUTE FUNCTION smithers_secret_versions_guard();
CREATE TRIGGER secret_versions_no_truncate BEFORE TRUNCATE ON secret_versions
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

-- Requests to read a secret's value, and their decisions.
CREATE TABLE secret_grants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    run_id TEXT,
    purpose TEXT NOT NULL,
    ttl_seconds BIGINT NOT NULL CHECK (ttl_seconds >= 1),
    single_use BIGINT NOT NULL CHECK (single_use IN (0, 1)),
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    requested_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    comment TEXT,
    expires_at BIGINT,
    used_at BIGINT
);

CREATE INDEX secret_grants_by_secret ON secret_grants (organization_id, environment, name);
