//! Accounts in the database: create, find, change password, disable. Used by the API (admin pages), by
//! `medgemma-x user …`, and by the first start (the bootstrap admin).

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::Row;

use super::{Role, password};
use crate::store::db::Pool;

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(skip)]
    pub session_epoch: i64,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
    /// A second factor is required at sign-in.
    pub totp_enabled: bool,
    #[serde(skip)]
    pub totp_secret: Option<String>,
}

fn from_row(row: &crate::store::db::Row) -> anyhow::Result<User> {
    let role: String = row.get("role");
    Ok(User {
        id: row.get("id"),
        username: row.get("username"),
        display_name: row.get("display_name"),
        role: Role::parse(&role).with_context(|| format!("unknown role {role:?} in the users table"))?,
        disabled: row.get::<i64, _>("disabled") != 0,
        session_epoch: row.get("session_epoch"),
        password_hash: row.get("password_hash"),
        created_at: row.get("created_at"),
        last_login_at: row.get("last_login_at"),
        totp_enabled: row.get::<i64, _>("totp_enabled") != 0,
        totp_secret: row.get("totp_secret"),
    })
}

/// The columns [`from_row`] reads, as a literal so queries are put together at compile time.
macro_rules! user_columns {
    () => {
        "id, username, display_name, role, password_hash, disabled, session_epoch, created_at, \
     last_login_at, totp_enabled, totp_secret"
    };
}

