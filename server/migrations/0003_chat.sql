-- The conversation about each study: the radiologist's questions and the model's answers, in order. Earlier
-- turns are the context of the next question (within the model's window). Answers are advisory; the row
-- records which model, prompt version and images produced them.
CREATE TABLE chat_messages (
    id             INTEGER PRIMARY KEY,
    study_id       INTEGER NOT NULL REFERENCES studies (id),
    -- user / assistant
    role           TEXT NOT NULL,
    content        TEXT NOT NULL,
    -- chat / localize / compare
    mode           TEXT NOT NULL,
    -- JSON list of {"instance_id", "frame", "role"} the question was asked about.
    images         TEXT NOT NULL DEFAULT '[]',
    -- Assistant rows: eos / max_tokens / cancelled / timeout / shutdown / error.
    stop           TEXT,
    model          TEXT,
    prompt_version TEXT,
    prompt_tokens  INTEGER,
    answer_tokens  INTEGER,
    -- JSON: localization boxes mapped to image pixels, timings.
    details        TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX chat_messages_study ON chat_messages (study_id, id);
