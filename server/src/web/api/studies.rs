//! The worklist (`GET /studies`), a study's series and instances (`GET /studies/{id}`), and the
//! radiologist's decision on a study's AI triage flag (`POST /studies/{id}/triage`).

use app::studies::{StudyDetail, StudyList};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;

use super::noted;
use crate::domain::auth::Principal;
use crate::domain::triage::{self, Decision};
use crate::store::studies::{self, WorklistQuery};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Deserialize)]
pub struct ListQuery {
    /// Part of a patient name, patient ID or accession number.
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<StudyList>, AppError> {
    let query = WorklistQuery {
        search: query.q,
        limit: query.limit.unwrap_or(50).clamp(1, 500),
        offset: query.offset.unwrap_or(0).max(0),
    };
    Ok(Json(state.pre_reads.worklist(&state.db, &query).await?))
}

pub async fn detail(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Json<StudyDetail>, AppError> {
    studies::detail(&state.db, id).await?.map(Json).ok_or_else(no_such_study)
}

/// 404 unless the study exists: for routes that act on a study's reports or measurements.
pub(super) async fn require(state: &AppState, study_id: i64) -> Result<(), AppError> {
    if studies::exists(&state.db, study_id).await? { Ok(()) } else { Err(no_such_study()) }
}

pub(super) fn no_such_study() -> AppError {
    AppError::not_found("没有这个检查", "No such study")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageDecision {
    decision: Decision,
}

/// Confirms or dismisses the AI's triage flag (a dismissed urgent flag no longer puts the study first).
pub async fn decide_triage(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(study_id): ApiPath<i64>,
    ApiJson(body): ApiJson<TriageDecision>,
) -> Result<Response, AppError> {
    triage::decide(&state.db, study_id, body.decision, &caller.author()).await?;
    Ok(noted(StatusCode::NO_CONTENT, format!("triage.{} study={study_id}", body.decision.as_str())))
}
