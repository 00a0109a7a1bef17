-- The viewer's measurements, saved per study: the shape as drawn (image pixels) and what the server
-- measured on it (measure::shape::measure_shape, the same code the browser runs while drawing), with the
-- window shown at the time as part of the basis. Deleting keeps the row (deleted_at) for the audit trail.
CREATE TABLE measurements (
    id            INTEGER PRIMARY KEY,
    study_id      INTEGER NOT NULL REFERENCES studies (id),
    instance_id   INTEGER NOT NULL REFERENCES instances (id),
    -- 1-based, as the frames endpoints count.
    frame         INTEGER NOT NULL,
    -- measure::shape::Shape as JSON.
    shape         TEXT NOT NULL,
    -- measure::shape::Outcome as JSON.
    outcome       TEXT NOT NULL,
    window_center REAL,
    window_width  REAL,
    label         TEXT,
    -- Username, or "token:NAME" for an API token.
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    deleted_by    TEXT,
    deleted_at    TEXT
);
CREATE INDEX measurements_study ON measurements (study_id);
