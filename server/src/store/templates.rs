//! Report templates (migration 0009): the department's and each reader's own.

use sqlx::FromRow;

use crate::store::db::{DbError, Pool};

#[derive(FromRow)]
pub struct TemplateRow {
    pub id: i64,
    /// site | personal
    pub scope: String,
    /// A personal template's owner; '' for a site template.
    pub owner: String,
    pub code: String,
    pub name: String,
    pub report_summary: String,
    /// JSON array of report::model::Finding.
    pub findings: String,
    pub recommendation: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// What a template stores besides its id and whose it is.
pub struct TemplateText<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub report_summary: &'a str,
    pub findings: &'a str,
    pub recommendation: &'a str,
    pub updated_by: &'a str,
}

macro_rules! template_select {
    () => {
        "SELECT id, scope, owner, code, name, report_summary, findings, recommendation, updated_by, updated_at \
         FROM report_templates"
    };
}

/// The templates `owner` may use: their own first, then the department's, each by code.
pub async fn visible_to(pool: &Pool, owner: &str) -> Result<Vec<TemplateRow>, DbError> {
    sqlx::query_as(concat!(
        template_select!(),
        " WHERE scope = 'site' OR (scope = 'personal' AND owner = $1) \
         ORDER BY CASE scope WHEN 'personal' THEN 0 ELSE 1 END, code"
    ))
    .bind(owner)
    .fetch_all(pool)
    .await
}

pub async fn one(pool: &Pool, id: i64) -> Result<Option<TemplateRow>, DbError> {
    sqlx::query_as(concat!(template_select!(), " WHERE id = $1")).bind(id).fetch_optional(pool).await
}

/// How many templates one owner (or, with '', the department) holds.
pub async fn count(pool: &Pool, scope: &str, owner: &str) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM report_templates WHERE scope = $1 AND owner = $2")
        .bind(scope)
        .bind(owner)
        .fetch_one(pool)
        .await
}

/// Adds a template; None when its scope and owner hold that code already.
pub async fn insert(pool: &Pool, scope: &str, owner: &str, text: &TemplateText<'_>) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar(
        "INSERT INTO report_templates \
         (scope, owner, code, name, report_summary, findings, recommendation, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (scope, owner, code) DO NOTHING RETURNING id",
    )
    .bind(scope)
    .bind(owner)
    .bind(text.code)
    .bind(text.name)
    .bind(text.report_summary)
    .bind(text.findings)
    .bind(text.recommendation)
    .bind(text.updated_by)
    .bind(crate::support::clock::now_rfc3339())
    .fetch_optional(pool)
    .await
}

/// Replaces a template's content (the caller has checked that its code is free: see [`code_taken`]).
pub async fn update(pool: &Pool, id: i64, text: &TemplateText<'_>) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE report_templates SET code = $1, name = $2, report_summary = $3, findings = $4, \
         recommendation = $5, updated_by = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(text.code)
    .bind(text.name)
    .bind(text.report_summary)
    .bind(text.findings)
    .bind(text.recommendation)
    .bind(text.updated_by)
    .bind(crate::support::clock::now_rfc3339())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether another template of the same scope and owner has this code.
pub async fn code_taken(pool: &Pool, scope: &str, owner: &str, code: &str, except: i64) -> Result<bool, DbError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM report_templates WHERE scope = $1 AND owner = $2 AND code = $3 AND id <> $4)",
    )
    .bind(scope)
    .bind(owner)
    .bind(code)
    .bind(except)
    .fetch_one(pool)
    .await
}

pub async fn delete(pool: &Pool, id: i64) -> Result<bool, DbError> {
    Ok(sqlx::query("DELETE FROM report_templates WHERE id = $1").bind(id).execute(pool).await?.rows_affected() == 1)
}
