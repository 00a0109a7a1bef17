//! The database: connection, embedded migrations, and the few queries the foundation needs.
//!
//! SQLite is the embedded default. Queries stay within SQL that PostgreSQL also runs (no SQLite-only
//! functions, ON CONFLICT upserts, TEXT timestamps in RFC 3339), so a PostgreSQL pool can follow
//! without a rewrite.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub type Pool = SqlitePool;
/// The database the pool speaks to (query builders name it).
pub type Backend = sqlx::Sqlite;
/// What every query may fail with.
pub type DbError = sqlx::Error;
/// One connection or open transaction (`&mut *tx`), for functions that must run inside the caller's.
pub type Connection = sqlx::SqliteConnection;
/// A result row, for the few queries that read columns by name.
pub type Row = sqlx::sqlite::SqliteRow;
/// tower-sessions' store on the same database.
pub type SessionStore = tower_sessions_sqlx_store::SqliteStore;

/// Where the database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// The embedded default: one SQLite file inside the data dir.
    SqliteFile(PathBuf),
    /// Whatever `--database-url` said; may carry a password.
    Url(String),
}

impl DatabaseLocation {
    /// Safe to print: passwords in URLs are masked.
    pub fn display_masked(&self) -> String {
        match self {
            Self::SqliteFile(path) => format!("sqlite:{}", path.display()),
            Self::Url(url) => mask_url_password(url),
        }
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; anything else unchanged.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let Some(colon) = authority[..at].find(':') else { return url.to_string() };
    format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &rest[at..])
}

/// Opens the database (creating the SQLite file if needed) and applies pending migrations.
pub async fn connect(location: &DatabaseLocation) -> anyhow::Result<Pool> {
    let options = match location {
        DatabaseLocation::SqliteFile(path) => SqliteConnectOptions::new().filename(path),
        DatabaseLocation::Url(url) if url.starts_with("sqlite:") => {
            SqliteConnectOptions::from_str(url).context("数据库地址无效 / invalid SQLite URL")?
        }
        DatabaseLocation::Url(url) => bail!(
            "暂不支持该数据库，请使用 SQLite / unsupported database {}: this build supports SQLite only",
            location_scheme(url)
        ),
    }
    .create_if_missing(true)
    // WAL: readers (viewer, exports) never wait for the writer; NORMAL sync is durable across a
    // process crash, which is what kill -9 and power-loss-with-UPS sites need.
    .journal_mode(SqliteJournalMode::Wal)
    .synchronous(SqliteSynchronous::Normal)
    .foreign_keys(true)
    .busy_timeout(Duration::from_secs(5));

    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("无法打开数据库 / cannot open database {}", location.display_masked()))?;
    MIGRATIONS.run(&pool).await.context("数据库迁移失败 / database migration failed")?;
    Ok(pool)
}

/// The schema, embedded in the binary and applied at start.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Name of the backend for status pages; never the URL.
pub fn backend_name(location: &DatabaseLocation) -> String {
    match location {
        DatabaseLocation::SqliteFile(_) => "sqlite".into(),
        DatabaseLocation::Url(url) => location_scheme(url),
    }
}

fn location_scheme(url: &str) -> String {
    url.split(':').next().unwrap_or_default().to_string()
}

/// A round trip to the database, for /readyz.
pub async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

/// Records the first start of this installation (kept) and the latest one (overwritten).
pub async fn record_start(pool: &Pool, now_rfc3339: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO site_settings (key, value, updated_at) VALUES ('first_started_at', $1, $1) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(now_rfc3339)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO site_settings (key, value, updated_at) VALUES ('last_started_at', $1, $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(now_rfc3339)
    .execute(pool)
    .await?;
    Ok(())
}

/// A consistent copy of a SQLite database file while it is in use (`VACUUM INTO`), for backups.
pub async fn snapshot_sqlite_file(database: &Path, snapshot: &Path) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(database).read_only(true);
    let mut conn =
        options.connect().await.with_context(|| format!("无法打开数据库 / cannot open {}", database.display()))?;
    // The target is a bound parameter (VACUUM INTO takes an expression), not SQL built from a path.
    sqlx::query("VACUUM INTO $1")
        .bind(snapshot.to_string_lossy().as_ref())
        .execute(&mut conn)
        .await
        .context("数据库快照失败 / database snapshot failed")?;
    Ok(())
}

/// Where the web sessions live (table tower_sessions, migration 0004).
pub fn session_store(pool: &Pool) -> SessionStore {
    SessionStore::new(pool.clone())
}

/// A value from site_settings.
pub async fn setting(pool: &Pool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM site_settings WHERE key = $1").bind(key).fetch_optional(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_start_is_kept_and_last_start_moves() {
        let tmp = tempfile::tempdir().unwrap();
        let location = DatabaseLocation::SqliteFile(tmp.path().join("t.sqlite3"));
        let pool = connect(&location).await.unwrap();
        record_start(&pool, "2026-01-01T00:00:00Z").await.unwrap();
        record_start(&pool, "2026-02-01T00:00:00Z").await.unwrap();
        assert_eq!(setting(&pool, "first_started_at").await.unwrap().as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(setting(&pool, "last_started_at").await.unwrap().as_deref(), Some("2026-02-01T00:00:00Z"));
        pool.close().await;

        // Reopening runs the migrations again without error and keeps the data.
        let pool = connect(&location).await.unwrap();
        assert_eq!(setting(&pool, "first_started_at").await.unwrap().as_deref(), Some("2026-01-01T00:00:00Z"));
        ping(&pool).await.unwrap();
    }

    #[tokio::test]
    async fn an_unsupported_database_is_refused_with_a_clear_message() {
        let location = DatabaseLocation::Url("mysql://root:pw@localhost/x".into());
        let err = connect(&location).await.unwrap_err().to_string();
        assert!(err.contains("unsupported database mysql"), "{err}");
        assert!(!err.contains("pw"), "password leaked: {err}");
    }

    #[test]
    fn passwords_in_database_urls_are_masked() {
        assert_eq!(
            mask_url_password("postgres://pacs:s3cr:et@db.local:5432/mgx"),
            "postgres://pacs:***@db.local:5432/mgx"
        );
        assert_eq!(mask_url_password("postgres://pacs@db.local/mgx"), "postgres://pacs@db.local/mgx");
        assert_eq!(mask_url_password("sqlite:///var/lib/mgx/db.sqlite3"), "sqlite:///var/lib/mgx/db.sqlite3");
        // An '@' in the path is not credentials.
        assert_eq!(mask_url_password("sqlite:///data/a:b@c.db"), "sqlite:///data/a:b@c.db");
    }
}
