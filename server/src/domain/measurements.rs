//! The viewer's measurements saved with a study. The browser sends the shape it drew; the server
//! measures it again with the same code ([`measure::shape::measure_shape`]) on the stored image, so what
//! is saved does not rest on numbers a client sent.

use std::sync::Arc;

use measure::roi::Frame;
use measure::shape::{Outcome, Shape, measure_shape};
use serde::{Deserialize, Serialize};

use crate::domain::DomainError;
use crate::domain::auth::{Principal, Role};
use crate::domain::images::Images;
use crate::domain::instances::{self, SpacingBasis};
use crate::store::db::Pool;
use crate::store::measurements::{self as rows, MeasurementRow, NewMeasurementRow};
use crate::support::clock::now_rfc3339;

/// Longest label kept (a measurement's name, such as "右肺上叶结节").
pub const MAX_LABEL_CHARS: usize = 200;

/// The place a report draft gives a measurement that names none (the reader fills it in).
pub const NO_PLACE: &str = "未标注部位";

/// The window on screen when the shape was drawn: part of the measurement's basis.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShownWindow {
    center: f64,
    width: f64,
}

/// A shape drawn in the viewer, to be measured and saved.
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

fn units(modality: Option<&str>) -> &'static str {
    if modality == Some("CT") { "HU" } else { "raw" }
}

impl TryFrom<MeasurementRow> for Measurement {
    type Error = DomainError;

    fn try_from(row: MeasurementRow) -> Result<Measurement, DomainError> {
        let json = |e: serde_json::Error| DomainError::Internal(e.into());
        let info: imaging::dicom::DicomInfo = serde_json::from_str(&row.metadata).map_err(json)?;
        Ok(Measurement {
            id: row.id,
            study_id: row.study_id,
            instance_id: row.instance_id,
            frame: row.frame,
            shape: serde_json::from_str(&row.shape).map_err(json)?,
            outcome: serde_json::from_str(&row.outcome).map_err(json)?,
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

impl Measurement {
    /// What a report draft is told of it: (where, long axis mm, short axis mm, what the numbers rest on),
    /// for a calibrated length or bidirectional measurement; none for the others (areas, angles, pixels).
    pub fn for_draft(&self) -> Option<(String, f64, Option<f64>, String)> {
        if !self.outcome.calibrated {
            return None;
        }
        let (long, short) = match (self.outcome.length, self.outcome.long_axis, self.outcome.short_axis) {
            (Some(length), _, _) => (length, None),
            (None, Some(long), short) => (long, short),
            _ => return None,
        };
        // An automatic measurement's label is its method ("（自动：…）", as the viewer saves it), not a place:
        // it goes into the basis, and the place is left for the reader.
        let label = self.label.as_deref().map(str::trim).filter(|l| !l.is_empty());
        let (location, method) = match label {
            Some(method) if method.starts_with("（自动") => {
                (NO_PLACE, Some(method.trim_start_matches('（').trim_end_matches('）')))
            }
            Some(place) => (place, None),
            None => (NO_PLACE, None),
        };
        let spacing = self.basis.spacing.as_ref().map(SpacingBasis::describe_zh).unwrap_or_default();
        let window = self.basis.window.as_ref().map(|w| format!("窗位/窗宽 {:.0}/{:.0}；", w.center, w.width));
        let method = method.map(|m| format!("；{m}")).unwrap_or_default();
        let basis = format!("阅片器测量（{}{spacing}{method}）", window.unwrap_or_default());
        // To a tenth of a millimetre, as the viewer shows them and the guidelines read them.
        let (long, short) = (guidelines::round1(long), short.map(guidelines::round1));
        Some((location.chars().take(60).collect(), long, short, basis))
    }
}

/// A study's live measurements.
pub async fn for_study(pool: &Pool, study_id: i64) -> Result<Vec<Measurement>, DomainError> {
    rows::for_study(pool, study_id).await?.into_iter().map(Measurement::try_from).collect()
}

/// Measures the shape on the stored image and saves it as `author`'s.
pub async fn create(
    pool: &Pool,
    images: &Arc<Images>,
    study_id: i64,
    author: &str,
    new: NewMeasurement,
) -> Result<Measurement, DomainError> {
    let row = instances::load(pool, new.instance_id).await?;
    if row.study_id != study_id {
        return Err(DomainError::invalid("该图像不属于这个检查", "the image belongs to another study"));
    }
    let label = new.label.map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS) {
        return Err(DomainError::invalid(
            format!("标注过长（最多 {MAX_LABEL_CHARS} 字）"),
            format!("label longer than {MAX_LABEL_CHARS} characters"),
        ));
    }
    if new.window.is_some_and(|w| !(w.center.is_finite() && w.width.is_finite() && w.width > 0.0)) {
        return Err(DomainError::invalid("窗宽窗位无效", "invalid window"));
    }
    let number = new.frame.unwrap_or(1);
    let image = instances::decoded(images, &row).await?;
    let frame = instances::frame_index(&image.frames, number)?;
    let (columns, rows) = (image.frames.columns, image.frames.rows);
    let spacing = image.info.spacing();
    let shape = new.shape;
    let outcome = tokio::task::spawn_blocking(move || {
        let values = image.frames.gray_frame(frame).map(|values| Frame { values, columns, rows });
        measure_shape(&shape, spacing.as_ref(), columns, rows, values.as_ref())
    })
    .await?
    .map_err(|e| DomainError::Unprocessable {
        code: "bad_shape",
        zh: e.message_zh().into(),
        en: e.message_en().into(),
    })?;
    let json = |v: serde_json::Result<String>| v.map_err(|e| DomainError::Internal(e.into()));
    let id = rows::insert(
        pool,
        &NewMeasurementRow {
            study_id,
            instance_id: new.instance_id,
            frame: number as i64,
            shape_json: &json(serde_json::to_string(&shape))?,
            outcome_json: &json(serde_json::to_string(&outcome))?,
            window: new.window.map(|w| (w.center, w.width)),
            label: label.as_deref(),
            created_by: author,
            created_at: &now_rfc3339(),
        },
    )
    .await?;
    let stored = rows::one(pool, id).await?.ok_or_else(no_such_measurement)?;
    Measurement::try_from(stored)
}

/// Removes a measurement from the study; the row stays, marked deleted by the caller, for the audit
/// trail. Only the one who made it, or a department head, may remove it.
pub async fn delete(pool: &Pool, id: i64, caller: &Principal) -> Result<(), DomainError> {
    let row = rows::one(pool, id).await?.ok_or_else(no_such_measurement)?;
    let by = caller.author();
    if row.created_by != by && caller.role != Role::DepartmentHead {
        return Err(DomainError::NotYours {
            zh: "这项测量由其他医师所做，只有测量者或科室主任可以删除".into(),
            en: "another radiologist made this measurement: only they or a department head may delete it".into(),
        });
    }
    if rows::soft_delete(pool, id, &by, &now_rfc3339()).await? { Ok(()) } else { Err(no_such_measurement()) }
}

fn no_such_measurement() -> DomainError {
    DomainError::not_found("没有这个测量", "No such measurement")
}
