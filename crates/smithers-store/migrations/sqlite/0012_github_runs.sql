-- Runs started by the GitHub App, with what their commit statuses report:
-- a status is posted for each state a run reaches (pending while queued
-- or running, then its outcome) until the reported state is the run's.
CREATE TABLE github_runs (
    run_id TEXT PRIMARY KEY REFERENCES runs (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    installation_id INTEGER NOT NULL,
    repository_id INTEGER NOT NULL,
    -- owner/name
    repository TEXT NOT NULL,
    -- The pull request, for a pull request's run.
    pull_number INTEGER,
    -- The commit the run tested, which its status is posted on.
    head_sha TEXT NOT NULL,
    workflow TEXT NOT NULL,
    -- The delivery that started it.
    delivery TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- The run state the last posted status reports, and when.
    reported_state TEXT,
    reported_at INTEGER,
    -- The commit whose push superseded this run, when one did.
    superseded_by TEXT,
    -- Whether the code under test came from a fork (1): its commits are
    -- never pushed into the repository.
    from_fork INTEGER NOT NULL DEFAULT 0 CHECK (from_fork IN (0, 1)),
    -- The branch a pull request delivering the run's work is based on
    -- (the triggering pull request's head branch, or the default branch).
    result_base TEXT NOT NULL,
    -- What became of the run's work, once settled: `delivered`,
    -- `nothing` (no commit), `failed` (result_detail says why); and the
    -- pull request that carries it.
    result TEXT,
    result_detail TEXT,
    result_pull INTEGER
);

CREATE INDEX github_runs_by_pull ON github_runs (repository_id, pull_number, workflow);

-- The `smithers/…` branches the App pushed, each at the commit it last
-- pushed: the next push is leased against it, so a person's push onto
-- the branch is never overwritten.
CREATE TABLE github_branches (
    repository_id INTEGER NOT NULL,
    branch TEXT NOT NULL,
    sha TEXT NOT NULL,
    run_id TEXT NOT NULL,
    pushed_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, branch)
);
