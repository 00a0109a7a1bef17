-- Structured reports and their workflow: AI draft → radiologist edits → sign (frozen, content hash) →
-- department head countersigns, or returns it with comments → amendments make a new version and keep
-- the old one (state superseded). Every step is a row in report_events, with what changed.
CREATE TABLE reports (
    id             INTEGER PRIMARY KEY,
    study_id       INTEGER NOT NULL REFERENCES studies (id),
    -- 1 for the first report of the study; each amendment counts up.
    version        INTEGER NOT NULL,
    -- The version this one amends.
    supersedes     INTEGER REFERENCES reports (id),
    -- draft / signed / reviewed / returned / superseded
    state          TEXT NOT NULL,
    -- The report as JSON (report::Report).
    content        TEXT NOT NULL,
    -- The model's draft this report started from, as it came (who changed what after it is shown from it).
    ai_draft       TEXT,
    -- SHA-256 of the content as signed (signatures and status left out), hex.
    content_sha256 TEXT,
    created_by     INTEGER NOT NULL REFERENCES users (id),
    created_at     TEXT NOT NULL,
    signed_by      INTEGER REFERENCES users (id),
    signed_at      TEXT,
    reviewed_by    INTEGER REFERENCES users (id),
    reviewed_at    TEXT,
    review_comment TEXT,
    amend_reason   TEXT,
    UNIQUE (study_id, version)
);
CREATE INDEX reports_study ON reports (study_id);

CREATE TABLE report_events (
    id         INTEGER PRIMARY KEY,
    report_id  INTEGER NOT NULL REFERENCES reports (id),
    ts         TEXT NOT NULL,
    user_id    INTEGER REFERENCES users (id),
    username   TEXT NOT NULL,
    role       TEXT NOT NULL,
    -- create / edit / sign / countersign / return / amend
    action     TEXT NOT NULL,
    -- JSON list of {"path", "before", "after"} against the previous content.
    changes    TEXT NOT NULL DEFAULT '[]',
    comment    TEXT
);
CREATE INDEX report_events_report ON report_events (report_id, id);
