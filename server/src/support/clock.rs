//! Wall-clock time as the database and the audit trail store it.

/// Now, UTC, as RFC 3339 (the TEXT timestamps of every table).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Now as seconds since the Unix epoch (session times, throttling, TOTP steps).
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
