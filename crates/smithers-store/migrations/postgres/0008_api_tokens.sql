-- API tokens: a script's or CI's credential acting as one user of an
-- organization, narrowed to scopes. Only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Space-separated scopes (runs:read approvals:write ...).
    scopes TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the whole token.
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    FOREIGN KEY (organization_id, user_name) REFERENCES users (organization_id, name)
);

CREATE INDEX api_tokens_by_organization ON api_tokens (organization_id, created_at);
