//! One stored instance as the viewer, the chat and the measurements read it: its metadata with the
//! measurement basis and the windows offered, a frame rendered or as raw modality values, automatic
//! nodule measurement from a click, and the original file. Decoding runs off the async threads.

use std::sync::Arc;

use imaging::Frames;
use imaging::Samples;
use imaging::render::RenderOptions;
use measure::Point;
use measure::roi::Frame;
use measure::segment::{SegmentOptions, Segmentation, segment_nodule};
use measure::window::{CHEST_PRESETS, Window};
use serde::Serialize;

use crate::domain::DomainError;
use crate::domain::images::{Decoded, Images, StoredInstance};
use crate::store::db::Pool;
use crate::store::studies::{self, InstanceRow};

/// Largest PNG side the server renders; the viewer windows full-resolution values itself.
pub const MAX_RENDER_SIDE: u32 = 4096;

/// The instance's row, or 404.
pub async fn load(pool: &Pool, id: i64) -> Result<InstanceRow, DomainError> {
    studies::instance(pool, id).await?.ok_or_else(|| DomainError::not_found("没有这个图像", "No such image"))
}

fn info(row: &InstanceRow) -> Result<imaging::dicom::DicomInfo, DomainError> {
    Ok(serde_json::from_str(&row.metadata).map_err(anyhow::Error::from)?)
}

/// Decodes off the async runtime (a 3000×3000 radiograph takes tens of milliseconds), or takes the
/// decoded frames from the cache.
pub async fn decoded(images: &Arc<Images>, row: &InstanceRow) -> Result<Arc<Decoded>, DomainError> {
    let stored = StoredInstance {
        id: row.id,
        format: row.format.clone(),
        object_sha256: row.object_sha256.clone(),
        info: info(row)?,
    };
    let images = Arc::clone(images);
    Ok(tokio::task::spawn_blocking(move || images.decoded(stored)).await???)
}

/// [`load`] then [`decoded`].
pub async fn decoded_by_id(pool: &Pool, images: &Arc<Images>, id: i64) -> Result<Arc<Decoded>, DomainError> {
    decoded(images, &load(pool, id).await?).await
}

/// 1-based frame number (as DICOMweb counts) to an index.
pub fn frame_index(frames: &Frames, number: usize) -> Result<usize, DomainError> {
    if number == 0 || number > frames.count {
        return Err(DomainError::not_found(
            format!("没有第 {number} 帧（共 {} 帧）", frames.count),
            format!("no frame {number} (the image has {})", frames.count),
        ));
    }
    Ok(number - 1)
}

/// `GET /instances/{id}`: where it belongs, its metadata, the basis of its millimetres and its windows.
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
pub struct SpacingBasis {
    row_mm: f64,
    col_mm: f64,
    source: measure::SpacingSource,
    caveat_zh: Option<&'static str>,
    caveat_en: Option<&'static str>,
}

impl SpacingBasis {
    /// "像素间距 0.150 × 0.150 毫米（像素间距由上传者提供）", as a report draft's basis says it.
    pub fn describe_zh(&self) -> String {
        let caveat = self.caveat_zh.map(|c| format!("，{c}")).unwrap_or_default();
        format!("像素间距 {:.3} × {:.3} 毫米{caveat}", self.row_mm, self.col_mm)
    }
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

pub fn detail(row: InstanceRow) -> Result<InstanceDetail, DomainError> {
    let info = info(&row)?;
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
        windows.extend(CHEST_PRESETS.iter().map(|p| WindowChoice {
            key: p.key.into(),
            name_zh: p.name_zh.into(),
            name_en: p.name_en.into(),
            center: p.window.center,
            width: p.window.width,
        }));
    }
    Ok(InstanceDetail {
        id: row.id,
        series_id: row.series_id,
        study_id: row.study_id,
        format: row.format,
        object_bytes: row.object_bytes,
        metadata: info,
        spacing,
        windows,
    })
}

/// How to render a frame: an explicit window (both or neither), inversion, the longest side.
pub struct RenderRequest {
    pub window_center: Option<f64>,
    pub window_width: Option<f64>,
    pub invert: bool,
    pub max_side: Option<u32>,
}

/// A rendered frame and, for greyscale, the window actually applied (the basis the viewer prints).
pub struct Rendered {
    pub png: Vec<u8>,
    pub window: Option<Window>,
}

pub async fn render(decoded: Arc<Decoded>, number: usize, request: RenderRequest) -> Result<Rendered, DomainError> {
    let frame = frame_index(&decoded.frames, number)?;
    let window = match (request.window_center, request.window_width) {
        (Some(center), Some(width)) if center.is_finite() && width.is_finite() && width >= 1.0 => {
            Some(Window { center, width })
        }
        (None, None) => None,
        _ => {
            return Err(DomainError::invalid(
                "窗位/窗宽须同时给出，窗宽 ≥ 1",
                "window_center and window_width go together, width ≥ 1",
            ));
        }
    };
    let options = RenderOptions {
        frame,
        window,
        invert: request.invert,
        max_side: Some(request.max_side.unwrap_or(MAX_RENDER_SIDE).clamp(16, MAX_RENDER_SIDE)),
    };
    let windows = decoded.info.file_windows();
    let gray = matches!(decoded.frames.samples, Samples::Gray(_));
    let used = window.or_else(|| imaging::render::default_window(&decoded.frames, frame, &windows));
    let png = tokio::task::spawn_blocking(move || {
        imaging::render::to_8bit(&decoded.frames, &options, &windows).map(|img| imaging::render::png(&img))
    })
    .await??;
    Ok(Rendered { png, window: used.filter(|_| gray) })
}

