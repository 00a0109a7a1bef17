//! Measurements: what the server saved with the study, how they read ("70.0 毫米" and its basis), and
//! the actions on them — save, delete, undo, and the automatic nodule measurement from a click. The
//! server measures every saved shape again (the same `measure` code).

use leptos::prelude::*;
use measure::shape::{Outcome, Shape, ShapeError, measure_shape};
use measure::window::Window;
use measure::{Point, SpacingSource};
use serde::{Deserialize, Serialize};

use super::state::Viewer;
use crate::api::{self, ApiError, SpacingInfo};
use crate::i18n::{Lang, tr};

/// A measurement as the server saved it (GET/POST /api/v1/studies/{id}/measurements).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Saved {
    pub id: i64,
    pub instance_id: i64,
    pub frame: i64,
    pub shape: Shape,
    pub outcome: Outcome,
    pub basis: SavedBasis,
    /// The measured image's size in pixels.
    #[serde(default)]
    pub image: ImageSize,
    pub label: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct ImageSize {
    pub columns: u32,
    pub rows: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SavedBasis {
    pub spacing: Option<SpacingInfo>,
    pub window: Option<Window>,
    pub units: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SavedList {
    pub measurements: Vec<Saved>,
}

/// What POST /api/v1/studies/{id}/measurements takes; kept for undoing a delete.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewMeasurement {
    instance_id: i64,
    frame: i64,
    shape: Shape,
    window: Option<Window>,
    label: Option<String>,
}

/// One step the undo button takes back.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    Saved(i64),
    Deleted(NewMeasurement),
}

/// "70.0 毫米", "14.0 × 7.0 毫米（平均 10.5 毫米）", "面积 30.8 平方毫米 · 均值 40.0 HU · 标准差 0.0 HU".
pub fn outcome_text(o: &Outcome, units: &str) -> String {
    let (len, area) = if o.calibrated {
        (tr("毫米 / mm"), tr("平方毫米 / mm²"))
    } else {
        (tr("像素 / px"), tr("平方像素 / px²"))
    };
    let units = if units == "raw" { "" } else { units };
    if let Some(l) = o.length {
        format!("{l:.1} {len}")
    } else if let (Some(a), Some(b), Some(m)) = (o.long_axis, o.short_axis, o.mean_diameter) {
        let mean = tr("平均 / mean");
        format!("{a:.1} × {b:.1} {len}{}", crate::i18n::parenthesized(&format!("{mean} {m:.1} {len}")))
    } else if let Some(r) = o.roi {
        let [area_word, mean, sd] = [tr("面积 / area"), tr("均值 / mean"), tr("标准差 / SD")];
        format!("{area_word} {:.1} {area} · {mean} {:.1} {units} · {sd} {:.1} {units}", r.area_mm2, r.mean, r.sd)
    } else if let Some(deg) = o.angle_deg {
        format!("{deg:.1}°")
    } else {
        String::new()
    }
}

/// What a saved measurement shows on the image: its number, or an arrow's text (labels such as the
/// automatic measurement's method are listed below the image, not written over it).
pub fn saved_text(m: &Saved) -> String {
    match &m.shape {
        Shape::Arrow { .. } => m.label.clone().unwrap_or_default(),
        _ => outcome_text(&m.outcome, &m.basis.units),
    }
}

fn kind_label(shape: &Shape) -> &'static str {
    match shape {
        Shape::Length { .. } => tr("长度 / Length"),
        Shape::Bidirectional { .. } => tr("长径 × 短径 / Long × short axis"),
        Shape::Ellipse { .. } => tr("椭圆 ROI / Ellipse ROI"),
        Shape::Angle { .. } => tr("角度 / Angle"),
        Shape::Arrow { .. } => tr("箭头 / Arrow"),
    }
}

