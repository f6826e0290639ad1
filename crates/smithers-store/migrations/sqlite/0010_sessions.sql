-- Browser sessions: the cookie holds a random secret, of which only the
-- SHA-256 is kept. A session ends by signing out, by expiring, or when its
-- user's role changes or the user is removed.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the cookie's secret.
    secret_sha256 TEXT NOT NULL UNIQUE,
    -- How the person signed in: local, oidc or github.
    method TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    ended_why TEXT,
    FOREIGN KEY (organization_id, user_name) REFERENCES users (organization_id, name)
);

CREATE INDEX sessions_by_user ON sessions (organization_id, user_name);

-- Sign-ins under way, each used once: a one-time local sign-in link, or an
-- OAuth 2.0 / OpenID Connect authorization request (its state, nonce and
-- PKCE verifier, RFC 7636). Only the SHA-256 of the link's token or of the
-- state is kept.
CREATE TABLE sign_ins (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- The user a local link signs in; the provider names the others.
    user_name TEXT,
    nonce TEXT,
    pkce_verifier TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
