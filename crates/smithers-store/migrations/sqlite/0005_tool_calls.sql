-- The tool calls of a run's steps (an agent's calls, and a `run` or `commit`
-- step's own), each a row before it is an action: decided by the kernel,
-- started, then finished with its (redacted) result. A resumed run reads a
-- finished call's result here instead of carrying it out again.
CREATE TABLE tool_calls (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    seq INTEGER NOT NULL CHECK (seq >= 0),
    tool TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- The arguments (JSON), redacted.
    arguments TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'ask', 'admin-only', 'deny')),
    -- The kernel's decision: rule, source, reason (JSON).
    decision TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('allowed', 'asked', 'running', 'completed', 'denied', 'rejected')),
    approval_id TEXT REFERENCES approvals (id),
    ok INTEGER CHECK (ok IN (0, 1)),
    exit_code INTEGER,
    -- What the agent was shown (redacted, capped).
    output TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (run_id, position, attempt, seq)
);

CREATE TRIGGER tool_calls_no_delete BEFORE DELETE ON tool_calls
BEGIN SELECT RAISE(ABORT, 'tool calls are never deleted'); END;
CREATE TRIGGER tool_calls_finished_is_final BEFORE UPDATE ON tool_calls
WHEN OLD.state IN ('completed', 'denied', 'rejected')
BEGIN SELECT RAISE(ABORT, 'a finished tool call cannot change'); END;

-- The workspace snapshot a resumed run starts from (a file name under the
-- run's directory), set in the transaction that finishes the call it follows.
ALTER TABLE runs ADD COLUMN workspace_snapshot TEXT;