/// The basis printed beside a measurement: the window shown and where the millimetres come from, in
/// `lang` (the page's for the viewer; always Chinese for the text a report keeps).
pub fn basis_text(b: &SavedBasis, lang: Lang) -> String {
    let tr = |text| crate::i18n::pick(lang, text);
    let window = b.window.map(|w| format!("{} {:.0} / {} {:.0}", tr("窗宽 / W"), w.width, tr("窗位 / L"), w.center));
    let spacing = match &b.spacing {
        Some(s) => {
            // The DICOM attribute it came from, with its caveat; the uploader's is said by the caveat alone.
            let source = match s.source {
                SpacingSource::PixelSpacing => Some("PixelSpacing"),
                SpacingSource::ImagerPixelSpacing => Some("ImagerPixelSpacing"),
                SpacingSource::Uploader => None,
            };
            let (spacing, mm) = (tr("像素间距 / pixel spacing"), tr("毫米 / mm"));
            let numbers = format!("{spacing} {:.3} × {:.3} {mm}", s.row_mm, s.col_mm);
            let caveat = match lang {
                Lang::Zh => s.source.caveat_zh(),
                Lang::En => s.source.caveat_en(),
            };
            let (separator, open, close) = if lang == Lang::Zh { ("，", "（", "）") } else { (": ", " (", ")") };
            let said = source.into_iter().chain(caveat).collect::<Vec<_>>().join(separator);
            format!("{numbers}{open}{said}{close}")
        }
        None => tr("无像素间距，单位为像素 / no pixel spacing: pixels").into(),
    };
    window.into_iter().chain([spacing]).collect::<Vec<_>>().join(" · ")
}

impl Viewer {
    /// The study's saved measurements, once.
    pub fn load_measurements(self) {
        let (study_id, saved, message) = (self.study_id, self.saved, self.message);
        Effect::new(move |_| {
            leptos::task::spawn_local(async move {
                match api::get::<SavedList>(format!("/api/v1/studies/{study_id}/measurements")).await {
                    Ok(list) => saved.set(list.measurements),
                    Err(e) => message.set(Some(e.text())),
                }
            });
        });
    }

    /// Saves `shape` on the image on screen, with the window shown; the draft goes once answered.
    pub fn save(self, shape: Shape, label: Option<String>) {
        let Some(p) = self.pixels.get_untracked() else { return };
        // Measured here first: a shape the server would refuse is not sent.
        if let Err(e) = measure_shape(&shape, self.spacing().as_ref(), p.columns, p.rows, p.frame().as_ref()) {
            self.message.set(Some(shape_error_text(e)));
            self.draft.set(None);
            return;
        }
        let i = self.image_untracked();
        let body = NewMeasurement {
            instance_id: i.instance_id,
            frame: i.frame,
            shape,
            window: self.window.get_untracked(),
            label,
        };
        leptos::task::spawn_local(async move {
            match post_measurement(self.study_id, &body).await {
                Ok(m) => {
                    self.undo_stack.update_value(|u| u.push(Done::Saved(m.id)));
                    self.saved.update(|s| s.push(m));
                    self.message.set(None);
                }
                Err(e) => self.message.set(Some(e.text())),
            }
            self.draft.set(None);
        });
    }

    /// Deletes `m` from the study; undo saves it again.
    pub fn remove(self, m: Saved) {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/v1/measurements/{}", m.id)).await {
                Ok(()) => {
                    self.saved.update(|s| s.retain(|x| x.id != m.id));
                    self.undo_stack.update_value(|u| {
                        u.push(Done::Deleted(NewMeasurement {
                            instance_id: m.instance_id,
                            frame: m.frame,
                            shape: m.shape,
                            window: m.basis.window,
                            label: m.label.clone(),
                        }))
                    });
                }
                Err(e) => self.message.set(Some(e.text())),
            }
        });
    }

    /// Takes back the last save or delete.
    pub fn undo(self) {
        let Some(step) = self.undo_stack.try_update_value(|u| u.pop()).flatten() else { return };
        let saved = self.saved;
        leptos::task::spawn_local(async move {
            let result = match step {
                Done::Saved(id) => api::delete(&format!("/api/v1/measurements/{id}"))
                    .await
                    .map(|()| saved.update(|s| s.retain(|x| x.id != id))),
                Done::Deleted(body) => {
                    post_measurement(self.study_id, &body).await.map(|m| saved.update(|s| s.push(m)))
                }
            };
            if let Err(e) = result {
                self.message.set(Some(e.text()));
            }
        });
    }

    /// Automatic measurement: the server segments the nodule around the click; its axes are saved as a
    /// bidirectional measurement, its outline shown until the next action.
    pub fn measure_nodule(self, at: Point) {
        let i = self.image_untracked();
        self.message.set(Some(tr("自动测量中… / Measuring…").into()));
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/instances/{}/frames/{}/nodule", i.instance_id, i.frame);
            match api::post_json::<AutoNodule>(&path, &serde_json::json!({"x": at.x, "y": at.y})).await {
                Ok(n) if n.reached_search_limit => {
                    self.outline.set(Some(n.outline));
                    self.message.set(Some(
                        tr("区域连到了血管、胸膜或胸壁，自动测量不可靠，请手动测量 / The region ran into a vessel or the \
                            pleura: measure by hand")
                        .into(),
                    ));
                }
                Ok(n) => {
                    self.outline.set(Some(n.outline));
                    self.message.set(None);
                    let label = format!("（自动：{}）", n.basis.method_zh);
                    self.save(Shape::Bidirectional { long: n.axes.long_axis, short: n.axes.short_axis }, Some(label));
                }
                Err(e) => self.message.set(Some(e.text())),
            }
        });
    }
}

