//! The worklist (`GET /studies`) and a study's series and instances (`GET /studies/{id}`).

use app::studies::{StudyDetail, StudyList};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::store::studies::{self, WorklistQuery};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiPath, ApiQuery};

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
