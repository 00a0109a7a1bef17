//! The worklist (`GET /studies`), a study's series and instances (`GET /studies/{id}`), the
//! radiologist's decision on a study's AI triage flag (`POST /studies/{id}/triage`), and the patient's
//! earlier studies on the PACS (`GET /studies/{id}/pacs-priors`, `POST …/pacs-priors/retrieve`).

use app::studies::{StudyDetail, StudyList};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;

use super::noted;
use crate::domain::DomainError;
use crate::domain::auth::Principal;
use crate::domain::pacs_query::{self, RemoteStudy, Retrieved};
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

/// The patient's other studies on the PACS (C-FIND by the study's Patient ID).
pub async fn pacs_priors(
    State(state): State<AppState>,
    ApiPath(study_id): ApiPath<i64>,
) -> Result<Json<Vec<RemoteStudy>>, AppError> {
    Ok(Json(pacs_query::priors_of(&state.db, &our_ae_title(&state)?, study_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// The peer that holds it (as `pacs-priors` answered).
    peer: String,
    study_uid: String,
}

/// Has the PACS send one of those studies here (C-MOVE); answers once it is stored, with its id.
pub async fn retrieve_prior(
    State(state): State<AppState>,
    ApiPath(study_id): ApiPath<i64>,
    ApiJson(body): ApiJson<RetrieveRequest>,
) -> Result<Response, AppError> {
    require(&state, study_id).await?;
    let moved: Retrieved = pacs_query::retrieve(&state.db, &our_ae_title(&state)?, &body.peer, &body.study_uid).await?;
    let detail = format!(
        "dicom.move peer={} completed={} failed={} prior_of={study_id}",
        body.peer.trim(),
        moved.completed,
        moved.failed
    );
    Ok(noted(Json(moved), detail))
}

/// Our AE title, while the DICOM listener runs (a retrieved study arrives there).
fn our_ae_title(state: &AppState) -> Result<String, DomainError> {
    let status = state.dicom.snapshot();
    match status.listening {
        Some(_) => Ok(status.ae_title),
        None => Err(DomainError::Unavailable {
            zh: "DICOM 服务未开启（--dicom-bind），无法向 PACS 查询或调取".into(),
            en: "the DICOM listener is off (--dicom-bind): the PACS cannot be asked".into(),
        }),
    }
}
