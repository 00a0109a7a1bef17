//! The viewer's measurements of a study: stored with the shape, the server's outcome and the window
//! shown; soft-deleted (who and when kept) so the audit trail can still resolve them.

use sqlx::FromRow;

use crate::store::db::{DbError, Pool};

/// A live measurement with what its basis needs from its image (modality, the decoder's metadata).
#[derive(FromRow)]
pub struct MeasurementRow {
    pub id: i64,
    pub study_id: i64,
    pub instance_id: i64,
    pub frame: i64,
    /// `measure::shape::Shape` as JSON.
    pub shape: String,
    /// `measure::shape::Outcome` as JSON.
    pub outcome: String,
    pub window_center: Option<f64>,
    pub window_width: Option<f64>,
    pub label: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub modality: Option<String>,
    /// The image's `DicomInfo` as JSON.
    pub metadata: String,
}

macro_rules! measurement_select {
    () => {
        "SELECT m.id, m.study_id, m.instance_id, m.frame, m.shape, m.outcome, m.window_center, m.window_width, \
         m.label, m.created_by, m.created_at, se.modality, i.metadata FROM measurements m \
         JOIN instances i ON i.id = m.instance_id JOIN series se ON se.id = i.series_id"
    };
}

/// A study's live measurements in the order they were made.
pub async fn for_study(pool: &Pool, study_id: i64) -> Result<Vec<MeasurementRow>, DbError> {
    sqlx::query_as(concat!(measurement_select!(), " WHERE m.study_id = $1 AND m.deleted_at IS NULL ORDER BY m.id"))
        .bind(study_id)
        .fetch_all(pool)
        .await
}

/// One live measurement.
pub async fn one(pool: &Pool, id: i64) -> Result<Option<MeasurementRow>, DbError> {
    sqlx::query_as(concat!(measurement_select!(), " WHERE m.id = $1 AND m.deleted_at IS NULL"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The ids of a study's live measurements.
pub async fn live_ids(pool: &Pool, study_id: i64) -> Result<Vec<i64>, DbError> {
    sqlx::query_scalar("SELECT id FROM measurements WHERE study_id = $1 AND deleted_at IS NULL")
        .bind(study_id)
        .fetch_all(pool)
        .await
}

/// What a new measurement stores.
pub struct NewMeasurementRow<'a> {
    pub study_id: i64,
    pub instance_id: i64,
    pub frame: i64,
    pub shape_json: &'a str,
    pub outcome_json: &'a str,
    pub window: Option<(f64, f64)>,
    pub label: Option<&'a str>,
    pub created_by: &'a str,
    pub created_at: &'a str,
}

/// Stores a measurement; its id.
pub async fn insert(pool: &Pool, m: &NewMeasurementRow<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "INSERT INTO measurements (study_id, instance_id, frame, shape, outcome, window_center, window_width, \
         label, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(m.study_id)
    .bind(m.instance_id)
    .bind(m.frame)
    .bind(m.shape_json)
    .bind(m.outcome_json)
    .bind(m.window.map(|w| w.0))
    .bind(m.window.map(|w| w.1))
    .bind(m.label)
    .bind(m.created_by)
    .bind(m.created_at)
    .fetch_one(pool)
    .await
}

/// Marks a live measurement deleted; false when there was none.
pub async fn soft_delete(pool: &Pool, id: i64, deleted_by: &str, deleted_at: &str) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE measurements SET deleted_by = $1, deleted_at = $2 WHERE id = $3 AND deleted_at IS NULL")
            .bind(deleted_by)
            .bind(deleted_at)
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() > 0)
}
