-- Webhook deliveries from the GitHub App, one row per delivery GUID
-- (X-GitHub-Delivery): recorded, with the raw body, before the delivery
-- is answered, so that it is carried out even if the process dies right
-- after answering, and only once however often GitHub sends it.
CREATE TABLE github_deliveries (
    guid TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- X-GitHub-Event, and the payload's `action` where it has one.
    event TEXT NOT NULL,
    action TEXT,
    installation_id INTEGER,
    -- Lowercase hex SHA-256 of the raw body, and the body itself (UTF-8
    -- JSON, as signed).
    body_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    -- Set once the delivery has been carried out: handled, ignored (an
    -- event or action Smithers does not act on) or failed (with why).
    processed_at INTEGER,
    outcome TEXT,
    detail TEXT
);

-- The signature covers the body only, not the GUID: the same signed body
-- under another GUID is a replay, seen before.
CREATE UNIQUE INDEX github_deliveries_body ON github_deliveries (organization_id, body_sha256);

CREATE INDEX github_deliveries_pending ON github_deliveries (received_at)
    WHERE processed_at IS NULL;

-- Installations of the GitHub App, each serving one organization.
CREATE TABLE github_installations (
    id INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- The GitHub account the App is installed on.
    account_login TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    account_type TEXT NOT NULL,
    -- The permissions the installation granted (JSON object), and the
    -- repository selection (all or selected).
    permissions TEXT NOT NULL,
    repository_selection TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    suspended_at INTEGER,
    deleted_at INTEGER
);

-- The repositories an installation gives Smithers, by GitHub's numeric id
-- (stable across renames and transfers).
CREATE TABLE github_repositories (
    id INTEGER PRIMARY KEY,
    installation_id INTEGER NOT NULL REFERENCES github_installations (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- owner/name
    full_name TEXT NOT NULL,
    private INTEGER NOT NULL CHECK (private IN (0, 1)),
    connected_at INTEGER NOT NULL,
    disconnected_at INTEGER,
    -- The default branch as last checked, whether a protection rule
    -- covers it (0/1), and when that was checked.
    default_branch TEXT,
    default_protected INTEGER CHECK (default_protected IN (0, 1)),
    protection_checked_at INTEGER
);

CREATE INDEX github_repositories_by_installation ON github_repositories (installation_id);
