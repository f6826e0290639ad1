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
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    deadline_at BIGINT,
    -- What the sandbox's purge removed and found remaining (JSON).
    purge TEXT
);

CREATE INDEX runs_by_organization ON runs (organization_id, created_at);

CREATE FUNCTION smithers_runs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'runs are never deleted';
    END IF;
    IF OLD.state IN ('succeeded', 'failed', 'cancelled', 'timed_out')
       AND (NEW.state IS DISTINCT FROM OLD.state OR NEW.finished_at IS DISTINCT FROM OLD.finished_at) THEN
        RAISE EXCEPTION 'a finished run cannot change state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER runs_guard BEFORE UPDATE OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION smithers_runs_guard();
CREATE TRIGGER runs_no_truncate BEFORE TRUNCATE ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

CREATE TABLE run_steps (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position BIGINT NOT NULL CHECK (position >= 0),
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'running', 'waiting_approval', 'succeeded', 'failed', 'skipped', 'cancelled', 'timed_out')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    exit_code BIGINT,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, step_id)
);

CREATE FUNCTION smithers_run_steps_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'run steps are never deleted';
    END IF;
    IF OLD.state IN ('succeeded', 'failed', 'skipped', 'cancelled', 'timed_out')
       AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'a finished step cannot change state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER run_steps_guard BEFORE UPDATE OR DELETE ON run_steps
    FOR EACH ROW EXECUTE FUNCTION smithers_run_steps_guard();
CREATE TRIGGER run_steps_no_truncate BEFORE TRUNCATE ON run_steps
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

-- What a run printed (already redacted) and what Smithers said of it.
CREATE TABLE run_log (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    position BIGINT,
    stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'smithers')),
    at BIGINT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TRIGGER run_log_append_only BEFORE UPDATE OR DELETE ON run_log
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER run_log_no_truncate BEFORE TRUNCATE ON run_log
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

-- What a run waits for a human to decide: a step's gate, or a tool call the
-- kernel answered `ask` or `admin-only`. Decided once; an expired one is
-- rejected.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    run_id TEXT NOT NULL REFERENCES runs (id),
    position BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('step', 'tool_call')),
    admin_only BIGINT NOT NULL CHECK (admin_only IN (0, 1)),
    role TEXT,
    requested_by TEXT NOT NULL,
    -- What is asked, exactly (the command, the diff), already redacted.
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by TEXT,
    comment TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    decided_at BIGINT
);

CREATE INDEX approvals_by_run ON approvals (run_id, position);
CREATE INDEX approvals_pending ON approvals (organization_id, state);

CREATE FUNCTION smithers_approvals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'approvals are never deleted';
    END IF;
    IF OLD.state <> 'pending' THEN
        RAISE EXCEPTION 'a decided approval cannot change';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER approvals_guard BEFORE UPDATE OR DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION smithers_approvals_guard();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();
