-- The AI's triage of a study (a pre-read's short constrained question: server/prompts/triage.zh.md under
-- triage.schema.json), which orders the worklist (urgent first) until a radiologist dismisses it. One row
-- per study, replaced by a newer triage; the decision (confirmed or dismissed) is audited with its route.
CREATE TABLE triage (
    study_id       INTEGER PRIMARY KEY REFERENCES studies (id),
    -- The model's JSON answer, as it wrote it.
    answer         TEXT NOT NULL,
    -- The findings it flagged, comma-separated (pneumothorax, large_pleural_effusion, …); empty for normal.
    flags          TEXT NOT NULL,
    -- 1 when a flag calls for reading first (pneumothorax, large pleural effusion).
    urgent         INTEGER NOT NULL,
    -- The model's one-sentence basis.
    basis          TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    -- confirmed | dismissed, by a radiologist; NULL until then.
    decision       TEXT,
    decided_by     TEXT,
    decided_at     TEXT
);
