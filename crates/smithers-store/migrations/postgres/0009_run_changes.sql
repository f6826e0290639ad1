-- Every committed change to a run, its steps, its log or its approvals is
-- announced on the channel smithers_runs with the run's id (what
-- Store::run_changes listens to), by the database itself: no writer can
-- forget it, and it costs no round trip of its own. Notifications of one
-- transaction are delivered at its commit, identical ones once.
CREATE FUNCTION smithers_announce_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('smithers_runs', to_jsonb(NEW) ->> TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_announce AFTER INSERT OR UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION smithers_announce_run('id');
CREATE TRIGGER run_steps_announce AFTER INSERT OR UPDATE ON run_steps
    FOR EACH ROW EXECUTE FUNCTION smithers_announce_run('run_id');
CREATE TRIGGER run_log_announce AFTER INSERT ON run_log
    FOR EACH ROW EXECUTE FUNCTION smithers_announce_run('run_id');
CREATE TRIGGER approvals_announce AFTER INSERT OR UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION smithers_announce_run('run_id');
