//! Reports and their workflow over HTTP (`/api/v1/studies/{id}/reports`, `/api/v1/reports/{id}/…`); the
//! rules live in [`crate::domain::reports`].

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::noted;
use crate::domain::auth::{Actor as Caller, Principal};
use crate::domain::exports::{self, Format, Hl7Site};
use crate::domain::reports::{self, Actor, WorkflowError};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath, ApiQuery};

impl From<WorkflowError> for AppError {
    fn from(e: WorkflowError) -> AppError {
        match e {
            WorkflowError::NotFound => AppError::not_found("没有这个报告", "No such report"),
            WorkflowError::Conflict { zh, en } => {
                AppError::Rejected { status: StatusCode::CONFLICT, code: "conflict", zh, en }
            }
            WorkflowError::Invalid { zh, en } => AppError::BadRequest { zh, en },
            WorkflowError::NotYours { zh, en } => AppError::Forbidden { code: "not_owner", zh, en },
            WorkflowError::Other(e) => AppError::Internal(e),
        }
    }
}

/// Reports are written and signed by people; a token's permissions never include these steps, and this
/// says so if a route ever let one through.
fn actor(caller: &Principal) -> Result<Actor, AppError> {
    match &caller.actor {
        Caller::User { id, username, display_name } => Ok(Actor {
            user_id: *id,
            username: username.clone(),
            display_name: display_name.clone(),
            role: caller.role,
        }),
        Caller::Token { .. } => Err(AppError::Forbidden {
            code: "forbidden",
            zh: "报告须由医师本人签发".into(),
            en: "reports are written and signed by people, not tokens".into(),
        }),
    }
}

pub async fn for_study(State(state): State<AppState>, ApiPath(study_id): ApiPath<i64>) -> Result<Response, AppError> {
    Ok(Json(reports::for_study(&state.db, study_id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    report: report::Report,
    /// The model's draft this report starts from (the `report` of a `report_draft` answer), kept so the
    /// reviewer sees what people changed after it.
    ai_draft: Option<report::Report>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(study_id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewReport>,
) -> Result<Response, AppError> {
    super::studies::require(&state, study_id).await?;
    let id = reports::create(&state.db, study_id, &actor(&caller)?, body.report, body.ai_draft).await?;
    let view = reports::view(&state.db, id).await?;
    Ok(noted((StatusCode::CREATED, Json(view)), format!("report.create id={id}")))
}

pub async fn show(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    Ok(Json(reports::view(&state.db, id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    report: report::Report,
}

pub async fn edit(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Edit>,
) -> Result<Response, AppError> {
    reports::edit(&state.db, id, &actor(&caller)?, body.report).await?;
    Ok(noted(Json(reports::view(&state.db, id).await?), format!("report.edit id={id}")))
}

pub async fn sign(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, AppError> {
    reports::sign(&state.db, id, &actor(&caller)?, &state.deliveries).await?;
    state.delivery_wake.notify_one();
    let view = reports::view(&state.db, id).await?;
    state.pre_reads.cancel(view.study_id);
    let detail = format!("report.sign id={id} sha256={}", view.content_sha256.as_deref().unwrap_or(""));
    Ok(noted(Json(view), detail))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Decision {
    Countersign,
    Return,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    decision: Decision,
    comment: Option<String>,
}

pub async fn review(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Review>,
) -> Result<Response, AppError> {
    let countersign = matches!(body.decision, Decision::Countersign);
    reports::review(&state.db, id, &actor(&caller)?, countersign, body.comment.as_deref(), &state.deliveries).await?;
    state.delivery_wake.notify_one();
    let action = if countersign { "countersign" } else { "return" };
    Ok(noted(Json(reports::view(&state.db, id).await?), format!("report.{action} id={id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    report: report::Report,
    reason: String,
}

pub async fn amend(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Amend>,
) -> Result<Response, AppError> {
    let new_id = reports::amend(&state.db, id, &actor(&caller)?, body.report, &body.reason).await?;
    let view = reports::view(&state.db, new_id).await?;
    Ok(noted((StatusCode::CREATED, Json(view)), format!("report.amend id={id} → id={new_id}")))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Format,
}

/// The report as a file. HL7, FHIR and PDF go to the hospital's systems and to paper: only signed
/// versions; JSON also for drafts.
pub async fn export(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let view = reports::view(&state.db, id).await?;
    let signed = matches!(view.state.as_str(), "signed" | "reviewed" | "superseded");
    if q.format != Format::Json && !signed {
        return Err(AppError::Rejected {
            status: StatusCode::CONFLICT,
            code: "not_signed",
            zh: "报告尚未签发，只能导出 JSON".into(),
            en: "the report is not signed yet: only JSON can be exported".into(),
        });
    }
    let format = q.format;
    let report = view.report.clone();
    let key_images = match format {
        Format::Pdf => crate::domain::key_images::for_report(&state.db, &state.images, view.study_id, &report).await,
        _ => Vec::new(),
    };
    let bytes =
        tokio::task::spawn_blocking(move || exports::render(&report, format, &Hl7Site::default(), None, &key_images))
            .await
            .map_err(anyhow::Error::from)??;
    let file_name = format!("report-{}-v{}.{}", id, view.version, format.extension());
    let response = (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        bytes,
    );
    Ok(noted(response, format!("report.export id={id} format={}", format.extension())))
}

#[derive(Deserialize)]
pub struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// The outbox, newest first (for monitoring: pending and failed deliveries are what needs a look).
pub async fn deliveries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Vec<crate::domain::deliveries::Delivery>>, AppError> {
    Ok(Json(crate::domain::deliveries::list(&state.db, q.state.as_deref(), q.limit.unwrap_or(100)).await?))
}

pub async fn retry_delivery(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    if !crate::domain::deliveries::retry(&state.db, id).await? {
        return Err(AppError::not_found("没有这个失败的投递", "no failed delivery with that id"));
    }
    state.delivery_wake.notify_one();
    Ok(noted(Json(serde_json::json!({"retrying": id})), format!("delivery.retry id={id}")))
}
