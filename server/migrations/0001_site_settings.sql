-- Facts about this installation (first start, and later site-wide settings).
-- Plain types and ON CONFLICT upserts only, so the same SQL runs on PostgreSQL.
CREATE TABLE site_settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
