//! One instance: its metadata with the measurement basis, rendered frames, raw modality values for
//! client-side windowing and the HU probe, automatic nodule measurement, and the original file.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use measure::window::Window;
use serde::Deserialize;

use crate::domain::instances::{self, InstanceDetail, NoduleClick, NoduleResult, RenderRequest};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath, ApiQuery};

pub async fn instance(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InstanceDetail>, AppError> {
    Ok(Json(instances::detail(instances::load(&state.db, id).await?)?))
}

#[derive(Deserialize)]
pub struct RenderQuery {
    window_center: Option<f64>,
    window_width: Option<f64>,
    #[serde(default)]
    invert: bool,
    /// Longest side of the PNG, at most 4096 (the default keeps the original size up to that).
    max_side: Option<u32>,
}

pub async fn render(
    State(state): State<AppState>,
    ApiPath((id, number)): ApiPath<(i64, usize)>,
    ApiQuery(q): ApiQuery<RenderQuery>,
) -> Result<Response, AppError> {
    let decoded = instances::decoded_by_id(&state.db, &state.images, id).await?;
    let request = RenderRequest {
        window_center: q.window_center,
        window_width: q.window_width,
        invert: q.invert,
        max_side: q.max_side,
    };
    let rendered = instances::render(decoded, number, request).await?;
    let mut response = ([(header::CONTENT_TYPE, "image/png")], rendered.png).into_response();
    // The window actually applied: the basis the viewer prints beside what it shows.
    insert_window(response.headers_mut(), rendered.window);
    Ok(response)
}

/// Raw samples of one frame: little-endian, row-major, with `x-rows`, `x-columns` and `x-sample-format`
/// (`i16`, `f32` or `rgb8`) headers. Greyscale frames also carry the window the server would render with
/// (`x-window-center`, `x-window-width`) and `x-inverted` (MONOCHROME1), so both draw alike.
pub async fn values(
    State(state): State<AppState>,
    ApiPath((id, number)): ApiPath<(i64, usize)>,
) -> Result<Response, AppError> {
    let decoded = instances::decoded_by_id(&state.db, &state.images, id).await?;
    let values = instances::values(decoded, number).await?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::HeaderName::from_static("x-rows"), values.rows.to_string()),
            (header::HeaderName::from_static("x-columns"), values.columns.to_string()),
            (header::HeaderName::from_static("x-sample-format"), values.format.to_string()),
            (header::HeaderName::from_static("x-inverted"), values.inverted.to_string()),
        ],
        values.bytes,
    )
        .into_response();
    insert_window(response.headers_mut(), values.default_window);
    Ok(response)
}

fn insert_window(headers: &mut HeaderMap, window: Option<Window>) {
    if let Some(w) = window {
        let number = |v: f64| HeaderValue::from_str(&v.to_string()).expect("a number is a header value");
        headers.insert("x-window-center", number(w.center));
        headers.insert("x-window-width", number(w.width));
    }
}

#[derive(Deserialize)]
pub struct NoduleRequest {
    /// The click, in image pixels (x along the row, y down).
    x: f64,
    y: f64,
    max_radius_mm: Option<f64>,
    /// A fixed threshold in modality units instead of the half-maximum level.
    threshold: Option<f64>,
}

pub async fn nodule(
    State(state): State<AppState>,
    ApiPath((id, number)): ApiPath<(i64, usize)>,
    ApiJson(request): ApiJson<NoduleRequest>,
) -> Result<Json<NoduleResult>, AppError> {
    let decoded = instances::decoded_by_id(&state.db, &state.images, id).await?;
    let click =
        NoduleClick { x: request.x, y: request.y, max_radius_mm: request.max_radius_mm, threshold: request.threshold };
    Ok(Json(instances::nodule(&state.images, decoded, number, click).await?))
}

/// The stored file (DICOM with its preamble zeroed, or the JPEG/PNG as uploaded).
pub async fn original_file(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    let row = instances::load(&state.db, id).await?;
    let (bytes, mime, ext) = instances::original_file(&state.images, &row).await?;
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"instance-{id}.{ext}\"")),
        ],
        Body::from(bytes),
    )
        .into_response())
}
