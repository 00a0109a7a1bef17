//! A study's AI triage (one row per study, the newest kept) and the radiologist's decision on it.

use crate::store::db::{DbError, Pool};

/// What a triage stores.
pub struct NewTriage<'a> {
    pub study_id: i64,
    pub answer: &'a str,
    pub flags: &'a str,
    pub urgent: bool,
    pub basis: &'a str,
    pub model: &'a str,
    pub prompt_version: &'a str,
}

/// Stores a study's triage, replacing an older one (and the decision on it: it was about that one).
pub async fn store(pool: &Pool, triage: &NewTriage<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO triage (study_id, answer, flags, urgent, basis, model, prompt_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (study_id) DO UPDATE SET answer = excluded.answer, flags = excluded.flags, \
         urgent = excluded.urgent, basis = excluded.basis, model = excluded.model, \
         prompt_version = excluded.prompt_version, created_at = excluded.created_at, \
         decision = NULL, decided_by = NULL, decided_at = NULL",
    )
    .bind(triage.study_id)
    .bind(triage.answer)
    .bind(triage.flags)
    .bind(i64::from(triage.urgent))
    .bind(triage.basis)
    .bind(triage.model)
    .bind(triage.prompt_version)
    .bind(crate::support::clock::now_rfc3339())
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a radiologist's decision; false when the study has no triage.
pub async fn decide(pool: &Pool, study_id: i64, decision: &str, by: &str) -> Result<bool, DbError> {
    let updated = sqlx::query("UPDATE triage SET decision = $1, decided_by = $2, decided_at = $3 WHERE study_id = $4")
        .bind(decision)
        .bind(by)
        .bind(crate::support::clock::now_rfc3339())
        .bind(study_id)
        .execute(pool)
        .await?;
    Ok(updated.rows_affected() == 1)
}
