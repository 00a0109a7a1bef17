//! The viewer's measurements saved with a study (`/api/v1/studies/{id}/measurements`,
//! `/api/v1/measurements/{id}`); the rules are domain::measurements.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use crate::domain::auth::Principal;
use crate::domain::measurements::{self, Measurement, NewMeasurement};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath};

#[derive(Serialize)]
pub struct MeasurementList {
    measurements: Vec<Measurement>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiPath(study_id): ApiPath<i64>,
) -> Result<Json<MeasurementList>, AppError> {
    super::studies::require(&state, study_id).await?;
    Ok(Json(MeasurementList { measurements: measurements::for_study(&state.db, study_id).await? }))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(study_id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewMeasurement>,
) -> Result<Response, AppError> {
    let created = measurements::create(&state.db, &state.images, study_id, &caller.author(), body).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Removes a measurement from the study; the row stays, marked deleted, for the audit trail.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    measurements::delete(&state.db, id, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
