-- Organizations' policies, versioned: each publish adds a version with the
-- policy's text; unpublishing adds a version without text. Append-only;
-- the newest version is the organization's policy.
CREATE TABLE policy_versions (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    version BIGINT NOT NULL CHECK (version >= 1),
    -- NULL: the policy was unpublished at this version.
    text TEXT,
    -- Lowercase hex SHA-256 of the text (NULL with it).
    sha256 TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, version)
);

CREATE TRIGGER policy_versions_append_only BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER policy_versions_no_truncate BEFORE TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();
