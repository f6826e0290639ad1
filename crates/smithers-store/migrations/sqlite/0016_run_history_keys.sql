-- A run's history key: the data key its model answers are sealed under,
-- wrapped by the keyring. It lives while the run does; the transaction that
-- ends the run deletes it (`run.history_destroyed`), leaving the answers
-- ciphertext that nothing opens any more.
CREATE TABLE run_history_keys (
    run_id TEXT PRIMARY KEY REFERENCES runs (id),
    format INTEGER NOT NULL,
    -- The keyring key that wraps it.
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- When the run's history was destroyed (microseconds), set when it ended.
ALTER TABLE runs ADD COLUMN history_destroyed_at INTEGER;

-- An answer sealed under its run's history key (nonce, ciphertext, tag);
-- `response` is then empty. Answers recorded before history keys existed
-- are plain in `response` and are deleted when their run's history is
-- destroyed: the one delete the table allows.
ALTER TABLE model_turns ADD COLUMN sealed_response BLOB;

DROP TRIGGER model_turns_no_delete;
CREATE TRIGGER model_turns_no_delete BEFORE DELETE ON model_turns
WHEN OLD.sealed_response IS NOT NULL
  OR NOT EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id AND history_destroyed_at IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'model turns are append-only'); END;
