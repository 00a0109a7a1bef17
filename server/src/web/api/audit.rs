//! The audit trail for administrators (`/api/v1/audit`): newest first as JSON, or CSV for a spreadsheet;
//! and the chain check.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::audit;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ApiQuery;

/// `?from=&to=&patient_ref=&limit=&format=json|csv` (serde's flatten cannot read numbers from a query
/// string, so the fields are spelled out).
#[derive(Deserialize)]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    patient_ref: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

pub async fn export(State(state): State<AppState>, ApiQuery(q): ApiQuery<ExportQuery>) -> Result<Response, AppError> {
    let query = audit::Query { from: q.from, to: q.to, patient_ref: q.patient_ref, limit: q.limit };
    let rows = audit::rows(&state.db, &query).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(rows).into_response()),
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
            ],
            audit::to_csv(&rows),
        )
            .into_response()),
        other => {
            Err(AppError::bad_request(format!("不支持的格式 {other}"), format!("unknown format {other}: json or csv")))
        }
    }
}

pub async fn verify(State(state): State<AppState>) -> Result<Json<audit::Verification>, AppError> {
    Ok(Json(audit::verify(&state.db).await?))
}
