-- People who sign in (radiologists, department heads, admins) and the integrators' API tokens. Passwords
-- and tokens are stored only as hashes (argon2id for passwords; SHA-256 for tokens, which are 256-bit
-- random and so need no slow hash).
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    -- radiologist / department_head / integrator / admin
    role                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    disabled            INTEGER NOT NULL DEFAULT 0,
    -- Bumped on password change and disable: every session carries the epoch it was made in, and a
    -- session of an older epoch is refused (logout everywhere without listing sessions).
    session_epoch       INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    last_login_at       TEXT,
    -- Optional second factor (RFC 6238): the base32 secret, whether it is confirmed and required at
    -- sign-in, and the last 30-second step a code was accepted for (a code is good once).
    totp_secret         TEXT,
    totp_enabled        INTEGER NOT NULL DEFAULT 0,
    totp_last_step      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    -- JSON list of permission names (a subset of the integrator role's).
    scopes       TEXT NOT NULL,
    -- hex SHA-256 of the token.
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);

-- Who did what to which patient's data, when, from where, and how it ended. Append-only (the triggers
-- below refuse changes through SQL) and hash-chained: each row's hash covers its content and the previous
-- row's hash, so a row changed or removed behind the database's back breaks the chain at that row.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    ts          TEXT NOT NULL,
    -- user / token / anonymous / system
    actor_kind  TEXT NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT,
    role        TEXT,
    ip          TEXT,
    -- "GET /api/v1/studies/{id}", "login", "user.add", ...
    action      TEXT NOT NULL,
    -- The route's path parameters as JSON, e.g. {"id":"12"}.
    target      TEXT,
    -- HMAC pseudonym of the patient (never the name or ID in clear) and the study, when the action touched one.
    patient_ref TEXT,
    study_id    INTEGER,
    -- ok / denied / failed
    outcome     TEXT NOT NULL,
    status      INTEGER,
    detail      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_patient ON audit_events (patient_ref);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- Signed-in sessions (tower-sessions' SQLite store reads and writes this table; its own `migrate` would
-- create the same). The session id is the cookie; data holds the user id, the account's session epoch,
-- the sign-in time and the CSRF token.
CREATE TABLE IF NOT EXISTS tower_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
