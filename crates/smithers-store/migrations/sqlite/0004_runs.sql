-- Runs of workflows. A run and its steps are rows before they are actions:
-- every state is committed (with its audit event) before what it announces
-- happens, so a process killed at any point leaves a run that can resume.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workflow TEXT NOT NULL,
    repository TEXT NOT NULL,
    trigger TEXT NOT NULL,
    -- The workflow as it was when the run was created (JSON), so that a
    -- resumed run does what it set out to do.
    definition TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('queued', 'running', 'waiting_approval', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    -- The process executing it (boot, PID namespace, pid, start time).
    owner TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    deadline_at INTEGER,
    -- What the sandbox's purge removed and found remaining (JSON).
    purge TEXT
);

CREATE INDEX runs_by_organization ON runs (organization_id, created_at);

CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are never deleted'); END;
CREATE TRIGGER runs_finished_is_final BEFORE UPDATE ON runs
WHEN OLD.state IN ('succeeded', 'failed', 'cancelled', 'timed_out')
 AND (NEW.state IS NOT OLD.state OR NEW.finished_at IS NOT OLD.finished_at)
BEGIN SELECT RAISE(ABORT, 'a finished run cannot change state'); END;

CREATE TABLE run_steps (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'running', 'waiting_approval', 'succeeded', 'failed', 'skipped', 'cancelled', 'timed_out')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    exit_code INTEGER,
    error TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, step_id)
);

CREATE TRIGGER run_steps_no_delete BEFORE DELETE ON run_steps
BEGIN SELECT RAISE(ABORT, 'run steps are never deleted'); END;
CREATE TRIGGER run_steps_finished_is_final BEFORE UPDATE ON run_steps
WHEN OLD.state IN ('succeeded', 'failed', 'skipped', 'cancelled', 'timed_out')
 AND NEW.state IS NOT OLD.state
BEGIN SELECT RAISE(ABORT, 'a finished step cannot change state'); END;

-- What a run printed (already redacted) and what Smithers said of it.
CREATE TABLE run_log (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    position INTEGER,
    stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'smithers')),
    at INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TRIGGER run_log_no_update BEFORE UPDATE ON run_log
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;
CREATE TRIGGER run_log_no_delete BEFORE DELETE ON run_log
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;

-- What a run waits for a human to decide: a step's gate, or a tool call the
-- kernel answered `ask` or `admin-only`. Decided once; an expired one is
-- rejected.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('step', 'tool_call')),
    admin_only INTEGER NOT NULL CHECK (admin_only IN (0, 1)),
    role TEXT,
    requested_by TEXT NOT NULL,
    -- What is asked, exactly (the command, the diff), already redacted.
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by TEXT,
    comment TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    decided_at INTEGER
);

CREATE INDEX approvals_by_run ON approvals (run_id, position);
CREATE INDEX approvals_pending ON approvals (organization_id, state);

CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are never deleted'); END;
CREATE TRIGGER approvals_decided_is_final BEFORE UPDATE ON approvals
WHEN OLD.state <> 'pending'
BEGIN SELECT RAISE(ABORT, 'a decided approval cannot change'); END;
