-- The GitHub organization members the App made (or found) users of an
-- organization, by GitHub's numeric user id, which survives a rename of
-- the login: the user keeps the name it was made with.
CREATE TABLE github_members (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    github_id INTEGER NOT NULL,
    login TEXT NOT NULL,
    user_name TEXT NOT NULL,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (organization_id, github_id)
);
