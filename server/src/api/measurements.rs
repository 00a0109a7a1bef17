//! The viewer's measurements saved with a study (`/api/v1/studies/{id}/measurements`,
//! `/api/v1/measurements/{id}`). The browser sends the shape it drew; the server measures it again with
//! the same code ([`measure::shape::measure_shape`]) on the stored image, so what is saved does not rest on
//! numbers a client sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use measure::roi::Frame;
use measure::shape::{Outcome, Shape, measure_shape};
use serde::{Deserialize, Serialize};

use super::images::{SpacingBasis, decoded, frame_index, load_row};
use crate::auth::{Actor, Principal};
use crate::error::AppError;
use crate::http::AppState;

/// The window on screen when the shape was drawn: part of the measurement's basis.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShownWindow {
    center: f64,
    width: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMeasurement {
    instance_id: i64,
    /// 1-based; the first frame when left out.
    frame: Option<usize>,
    shape: Shape,
    window: Option<ShownWindow>,
    label: Option<String>,
}

#[derive(Serialize)]
pub struct Measurement {
    id: i64,
    study_id: i64,
    instance_id: i64,
    frame: i64,
    shape: Shape,
    outcome: Outcome,
    basis: Basis,
    /// The measured image's size in pixels (to compare positions across images).
    image: ImageSize,
    label: Option<String>,
    created_by: String,
    created_at: String,
}

#[derive(Serialize)]
struct ImageSize {
    columns: u32,
    rows: u32,
}

/// What the numbers rest on, printed beside them.
#[derive(Serialize)]
struct Basis {
    /// Null when the image has no pixel spacing (the numbers are then in pixels).
    spacing: Option<SpacingBasis>,
    window: Option<ShownWindow>,
    /// "HU" on CT, else the modality's raw units (ellipse statistics).
    units: &'static str,
}

#[derive(Serialize)]
pub struct MeasurementList {
    measurements: Vec<Measurement>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    study_id: i64,
    instance_id: i64,
    frame: i64,
    shape: String,
    outcome: String,
    window_center: Option<f64>,
    window_width: Option<f64>,
    label: Option<String>,
    created_by: String,
    created_at: String,
    modality: Option<String>,
    metadata: String,
}

const SELECT: &str = "SELECT m.id, m.study_id, m.instance_id, m.frame, m.shape, m.outcome, m.window_center, \
     m.window_width, m.label, m.created_by, m.created_at, se.modality, i.metadata FROM measurements m \
     JOIN instances i ON i.id = m.instance_id JOIN series se ON se.id = i.series_id";

fn units(modality: Option<&str>) -> &'static str {
    if modality == Some("CT") { "HU" } else { "raw" }
}

impl TryFrom<Row> for Measurement {
    type Error = AppError;

    fn try_from(row: Row) -> Result<Measurement, AppError> {
        let info: imaging::dicom::DicomInfo = serde_json::from_str(&row.metadata).map_err(anyhow::Error::from)?;
        Ok(Measurement {
            id: row.id,
            study_id: row.study_id,
            instance_id: row.instance_id,
            frame: row.frame,
            shape: serde_json::from_str(&row.shape).map_err(anyhow::Error::from)?,
            outcome: serde_json::from_str(&row.outcome).map_err(anyhow::Error::from)?,
            basis: Basis {
                spacing: info.spacing().map(SpacingBasis::from),
                window: row.window_center.zip(row.window_width).map(|(center, width)| ShownWindow { center, width }),
                units: units(row.modality.as_deref()),
            },
            image: ImageSize { columns: info.columns, rows: info.rows },
            label: row.label,
            created_by: row.created_by,
            created_at: row.created_at,
        })
    }
}

fn actor_name(caller: &Principal) -> String {
    match &caller.actor {
        Actor::User { username, .. } => username.clone(),
        Actor::Token { name, .. } => format!("token:{name}"),
    }
}

pub async fn list(State(state): State<AppState>, Path(study_id): Path<i64>) -> Result<Json<MeasurementList>, AppError> {
    super::studies::require(&state, study_id).await?;
    let rows: Vec<Row> =
        sqlx::query_as(&format!("{SELECT} WHERE m.study_id = $1 AND m.deleted_at IS NULL ORDER BY m.id"))
            .bind(study_id)
            .fetch_all(&state.db)
            .await?;
    let measurements = rows.into_iter().map(Measurement::try_from).collect::<Result<_, _>>()?;
    Ok(Json(MeasurementList { measurements }))
}

/// Longest label kept (a measurement's name, such as "右肺上叶结节").
const MAX_LABEL_CHARS: usize = 200;

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(study_id): Path<i64>,
    Json(body): Json<NewMeasurement>,
) -> Result<Response, AppError> {
    let row = load_row(&state, body.instance_id).await?;
    if row.study_id != study_id {
        return Err(AppError::bad_request("该图像不属于这个检查", "the image belongs to another study"));
    }
    let label = body.label.map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS) {
        return Err(AppError::bad_request(
            format!("标注过长（最多 {MAX_LABEL_CHARS} 字）"),
            format!("label longer than {MAX_LABEL_CHARS} characters"),
        ));
    }
    if body.window.is_some_and(|w| !(w.center.is_finite() && w.width.is_finite() && w.width > 0.0)) {
        return Err(AppError::bad_request("窗宽窗位无效", "invalid window"));
    }
    let number = body.frame.unwrap_or(1);
    let image = decoded(&state, body.instance_id).await?;
    let frame = frame_index(&image.frames, number)?;
    let (columns, rows) = (image.frames.columns, image.frames.rows);
    let spacing = image.info.spacing();
    let shape = body.shape;
    let outcome = tokio::task::spawn_blocking(move || {
        let values = image.frames.gray_frame(frame).map(|values| Frame { values, columns, rows });
        measure_shape(&shape, spacing.as_ref(), columns, rows, values.as_ref())
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(|e| AppError::Rejected {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "bad_shape",
        zh: e.message_zh().into(),
        en: e.message_en().into(),
    })?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO measurements (study_id, instance_id, frame, shape, outcome, window_center, window_width, \
         label, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(study_id)
    .bind(body.instance_id)
    .bind(number as i64)
    .bind(serde_json::to_string(&shape).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_string(&outcome).map_err(anyhow::Error::from)?)
    .bind(body.window.map(|w| w.center))
    .bind(body.window.map(|w| w.width))
    .bind(label)
    .bind(actor_name(&caller))
    .bind(crate::serve::now_rfc3339())
    .fetch_one(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(one(&state, id).await?)).into_response())
}

async fn one(state: &AppState, id: i64) -> Result<Measurement, AppError> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE m.id = $1 AND m.deleted_at IS NULL"))
        .bind(id)
        .fetch_optional(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("没有这个测量", "No such measurement"))?;
    Measurement::try_from(row)
}

/// Removes a measurement from the study; the row stays, marked deleted, for the audit trail.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let done =
        sqlx::query("UPDATE measurements SET deleted_by = $1, deleted_at = $2 WHERE id = $3 AND deleted_at IS NULL")
            .bind(actor_name(&caller))
            .bind(crate::serve::now_rfc3339())
            .bind(id)
            .execute(&state.db)
            .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("没有这个测量", "No such measurement"));
    }
    Ok(StatusCode::NO_CONTENT)
}
