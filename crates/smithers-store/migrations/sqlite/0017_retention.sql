-- Retention: how long an organization keeps run logs, tool-call outputs and
-- audit events (seconds; NULL keeps them for ever).
ALTER TABLE organizations ADD COLUMN log_retention_secs INTEGER
    CHECK (log_retention_secs IS NULL OR log_retention_secs > 0);

-- Where a pruned audit log continues from: a prune base signed by the
-- audit key (its own message domain) over the dropped prefix's size, Merkle
-- root and chain head, with the prefix's compact Merkle range. The newest
-- base of an organization is the one in force; bases are append-only.
CREATE TABLE audit_prune_bases (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 1),
    root BLOB NOT NULL,
    chain_head BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL,
    -- The roots of the prefix's perfect subtrees, largest first, 32 bytes each.
    frontier BLOB NOT NULL,
    PRIMARY KEY (organization_id, tree_size)
);
CREATE TRIGGER audit_prune_bases_no_update BEFORE UPDATE ON audit_prune_bases
BEGIN SELECT RAISE(ABORT, 'audit_prune_bases is append-only'); END;
CREATE TRIGGER audit_prune_bases_no_delete BEFORE DELETE ON audit_prune_bases
BEGIN SELECT RAISE(ABORT, 'audit_prune_bases is append-only'); END;

-- The one delete the audit log allows: events a prune base covers.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT MAX(tree_size) FROM audit_prune_bases
                         WHERE organization_id = OLD.organization_id), 0)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- When retention dropped a finished run's log and its tool calls' outputs.
ALTER TABLE runs ADD COLUMN logs_dropped_at INTEGER;

DROP TRIGGER run_log_no_delete;
CREATE TRIGGER run_log_no_delete BEFORE DELETE ON run_log
WHEN NOT EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id AND logs_dropped_at IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;

-- A finished call changes once more: retention clears its output, nothing else.
DROP TRIGGER tool_calls_finished_is_final;
CREATE TRIGGER tool_calls_finished_is_final BEFORE UPDATE ON tool_calls
WHEN OLD.state IN ('completed', 'denied', 'rejected')
 AND NOT (NEW.output IS NULL
          AND NEW.run_id IS OLD.run_id AND NEW.position IS OLD.position
          AND NEW.attempt IS OLD.attempt AND NEW.seq IS OLD.seq
          AND NEW.tool IS OLD.tool AND NEW.subject IS OLD.subject
          AND NEW.arguments IS OLD.arguments AND NEW.verdict IS OLD.verdict
          AND NEW.decision IS OLD.decision AND NEW.state IS OLD.state
          AND NEW.approval_id IS OLD.approval_id AND NEW.ok IS OLD.ok
          AND NEW.exit_code IS OLD.exit_code AND NEW.created_at IS OLD.created_at
          AND NEW.finished_at IS OLD.finished_at
          AND EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id AND logs_dropped_at IS NOT NULL))
BEGIN SELECT RAISE(ABORT, 'a finished tool call cannot change'); END;