/// The measurements on the image on screen, each with its number, basis and a delete button.
#[component]
pub fn MeasurementList(viewer: Viewer) -> impl IntoView {
    view! {
        <ol class="measurement-list" aria-label=tr("测量 / Measurements")>
            {move || viewer.saved.get().into_iter().filter(|m| viewer.is_on_screen(m)).map(|m| {
                let text = saved_text(&m);
                let basis = basis_text(&m.basis, crate::i18n::lang());
                let kind = kind_label(&m.shape);
                let item = m.clone();
                view! {
                    <li class="measurement-item" data-id=m.id.to_string()>
                        <span class="measurement-kind">{kind}</span>" "
                        <span class="measurement-value">{text}</span>
                        {(!matches!(m.shape, Shape::Arrow { .. })).then(|| m.label.clone()).flatten().map(|l| view! {
                            <span class="measurement-label">{l}</span>
                        })}
                        <span class="measurement-basis">{basis}</span>
                        <button class="measurement-delete" title=tr("删除 / Delete")
                            on:click=move |_| viewer.remove(item.clone())>{tr("删除 / Delete")}</button>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

/// The answer of POST …/nodule, as far as the viewer uses it.
#[derive(Clone, Debug, Deserialize)]
struct AutoNodule {
    outline: Vec<Point>,
    axes: measure::geometry::Bidirectional,
    reached_search_limit: bool,
    basis: AutoBasis,
}

#[derive(Clone, Debug, Deserialize)]
struct AutoBasis {
    method_zh: String,
}

fn shape_error_text(e: ShapeError) -> String {
    crate::i18n::choose(e.message_zh(), e.message_en()).to_string()
}

async fn post_measurement(study_id: i64, body: &NewMeasurement) -> Result<Saved, ApiError> {
    api::post_json(&format!("/api/v1/studies/{study_id}/measurements"), body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SpacingInfo;

    fn basis(source: SpacingSource) -> SavedBasis {
        SavedBasis {
            spacing: Some(SpacingInfo { row_mm: 0.5, col_mm: 0.5, source }),
            window: None,
            units: "raw".into(),
        }
    }

    /// One language per message: the page's (Chinese here), not both sides joined.
    #[test]
    fn a_shape_error_reads_in_the_page_language() {
        assert_eq!(shape_error_text(ShapeError::OutsideImage), "测量超出图像范围");
    }

    #[test]
    fn a_basis_names_its_source_once() {
        let text = |source, lang| basis_text(&basis(source), lang);
        assert_eq!(text(SpacingSource::Uploader, Lang::Zh), "像素间距 0.500 × 0.500 毫米（像素间距由上传者提供）");
        assert_eq!(
            text(SpacingSource::Uploader, Lang::En),
            "pixel spacing 0.500 × 0.500 mm (pixel spacing given by the uploader)"
        );
        assert_eq!(text(SpacingSource::PixelSpacing, Lang::Zh), "像素间距 0.500 × 0.500 毫米（PixelSpacing）");
        assert_eq!(
            text(SpacingSource::ImagerPixelSpacing, Lang::Zh),
            "像素间距 0.500 × 0.500 毫米（ImagerPixelSpacing，探测器平面，未校正放大）"
        );
        assert_eq!(
            text(SpacingSource::ImagerPixelSpacing, Lang::En),
            format!(
                "pixel spacing 0.500 × 0.500 mm (ImagerPixelSpacing: {})",
                SpacingSource::ImagerPixelSpacing.caveat_en().unwrap()
            )
        );
    }
}
