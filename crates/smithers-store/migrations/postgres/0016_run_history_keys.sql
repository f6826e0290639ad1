-- A run's history key: the data key its model answers are sealed under,
-- wrapped by the keyring. It lives while the run does; the transaction that
-- ends the run deletes it (`run.history_destroyed`), leaving the answers
-- ciphertext that nothing opens any more.
CREATE TABLE run_history_keys (
    run_id TEXT PRIMARY KEY REFERENCES runs (id),
    format BIGINT NOT NULL,
    -- The keyring key that wraps it.
    key_id TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- When the run's history was destroyed (microseconds), set when it ended.
ALTER TABLE runs ADD COLUMN history_destroyed_at BIGINT;

-- An answer sealed under its run's history key (nonce, ciphertext, tag);
-- `response` is then empty. Answers recorded before history keys existed
-- are plain in `response` and are deleted when their run's history is
-- destroyed: the one delete the table allows.
ALTER TABLE model_turns ADD COLUMN sealed_response BYTEA;

CREATE FUNCTION smithers_model_turns_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.sealed_response IS NULL AND EXISTS (
        SELECT 1 FROM runs WHERE id = OLD.run_id AND history_destroyed_at IS NOT NULL
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'model_turns is append-only';
END;
$$;

DROP TRIGGER model_turns_append_only ON model_turns;
CREATE TRIGGER model_turns_append_only BEFORE UPDATE OR DELETE ON model_turns
    FOR EACH ROW EXECUTE FUNCTION smithers_model_turns_guard();
