//! One instance: its metadata with the measurement basis, rendered frames, raw modality values for
//! client-side windowing and the HU probe, automatic nodule measurement, and the original file.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use imaging::render::RenderOptions;
use imaging::{Frames, Samples};
use measure::Point;
use measure::roi::Frame;
use measure::segment::{SegmentOptions, Segmentation, segment_nodule};
use measure::window::{CHEST_PRESETS, Preset, Window};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::http::AppState;
use crate::images::{Decoded, StoredInstance};

#[derive(sqlx::FromRow)]
pub(super) struct InstanceRow {
    id: i64,
    series_id: i64,
    pub(super) study_id: i64,
    format: String,
    object_sha256: String,
    object_bytes: i64,
    metadata: String,
}

pub(super) async fn load_row(state: &AppState, id: i64) -> Result<InstanceRow, AppError> {
    sqlx::query_as(
        "SELECT instances.id, instances.series_id, series.study_id, instances.format, instances.object_sha256, \
         instances.object_bytes, instances.metadata FROM instances JOIN series ON series.id = instances.series_id \
         WHERE instances.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found("没有这个图像", "No such image"))
}

fn stored(row: &InstanceRow) -> Result<StoredInstance, AppError> {
    Ok(StoredInstance {
        id: row.id,
        format: row.format.clone(),
        object_sha256: row.object_sha256.clone(),
        info: serde_json::from_str(&row.metadata).map_err(anyhow::Error::from)?,
    })
}

/// Decodes off the async runtime (a 3000×3000 radiograph takes tens of milliseconds).
pub(super) async fn decoded(state: &AppState, id: i64) -> Result<Arc<Decoded>, AppError> {
    let row = load_row(state, id).await?;
    let stored = stored(&row)?;
    let images = Arc::clone(&state.images);
    Ok(tokio::task::spawn_blocking(move || images.decoded(stored)).await.map_err(anyhow::Error::from)???)
}

/// 1-based frame number (as DICOMweb counts) to an index.
pub(super) fn frame_index(frames: &Frames, number: usize) -> Result<usize, AppError> {
    if number == 0 || number > frames.count {
        return Err(AppError::not_found(
            format!("没有第 {number} 帧（共 {} 帧）", frames.count),
            format!("no frame {number} (the image has {})", frames.count),
        ));
    }
    Ok(number - 1)
}

#[derive(Serialize)]
pub struct InstanceDetail {
    id: i64,
    series_id: i64,
    study_id: i64,
    format: String,
    object_bytes: i64,
    metadata: imaging::dicom::DicomInfo,
    /// The basis of every millimetre shown for this image; null when the image has no spacing.
    spacing: Option<SpacingBasis>,
    /// Windows offered: the file's own first, then the chest presets on CT (HU).
    windows: Vec<WindowChoice>,
}

/// Pixel spacing as the basis of millimetres: the numbers, where they came from, and the caveat to print.
#[derive(Serialize)]
pub(super) struct SpacingBasis {
    row_mm: f64,
    col_mm: f64,
    source: measure::SpacingSource,
    caveat_zh: Option<&'static str>,
    caveat_en: Option<&'static str>,
}

impl From<measure::Spacing> for SpacingBasis {
    fn from(s: measure::Spacing) -> SpacingBasis {
        SpacingBasis {
            row_mm: s.row_mm,
            col_mm: s.col_mm,
            source: s.source,
            caveat_zh: s.source.caveat_zh(),
            caveat_en: s.source.caveat_en(),
        }
    }
}

#[derive(Serialize)]
struct WindowChoice {
    key: String,
    name_zh: String,
    name_en: String,
    center: f64,
    width: f64,
}

pub async fn instance(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<InstanceDetail>, AppError> {
    let row = load_row(&state, id).await?;
    let info: imaging::dicom::DicomInfo = serde_json::from_str(&row.metadata).map_err(anyhow::Error::from)?;
    let spacing = info.spacing().map(SpacingBasis::from);
    let mut windows: Vec<WindowChoice> = info
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| WindowChoice {
            key: format!("file-{}", i + 1),
            name_zh: w.explanation.clone().unwrap_or_else(|| format!("文件窗 {}", i + 1)),
            name_en: w.explanation.clone().unwrap_or_else(|| format!("File window {}", i + 1)),
            center: w.center,
            width: w.width,
        })
        .collect();
    if info.modality.as_deref() == Some("CT") {
        windows.extend(CHEST_PRESETS.iter().map(|p: &Preset| WindowChoice {
            key: p.key.into(),
            name_zh: p.name_zh.into(),
            name_en: p.name_en.into(),
            center: p.window.center,
            width: p.window.width,
        }));
    }
    Ok(Json(InstanceDetail {
        id: row.id,
        series_id: row.series_id,
        study_id: row.study_id,
        format: row.format,
        object_bytes: row.object_bytes,
        metadata: info,
        spacing,
        windows,
    }))
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

/// Largest PNG side the server renders; the viewer windows full-resolution values itself.
const MAX_RENDER_SIDE: u32 = 4096;

pub async fn render(
    State(state): State<AppState>,
    Path((id, number)): Path<(i64, usize)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, AppError> {
    let decoded = decoded(&state, id).await?;
    let frame = frame_index(&decoded.frames, number)?;
    let window = match (q.window_center, q.window_width) {
        (Some(center), Some(width)) if center.is_finite() && width.is_finite() && width >= 1.0 => {
            Some(Window { center, width })
        }
        (None, None) => None,
        _ => {
            return Err(AppError::bad_request(
                "窗位/窗宽须同时给出，窗宽 ≥ 1",
                "window_center and window_width go together, width ≥ 1",
            ));
        }
    };
    let options = RenderOptions {
        frame,
        window,
        invert: q.invert,
        max_side: Some(q.max_side.unwrap_or(MAX_RENDER_SIDE).clamp(16, MAX_RENDER_SIDE)),
    };
    let windows = decoded.info.file_windows();
    let gray = matches!(decoded.frames.samples, Samples::Gray(_));
    let used = window.or_else(|| imaging::render::default_window(&decoded.frames, frame, &windows));
    let png = tokio::task::spawn_blocking(move || {
        imaging::render::to_8bit(&decoded.frames, &options, &windows).map(|img| imaging::render::png(&img))
    })
    .await
    .map_err(anyhow::Error::from)??;
    let mut response = ([(header::CONTENT_TYPE, "image/png")], png).into_response();
    // The window actually applied: the basis the viewer prints beside what it shows.
    if let (Some(w), true) = (used, gray) {
        let headers = response.headers_mut();
        headers.insert("x-window-center", w.center.to_string().parse().expect("a number is a header value"));
        headers.insert("x-window-width", w.width.to_string().parse().expect("a number is a header value"));
    }
    Ok(response)
}

/// Raw samples of one frame for client-side windowing and the HU probe: little-endian, row-major, with
/// `x-rows`, `x-columns` and `x-sample-format` headers. `i16` when every modality value is a whole number
/// in range (CT in HU, most radiographs: half the bytes of f32), `f32` otherwise, `rgb8` for colour.
/// Greyscale frames also carry the window the server would render with (`x-window-center`,
/// `x-window-width`) and `x-inverted` (MONOCHROME1: higher values darker), so both draw alike.
pub async fn values(
    State(state): State<AppState>,
    Path((id, number)): Path<(i64, usize)>,
) -> Result<Response, AppError> {
    let decoded = decoded(&state, id).await?;
    let frame = frame_index(&decoded.frames, number)?;
    let (rows, columns) = (decoded.frames.rows, decoded.frames.columns);
    let default_window = imaging::render::default_window(&decoded.frames, frame, &decoded.info.file_windows());
    let inverted = decoded.frames.inverted;
    let (format, body) = tokio::task::spawn_blocking(move || match &decoded.frames.samples {
        Samples::Gray(_) => {
            let v = decoded.frames.gray_frame(frame).expect("frame index checked");
            if v.iter().all(|x| x.fract() == 0.0 && (-32768.0..=32767.0).contains(x)) {
                ("i16", v.iter().flat_map(|x| (*x as i16).to_le_bytes()).collect::<Vec<u8>>())
            } else {
                ("f32", v.iter().flat_map(|x| x.to_le_bytes()).collect())
            }
        }
        Samples::Rgb(_) => ("rgb8", decoded.frames.rgb_frame(frame).expect("frame index checked").to_vec()),
    })
    .await
    .map_err(anyhow::Error::from)?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::HeaderName::from_static("x-rows"), rows.to_string()),
            (header::HeaderName::from_static("x-columns"), columns.to_string()),
            (header::HeaderName::from_static("x-sample-format"), format.to_string()),
            (header::HeaderName::from_static("x-inverted"), inverted.to_string()),
        ],
        body,
    )
        .into_response();
    if let (Some(w), false) = (default_window, format == "rgb8") {
        let headers = response.headers_mut();
        headers.insert("x-window-center", w.center.to_string().parse().expect("a number is a header value"));
        headers.insert("x-window-width", w.width.to_string().parse().expect("a number is a header value"));
    }
    Ok(response)
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

#[derive(Serialize)]
pub struct NoduleResult {
    #[serde(flatten)]
    segmentation: Segmentation,
    /// Mean diameter as Lung-RADS v2022 reports it (one decimal).
    mean_diameter_mm: f64,
    basis: MeasurementBasis,
}

/// What a measurement rests on, printed beside it in the viewer and the report.
#[derive(Serialize)]
struct MeasurementBasis {
    spacing: SpacingBasis,
    /// "HU" on CT, else the modality's raw units.
    units: &'static str,
    method_zh: String,
    method_en: String,
}

pub async fn nodule(
    State(state): State<AppState>,
    Path((id, number)): Path<(i64, usize)>,
    Json(request): Json<NoduleRequest>,
) -> Result<Json<NoduleResult>, AppError> {
    let decoded = decoded(&state, id).await?;
    let frame = frame_index(&decoded.frames, number)?;
    let spacing = decoded.info.spacing().ok_or_else(|| {
        AppError::bad_request(
            "该图像没有像素间距，无法以毫米测量",
            "the image has no pixel spacing: no millimetre measurement",
        )
    })?;
    let Some(values) = decoded.frames.gray_frame(frame) else {
        return Err(AppError::bad_request("彩色图像不支持自动测量", "automatic measurement needs a greyscale image"));
    };
    let max_radius_mm = request.max_radius_mm.unwrap_or(30.0);
    if !(request.x.is_finite() && request.y.is_finite() && (1.0..=60.0).contains(&max_radius_mm)) {
        return Err(AppError::bad_request(
            "参数无效：坐标须为数字，最大半径 1–60 毫米",
            "invalid point, or max_radius_mm outside 1–60",
        ));
    }
    let options = SegmentOptions { max_radius_mm, threshold: request.threshold.filter(|t| t.is_finite()) };
    let frame_view = Frame { values, columns: decoded.frames.columns, rows: decoded.frames.rows };
    let segmentation =
        segment_nodule(&frame_view, Point::new(request.x, request.y), &spacing, &options).map_err(|e| {
            AppError::Rejected {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                code: "no_nodule",
                zh: e.message_zh().into(),
                en: e.message_en().into(),
            }
        })?;
    let ct = decoded.info.modality.as_deref() == Some("CT");
    let units = if ct { "HU" } else { "raw" };
    let mean_diameter_mm =
        guidelines::round1(measure::mean_diameter(segmentation.axes.long_axis_mm, segmentation.axes.short_axis_mm));
    let basis = MeasurementBasis {
        spacing: spacing.into(),
        units,
        method_zh: format!(
            "自种子点区域生长，阈值 {:.0}{units}（结节 {:.0} 与背景 {:.0} 的中点）",
            segmentation.threshold, segmentation.seed_level, segmentation.background_level
        ),
        method_en: format!(
            "region growing from the seed at {:.0} {units} (half-way between nodule {:.0} and background {:.0})",
            segmentation.threshold, segmentation.seed_level, segmentation.background_level
        ),
    };
    Ok(Json(NoduleResult { segmentation, mean_diameter_mm, basis }))
}

/// The stored file (DICOM with its preamble zeroed, or the JPEG/PNG as uploaded).
pub async fn original_file(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let row = load_row(&state, id).await?;
    let images = Arc::clone(&state.images);
    let sha = row.object_sha256.clone();
    let bytes = tokio::task::spawn_blocking(move || images.objects.read(&sha)).await.map_err(anyhow::Error::from)??;
    let (mime, ext) = match row.format.as_str() {
        "dicom" => ("application/dicom", "dcm"),
        "jpeg" => ("image/jpeg", "jpg"),
        _ => ("image/png", "png"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"instance-{id}.{ext}\"")),
        ],
        Body::from(bytes),
    )
        .into_response())
}
