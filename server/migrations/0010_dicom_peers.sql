-- The DICOM nodes this server knows (modalities that send to it, the PACS): managed by administrators
-- (`medgemma-x dicom peer add|list|remove`). An association from an AE title not in this table is
-- refused unless the server runs with --dicom-accept-any (a first install).
CREATE TABLE dicom_peers (
    id         INTEGER PRIMARY KEY,
    -- 1–16 characters of the DICOM default repertoire, no backslash, stored trimmed.
    ae_title   TEXT NOT NULL UNIQUE,
    host       TEXT NOT NULL,
    port       INTEGER NOT NULL,
    -- 1: may send images to us (C-STORE).
    may_store  INTEGER NOT NULL DEFAULT 1,
    -- 1: may query what we hold (C-FIND), and is asked for priors.
    may_query  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
