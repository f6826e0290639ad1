-- The answers a model gave an agent step (OpenAI or Anthropic drivers),
-- each recorded before any call in it is decided, so a resumed run replays
-- the conversation instead of asking the model again (a model does not
-- answer the same way twice). Append-only.
CREATE TABLE model_turns (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    turn INTEGER NOT NULL CHECK (turn >= 0),
    driver TEXT NOT NULL,
    model TEXT NOT NULL,
    -- The provider's response body (JSON), as it came.
    response TEXT NOT NULL,
    -- How many tool calls it asked for.
    calls INTEGER NOT NULL CHECK (calls >= 0),
    input_tokens INTEGER,
    output_tokens INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, position, attempt, turn)
);

CREATE TRIGGER model_turns_no_update BEFORE UPDATE ON model_turns
BEGIN SELECT RAISE(ABORT, 'model turns are append-only'); END;
CREATE TRIGGER model_turns_no_delete BEFORE DELETE ON model_turns
BEGIN SELECT RAISE(ABORT, 'model turns are append-only'); END;