pub async fn by_id(pool: &Pool, id: i64) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_username(pool: &Pool, username: &str) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(pool: &Pool) -> anyhow::Result<Vec<User>> {
    let rows = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY id")).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// A username is what people type at the login page: letters, digits, `.`, `_`, `-`; 2–32 characters.
pub fn check_username(username: &str) -> Result<(), (&'static str, &'static str)> {
    let ok_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !(2..=32).contains(&username.len()) || !ok_chars {
        return Err((
            "用户名须为 2–32 个字母、数字、点、下划线或连字符",
            "a username is 2–32 letters, digits, dots, underscores or hyphens",
        ));
    }
    Ok(())
}

/// Errors a person can fix (taken name, weak password) come back as `Refused`; the rest as `Other`.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{en}")]
    Refused { zh: String, en: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

fn refused((zh, en): (&str, &str)) -> ChangeError {
    ChangeError::Refused { zh: zh.into(), en: en.into() }
}

pub async fn create(
    pool: &Pool,
    username: &str,
    display_name: &str,
    role: Role,
    new_password: &str,
) -> Result<User, ChangeError> {
    check_username(username).map_err(refused)?;
    if display_name.trim().is_empty() || display_name.chars().count() > 64 {
        return Err(refused(("姓名须为 1–64 个字符", "the display name must be 1–64 characters")));
    }
    if let Some(reason) = password::weakness(new_password, username) {
        return Err(refused(reason));
    }
    if by_username(pool, username).await?.is_some() {
        return Err(refused(("用户名已存在", "that username is taken")));
    }
    let hash = hash_off_runtime(new_password).await?;
    let now = crate::support::clock::now_rfc3339();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, role, password_hash, created_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(username)
    .bind(display_name.trim())
    .bind(role.as_str())
    .bind(hash)
    .bind(&now)
    .fetch_one(pool)
    .await
    .context("cannot add the user")?;
    Ok(by_id(pool, id).await?.context("the new user vanished")?)
}

/// Sets a new password and ends every session of the user (they sign in again with it).
pub async fn set_password(pool: &Pool, id: i64, new_password: &str) -> Result<(), ChangeError> {
    let user = by_id(pool, id).await?.ok_or_else(|| refused(("没有这个用户", "no such user")))?;
    if let Some(reason) = password::weakness(new_password, &user.username) {
        return Err(refused(reason));
    }
    let hash = hash_off_runtime(new_password).await?;
    sqlx::query(
        "UPDATE users SET password_hash = $1, password_changed_at = $2, session_epoch = session_epoch + 1 \
         WHERE id = $3",
    )
    .bind(hash)
    .bind(crate::support::clock::now_rfc3339())
    .bind(id)
    .execute(pool)
    .await
    .context("cannot change the password")?;
    Ok(())
}

/// Disables (or re-enables) an account; disabling ends all its sessions at their next request.
pub async fn set_disabled(pool: &Pool, id: i64, disabled: bool) -> Result<User, ChangeError> {
    let done = sqlx::query("UPDATE users SET disabled = $1, session_epoch = session_epoch + 1 WHERE id = $2")
        .bind(i64::from(disabled))
        .bind(id)
        .execute(pool)
        .await
        .context("cannot change the account")?;
    if done.rows_affected() == 0 {
        return Err(refused(("没有这个用户", "no such user")));
    }
    Ok(by_id(pool, id).await?.context("the user vanished")?)
}

/// Starts second-factor enrolment: a new secret, not required until confirmed with a code from it.
pub async fn start_totp(pool: &Pool, id: i64) -> anyhow::Result<String> {
    let secret = super::totp::new_secret();
    sqlx::query("UPDATE users SET totp_secret = $1, totp_enabled = 0, totp_last_step = 0 WHERE id = $2")
        .bind(&secret)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(secret)
}

/// True when `code` is good for the user's secret and not used before; marks its step used. Atomic, so
/// two sign-ins racing with one code cannot both pass.
pub async fn use_totp_code(pool: &Pool, user: &User, code: &str) -> anyhow::Result<bool> {
    let Some(secret) = &user.totp_secret else { return Ok(false) };
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default();
    let Some(step) = super::totp::matching_step(secret, code, now) else { return Ok(false) };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let done = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
        .bind(step)
        .bind(user.id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Confirms enrolment with a code from the new secret: from now on sign-in asks for a code.
pub async fn enable_totp(pool: &Pool, user: &User, code: &str) -> Result<(), ChangeError> {
    if user.totp_secret.is_none() {
        return Err(refused(("请先生成动态验证码密钥", "start the set-up first (a secret to scan)")));
    }
    if !use_totp_code(pool, user, code).await? {
        return Err(refused(("验证码不正确或已使用", "the code is wrong or was used already")));
    }
    sqlx::query("UPDATE users SET totp_enabled = 1 WHERE id = $1").bind(user.id).execute(pool).await.context("totp")?;
    Ok(())
}

/// Removes the second factor (the user with a code, or an admin for a lost phone).
pub async fn disable_totp(pool: &Pool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0 WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn record_login(pool: &Pool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(crate::support::clock::now_rfc3339())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

async fn hash_off_runtime(new_password: &str) -> anyhow::Result<String> {
    let owned = new_password.to_string();
    Ok(tokio::task::spawn_blocking(move || password::hash(&owned)).await?)
}

/// At start: a site without an enabled administrator gets one, named `admin`, with a random password
/// written to `<data-dir>/secrets/initial-admin-password` (mode 0600) for whoever installs the server.
/// Returns the file when it made the account.
pub async fn bootstrap_admin(pool: &Pool, secrets_dir: &std::path::Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    let admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetch_one(pool).await?;
    if admins > 0 {
        return Ok(None);
    }
    if by_username(pool, "admin").await?.is_some() {
        bail!(
            "账号 admin 已存在但不是启用的管理员；请用 `medgemma-x user add` 添加管理员 / \
             the account `admin` exists but is not an enabled administrator: add one with `medgemma-x user add --role admin`"
        );
    }
    let initial = random_password();
    create(pool, "admin", "系统管理员", Role::Admin, &initial).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = secrets_dir.join("initial-admin-password");
    crate::support::files::write_secret_atomically(&file, format!("{initial}\n").as_bytes())?;
    Ok(Some(file))
}

/// 20 characters from an alphabet without look-alikes (no 0/O, 1/l/I): ~115 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    crate::support::pseudonym::random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