/// Raw samples of one frame for client-side windowing and the HU probe, little-endian and row-major.
pub struct FrameValues {
    pub rows: usize,
    pub columns: usize,
    /// `i16` when every modality value is a whole number in range (CT in HU, most radiographs: half the
    /// bytes of f32), `f32` otherwise, `rgb8` for colour.
    pub format: &'static str,
    pub bytes: Vec<u8>,
    /// MONOCHROME1: higher values darker.
    pub inverted: bool,
    /// The window the server would render a greyscale frame with, so both draw alike.
    pub default_window: Option<Window>,
}

pub async fn values(decoded: Arc<Decoded>, number: usize) -> Result<FrameValues, DomainError> {
    let frame = frame_index(&decoded.frames, number)?;
    let (rows, columns) = (decoded.frames.rows, decoded.frames.columns);
    let default_window = imaging::render::default_window(&decoded.frames, frame, &decoded.info.file_windows());
    let inverted = decoded.frames.inverted;
    let (format, bytes) = tokio::task::spawn_blocking(move || match &decoded.frames.samples {
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
    .await?;
    let default_window = default_window.filter(|_| format != "rgb8");
    Ok(FrameValues { rows, columns, format, bytes, inverted, default_window })
}

/// A click to measure a nodule from: in image pixels (x along the row, y down).
pub struct NoduleClick {
    pub x: f64,
    pub y: f64,
    pub max_radius_mm: Option<f64>,
    /// A fixed threshold in modality units instead of the half-maximum level.
    pub threshold: Option<f64>,
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

/// Region growing from the click, on the blocking pool in one of the image-work slots (a large search
/// window is real work: many clicks at once queue instead of taking every core).
pub async fn nodule(
    images: &Images,
    decoded: Arc<Decoded>,
    number: usize,
    click: NoduleClick,
) -> Result<NoduleResult, DomainError> {
    let frame = frame_index(&decoded.frames, number)?;
    let spacing = decoded.info.spacing().ok_or_else(|| {
        DomainError::invalid(
            "该图像没有像素间距，无法以毫米测量",
            "the image has no pixel spacing: no millimetre measurement",
        )
    })?;
    if decoded.frames.gray_frame(frame).is_none() {
        return Err(DomainError::invalid("彩色图像不支持自动测量", "automatic measurement needs a greyscale image"));
    }
    let max_radius_mm = click.max_radius_mm.unwrap_or(30.0);
    if !(click.x.is_finite() && click.y.is_finite() && (1.0..=60.0).contains(&max_radius_mm)) {
        return Err(DomainError::invalid(
            "参数无效：坐标须为数字，最大半径 1–60 毫米",
            "invalid point, or max_radius_mm outside 1–60",
        ));
    }
    let options = SegmentOptions { max_radius_mm, threshold: click.threshold.filter(|t| t.is_finite()) };
    let ct = decoded.info.modality.as_deref() == Some("CT");
    let _slot = Arc::clone(&images.work_slots).acquire_owned().await.map_err(anyhow::Error::from)?;
    let segmentation = tokio::task::spawn_blocking(move || {
        let values = decoded.frames.gray_frame(frame).expect("greyscale checked");
        let frame_view = Frame { values, columns: decoded.frames.columns, rows: decoded.frames.rows };
        segment_nodule(&frame_view, Point::new(click.x, click.y), &spacing, &options)
    })
    .await?
    .map_err(|e| DomainError::Unprocessable {
        code: "no_nodule",
        zh: e.message_zh().into(),
        en: e.message_en().into(),
    })?;
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
    Ok(NoduleResult { segmentation, mean_diameter_mm, basis })
}

/// The stored file (DICOM with its preamble zeroed, or the JPEG/PNG as uploaded) with its media type
/// and file extension.
pub async fn original_file(
    images: &Arc<Images>,
    row: &InstanceRow,
) -> Result<(Vec<u8>, &'static str, &'static str), DomainError> {
    let images = Arc::clone(images);
    let sha = row.object_sha256.clone();
    let bytes = tokio::task::spawn_blocking(move || images.objects.read(&sha)).await??;
    let (mime, ext) = match row.format.as_str() {
        "dicom" => ("application/dicom", "dcm"),
        "jpeg" => ("image/jpeg", "jpg"),
        _ => ("image/png", "png"),
    };
    Ok((bytes, mime, ext))
}
