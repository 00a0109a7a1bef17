-- Patients, studies, series and instances, as DICOM groups them. JPEG/PNG uploads become a study of their
-- own with the identity the uploader gave. Pixels live in content-addressed objects under the data dir;
-- rows here point at them by SHA-256.
CREATE TABLE patients (
    id          INTEGER PRIMARY KEY,
    -- PatientID (0010,0020) where the file has one; else a generated "anonymous:<uid>" key.
    patient_key TEXT NOT NULL UNIQUE,
    patient_id  TEXT,
    name        TEXT,
    birth_date  TEXT,
    sex         TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE studies (
    id               INTEGER PRIMARY KEY,
    patient_id       INTEGER NOT NULL REFERENCES patients (id),
    study_uid        TEXT NOT NULL UNIQUE,
    accession_number TEXT,
    -- YYYYMMDD as DICOM writes it.
    study_date       TEXT,
    study_time       TEXT,
    description      TEXT,
    -- new / ai_draft / signed / reviewed (the report workflow moves it).
    status           TEXT NOT NULL DEFAULT 'new',
    -- dicom / upload (JPEG or PNG with uploader-given identity).
    source           TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX studies_patient ON studies (patient_id);
-- The worklist's order.
CREATE INDEX studies_date ON studies (study_date DESC, id DESC);
CREATE INDEX studies_accession ON studies (accession_number);

CREATE TABLE series (
    id            INTEGER PRIMARY KEY,
    study_id      INTEGER NOT NULL REFERENCES studies (id),
    series_uid    TEXT NOT NULL UNIQUE,
    modality      TEXT,
    series_number INTEGER,
    description   TEXT,
    body_part     TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX series_study ON series (study_id);

CREATE TABLE instances (
    id               INTEGER PRIMARY KEY,
    series_id        INTEGER NOT NULL REFERENCES series (id),
    sop_instance_uid TEXT NOT NULL UNIQUE,
    instance_number  INTEGER,
    -- dicom / jpeg / png
    format           TEXT NOT NULL,
    object_sha256    TEXT NOT NULL,
    object_bytes     INTEGER NOT NULL,
    rows             INTEGER NOT NULL,
    columns          INTEGER NOT NULL,
    frames           INTEGER NOT NULL,
    -- The full metadata as JSON (imaging::dicom::DicomInfo, or the uploader's fields for JPEG/PNG).
    metadata         TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX instances_series ON instances (series_id);
