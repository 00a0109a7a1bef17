-- The outbox to the hospital information system: one row per report event to deliver to each configured
-- target, written in the same transaction as the signature, so a crash never loses one. A worker delivers
-- due rows, retrying with backoff; a restart picks up whatever is still pending.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    report_id       INTEGER NOT NULL REFERENCES reports (id),
    -- signed / reviewed (what happened to the report)
    event           TEXT NOT NULL,
    -- http (POST to --his-url) / folder (files in --his-folder)
    target          TEXT NOT NULL,
    -- hl7 / fhir
    format          TEXT NOT NULL,
    -- pending / delivered / failed (gave up after --his-give-up-hours; an admin can retry)
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_report ON deliveries (report_id);
