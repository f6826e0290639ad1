-- The answers a model gave an agent step (OpenAI or Anthropic drivers),
-- each recorded before any call in it is decided, so a resumed run replays
-- the conversation instead of asking the model again (a model does not
-- answer the same way twice). Append-only.
CREATE TABLE model_turns (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position BIGINT NOT NULL CHECK (position >= 0),
    attempt BIGINT NOT NULL CHECK (attempt >= 1),
    turn BIGINT NOT NULL CHECK (turn >= 0),
    driver TEXT NOT NULL,
    model TEXT NOT NULL,
    -- The provider's response body (JSON), as it came.
    response TEXT NOT NULL,
    -- How many tool calls it asked for.
    calls BIGINT NOT NULL CHECK (calls >= 0),
    input_tokens BIGINT,
    output_tokens BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, position, attempt, turn)
);

CREATE TRIGGER model_turns_append_only BEFORE UPDATE OR DELETE ON model_turns
    FOR EACH ROW EXECUTE FUNCTION smithers_append_only();
CREATE TRIGGER model_turns_no_truncate BEFORE TRUNCATE ON model_turns
    FOR EACH STATEMENT EXECUTE FUNCTION smithers_append_only();
