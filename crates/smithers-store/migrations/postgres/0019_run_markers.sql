-- The two markers that let rows of a run be deleted (its model history
-- destroyed, its logs dropped by retention) are set once, only on a run
-- that has ended, and never taken back: setting one on a live run would
-- unlock deleting what it still needs.
CREATE FUNCTION smithers_runs_markers_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.history_destroyed_at IS NOT NULL
            AND NEW.history_destroyed_at IS DISTINCT FROM OLD.history_destroyed_at)
       OR (OLD.logs_dropped_at IS NOT NULL
            AND NEW.logs_dropped_at IS DISTINCT FROM OLD.logs_dropped_at)
       OR ((NEW.history_destroyed_at IS NOT NULL OR NEW.logs_dropped_at IS NOT NULL)
            AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')) THEN
        RAISE EXCEPTION 'a run''s history and log markers are set once, on an ended run';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER runs_markers_are_final BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION smithers_runs_markers_guard();
