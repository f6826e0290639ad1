-- Organizations' policies, versioned: each publish adds a version with the
-- policy's text; unpublishing adds a version without text. Append-only;
-- the newest version is the organization's policy.
CREATE TABLE policy_versions (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    -- NULL: the policy was unpublished at this version.
    text TEXT,
    -- Lowercase hex SHA-256 of the text (NULL with it).
    sha256 TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (organization_id, version)
);

CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;
CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;
