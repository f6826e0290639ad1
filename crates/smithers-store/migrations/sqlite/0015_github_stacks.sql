-- Chains of pull requests ("stacks") delivering a run's work, bottom
-- first. The store is the source of truth: a reconciler brings GitHub to
-- it, whatever order GitHub's events come in.
CREATE TABLE github_stacks (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    installation_id INTEGER NOT NULL,
    repository_id INTEGER NOT NULL,
    -- owner/name
    repository TEXT NOT NULL,
    run_id TEXT NOT NULL UNIQUE REFERENCES runs (id),
    -- The branch the bottom's pull request targets.
    base TEXT NOT NULL,
    -- active | paused (the last pass found it waiting for a person;
    -- paused_reason says why) | finished (every member merged) |
    -- superseded (a later run of the same work took its branches).
    state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'finished', 'superseded')),
    paused_reason TEXT,
    -- 1 when a person asked for the branches to be taken as they are on
    -- GitHub (after their own push) at the next pass.
    sync_requested INTEGER NOT NULL DEFAULT 0 CHECK (sync_requested IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX github_stacks_by_state ON github_stacks (state, repository_id);

-- A stack's members, bottom first (position 0).
CREATE TABLE github_stack_members (
    stack_id TEXT NOT NULL REFERENCES github_stacks (id),
    position INTEGER NOT NULL,
    -- Its smithers/… branch, which only Smithers writes.
    branch TEXT NOT NULL,
    -- The pull request's title (the run's words, shown neutralized).
    title TEXT NOT NULL,
    pull_number INTEGER,
    -- What its own commits sit on: -1 the stack's base, else the
    -- position of the member below.
    parent INTEGER NOT NULL,
    -- The commit its own commits sit on (built_on..head are its own), and
    -- the commit Smithers last pushed to its branch.
    built_on TEXT NOT NULL,
    head TEXT NOT NULL,
    -- open | merged
    state TEXT NOT NULL CHECK (state IN ('open', 'merged')),
    -- A push begun and not yet known to have landed: the branch at
    -- pending_head on GitHub is Smithers' own push.
    pending_head TEXT,
    pending_built_on TEXT,
    pending_parent INTEGER,
    -- The stack status last posted: "<sha> <state> <description>".
    status TEXT,
    PRIMARY KEY (stack_id, position)
);

CREATE INDEX github_stack_members_by_branch ON github_stack_members (branch);
