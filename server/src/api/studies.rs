//! The worklist: studies with their patient, and a study's series and instances.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::http::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    /// Part of a patient name, patient ID or accession number.
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct StudySummary {
    id: i64,
    study_uid: String,
    patient_key: String,
    patient_id: Option<String>,
    patient_name: Option<String>,
    patient_birth_date: Option<String>,
    patient_sex: Option<String>,
    accession_number: Option<String>,
    study_date: Option<String>,
    description: Option<String>,
    status: String,
    source: String,
    created_at: String,
    series_count: i64,
    instance_count: i64,
    #[sqlx(skip)]
    modalities: Vec<String>,
}

#[derive(Serialize)]
pub struct StudyList {
    studies: Vec<StudySummary>,
    total: i64,
}

const SUMMARY_SELECT: &str = "SELECT studies.id, studies.study_uid, patients.patient_key, patients.patient_id, \
    patients.name AS patient_name, patients.birth_date AS patient_birth_date, patients.sex AS patient_sex, \
    studies.accession_number, studies.study_date, studies.description, studies.status, studies.source, studies.created_at, \
    (SELECT COUNT(*) FROM series WHERE series.study_id = studies.id) AS series_count, \
    (SELECT COUNT(*) FROM instances JOIN series ON series.id = instances.series_id WHERE series.study_id = studies.id) AS instance_count \
    FROM studies JOIN patients ON patients.id = studies.patient_id";

/// LIKE pattern for a search term, with the term's own wildcards escaped.
fn like_pattern(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

pub async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<Json<StudyList>, AppError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let offset = query.offset.unwrap_or(0).max(0);
    let term = query.q.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(like_pattern);
    let filter = "($1 IS NULL OR patients.name LIKE $1 ESCAPE '\\' OR patients.patient_id LIKE $1 ESCAPE '\\' \
                  OR studies.accession_number LIKE $1 ESCAPE '\\')";
    let mut studies: Vec<StudySummary> = sqlx::query_as(&format!(
        "{SUMMARY_SELECT} WHERE {filter} ORDER BY studies.study_date DESC, studies.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(&term)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM studies JOIN patients ON patients.id = studies.patient_id WHERE {filter}"
    ))
    .bind(&term)
    .fetch_one(&state.db)
    .await?;
    for study in &mut studies {
        study.modalities = modalities(&state, study.id).await?;
    }
    Ok(Json(StudyList { studies, total }))
}

async fn modalities(state: &AppState, study_id: i64) -> Result<Vec<String>, AppError> {
    let mut list: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT modality FROM series WHERE study_id = $1 AND modality IS NOT NULL")
            .bind(study_id)
            .fetch_all(&state.db)
            .await?;
    list.sort();
    Ok(list)
}

#[derive(Serialize)]
pub struct StudyDetail {
    #[serde(flatten)]
    summary: StudySummary,
    series: Vec<SeriesDetail>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct SeriesDetail {
    id: i64,
    series_uid: String,
    modality: Option<String>,
    series_number: Option<i64>,
    description: Option<String>,
    body_part: Option<String>,
    #[sqlx(skip)]
    instances: Vec<InstanceSummary>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct InstanceSummary {
    id: i64,
    sop_instance_uid: String,
    instance_number: Option<i64>,
    format: String,
    rows: i64,
    columns: i64,
    frames: i64,
}

/// 404 unless the study exists: for routes that act on a study's reports or measurements.
pub(super) async fn require(state: &AppState, study_id: i64) -> Result<(), AppError> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM studies WHERE id = $1").bind(study_id).fetch_optional(&state.db).await?;
    match exists {
        Some(_) => Ok(()),
        None => Err(AppError::not_found("没有这个检查", "No such study")),
    }
}

pub async fn detail(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<StudyDetail>, AppError> {
    let mut summary: StudySummary = sqlx::query_as(&format!("{SUMMARY_SELECT} WHERE studies.id = $1"))
        .bind(id)
        .fetch_optional(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("没有这个检查", "No such study"))?;
    summary.modalities = modalities(&state, id).await?;
    let mut series: Vec<SeriesDetail> = sqlx::query_as(
        "SELECT id, series_uid, modality, series_number, description, body_part FROM series WHERE study_id = $1 \
         ORDER BY series_number, id",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    for s in &mut series {
        s.instances = sqlx::query_as(
            "SELECT id, sop_instance_uid, instance_number, format, rows, columns, frames FROM instances \
             WHERE series_id = $1 ORDER BY instance_number, id",
        )
        .bind(s.id)
        .fetch_all(&state.db)
        .await?;
    }
    Ok(Json(StudyDetail { summary, series }))
}
