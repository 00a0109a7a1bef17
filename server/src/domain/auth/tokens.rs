//! API tokens for integrators: made by an admin, shown once, stored as a SHA-256 hash, scoped to a subset
//! of the integrator role's permissions, revocable, optionally expiring.

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Permission, Role};
use crate::domain::DomainError;
use crate::store::db::Pool;

/// Every token starts with this, so a leaked one is easy to spot in a config file or a secret scanner.
pub const PREFIX: &str = "mgx_";

#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Permission>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn from_row(row: &crate::store::db::Row) -> anyhow::Result<TokenInfo> {
    let scopes: String = row.get("scopes");
    let names: Vec<String> = serde_json::from_str(&scopes).context("token scopes")?;
    Ok(TokenInfo {
        id: row.get("id"),
        name: row.get("name"),
        scopes: names.iter().filter_map(|n| Permission::parse(n)).collect(),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        revoked_at: row.get("revoked_at"),
        last_used_at: row.get("last_used_at"),
    })
}

/// The columns [`from_row`] reads, as a literal so queries are put together at compile time.
macro_rules! token_columns {
    () => {
        "id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at"
    };
}

/// Scopes outside the integrator role are refused (a token can never sign or read the audit trail).
pub fn check_scopes(scopes: &[Permission]) -> Result<(), String> {
    if scopes.is_empty() {
        return Err("at least one scope".into());
    }
    match scopes.iter().find(|s| !Role::Integrator.can(**s)) {
        Some(s) => Err(format!("scope {} is not available to tokens", s.as_str())),
        None => Ok(()),
    }
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// An expiry as given (RFC 3339, any offset), as it is stored: RFC 3339 in UTC; refused when it is no time.
pub fn normalise_expiry(text: &str) -> Result<String, DomainError> {
    let refused = || {
        DomainError::invalid(
            "过期时间须为 RFC 3339 格式（如 2026-12-31T23:59:59+08:00）",
            "expires_at must be an RFC 3339 time (e.g. 2026-12-31T23:59:59+08:00)",
        )
    };
    let when = parse_time(text).ok_or_else(refused)?;
    when.to_offset(time::UtcOffset::UTC).format(&time::format_description::well_known::Rfc3339).map_err(|_| refused())
}

/// Makes a token; returns its record and the token itself, which is never stored and cannot be shown again.
pub async fn create(
    pool: &Pool,
    name: &str,
    scopes: &[Permission],
    created_by: &str,
    expires_at: Option<&str>,
) -> anyhow::Result<(TokenInfo, String)> {
    check_scopes(scopes).map_err(anyhow::Error::msg)?;
    let token = format!("{PREFIX}{}", hex::encode(crate::support::pseudonym::random_bytes::<32>()));
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (name, scopes, token_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(name)
    .bind(serde_json::to_string(&names)?)
    .bind(digest(&token))
    .bind(created_by)
    .bind(crate::support::clock::now_rfc3339())
    .bind(expires_at)
    .fetch_one(pool)
    .await?;
    let info = list(pool).await?.into_iter().find(|t| t.id == id).context("the new token vanished")?;
    Ok((info, token))
}

pub async fn list(pool: &Pool) -> anyhow::Result<Vec<TokenInfo>> {
    let rows =
        sqlx::query(concat!("SELECT ", token_columns!(), " FROM api_tokens ORDER BY id")).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// True when the token existed and was live.
pub async fn revoke(pool: &Pool, id: i64) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(crate::support::clock::now_rfc3339())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The live token with this value, if any (not revoked, not expired).
pub async fn authenticate(pool: &Pool, token: &str) -> anyhow::Result<Option<TokenInfo>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let now = crate::support::clock::now_rfc3339();
    let row = sqlx::query(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(digest(token))
    .fetch_optional(pool)
    .await?;
    let Some(info) = row.as_ref().map(from_row).transpose()? else { return Ok(None) };
    // Compared as times, not as text ("…+08:00" and "…Z" do not sort by time); an expiry that cannot be
    // read (written before it was checked) counts as expired.
    if let Some(expires_at) = &info.expires_at
        && !parse_time(expires_at).is_some_and(|t| t > time::OffsetDateTime::now_utc())
    {
        return Ok(None);
    }
    // At most one write a minute per token: a busy integrator must not turn every read into a write.
    let minute_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let minute_ago = minute_ago.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(&now)
    .bind(info.id)
    .bind(minute_ago)
    .execute(pool)
    .await?;
    Ok(Some(info))
}
