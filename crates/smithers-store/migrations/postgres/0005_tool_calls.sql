-- The tool calls of a run's steps (an agent's calls, and a `run` or `commit`
-- step's own), each a row before it is an action: decided by the kernel,
-- started, then finished with its (redacted) result. A resumed run reads a
-- finished call's result here instead of carrying it out again.
CREATE TABLE tool_calls (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position BIGINT NOT NULL CHECK (position >= 0),
    attempt BIGINT NOT NULL CHECK (attempt >= 1),
    seq BIGINT NOT NULL CHECK (seq >= 0),
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
    ok BIGINT CHECK (ok IN (0, 1)),
    exit_code BIGINT,
    -- What the agent was shown (redacted, capped).
    output TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (run_id, position, attempt, seq)
);

CREATE FUNCTION smithers_tool_calls_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'tool calls are never deleted';
    END IF;
    IF OLD.state IN ('completed', 'denied', 'rejected') THEN
        RAISE EXCEPTION 'a finished tool call cannot change';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tool_calls_guard BEFORE UPDATE OR DELETE ON tool_calls
    FOR EACH ROW EXECUTE FUNCTION smithers_tool_calls_guard();
CREATE TRIGGER tool_calls_no_truncate BEFORE TRUNCATE ON tool_calls
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

-- The workspace snapshot a resumed run starts from (a file name under the
-- run's directory), set in the transaction that finishes the call it follows.
ALTER TABLE runs ADD COLUMN workspace_snapshot TEXT;
