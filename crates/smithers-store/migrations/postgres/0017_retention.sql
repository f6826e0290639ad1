-- Retention: how long an organization keeps run logs, tool-call outputs and
-- audit events (seconds; NULL keeps them for ever).
ALTER TABLE organizations ADD COLUMN log_retention_secs BIGINT
    CHECK (log_retention_secs IS NULL OR log_retention_secs > 0);

-- Where a pruned audit log continues from: a prune base signed by the
-- audit key (its own message domain) over the dropped prefix's size, Merkle
-- root and chain head, with the prefix's compact Merkle range. The newest
-- base of an organization is the one in force; bases are append-only.
CREATE TABLE audit_prune_bases (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    tree_size BIGINT NOT NULL CHECK (tree_size >= 1),
    root BYTEA NOT NULL,
    chain_head BYTEA NOT NULL,
    timestamp BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL,
    -- The roots of the prefix's perfect subtrees, largest first, 32 bytes each.
    frontier BYTEA NOT NULL,
    PRIMARY KEY (organization_id, tree_size)
);
CREATE TRIGGER audit_prune_bases_append_only BEFORE UPDATE OR DELETE ON audit_prune_bases
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER audit_prune_bases_no_truncate BEFORE TRUNCATE ON audit_prune_bases
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();

-- The one delete the audit log allows: events a prune base covers.
CREATE FUNCTION smithers_audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= COALESCE((SELECT MAX(tree_size) FROM audit_prune_bases
                                                WHERE organization_id = OLD.organization_id), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION smithers_audit_events_guard();

-- When retention dropped a finished run's log and its tool calls' outputs.
ALTER TABLE runs ADD COLUMN logs_dropped_at BIGINT;

CREATE FUNCTION smithers_run_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id
                                    AND logs_dropped_at IS NOT NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'run_log is append-only';
END;
$$;
DROP TRIGGER run_log_append_only ON run_log;
CREATE TRIGGER run_log_append_only BEFORE UPDATE OR DELETE ON run_log
    FOR EACH ROW EXECUTE FUNCTION smithers_run_log_guard();

-- A finished call changes once more: retention clears its output, nothing else.
CREATE OR REPLACE FUNCTION smithers_tool_calls_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'tool calls are never deleted';
    END IF;
    IF OLD.state IN ('completed', 'denied', 'rejected') THEN
        IF NEW.output IS NULL
           AND (to_jsonb(NEW) - 'output') = (to_jsonb(OLD) - 'output')
           AND EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id AND logs_dropped_at IS NOT NULL) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'a finished tool call cannot change';
    END IF;
    RETURN NEW;
END;
$$;
