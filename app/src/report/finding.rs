//! One finding of the report as the form edits it — a signal per field of `report::model::Finding`,
//! numbers as typed — and its fieldset: the five-part frame, the axes (filled from a viewer measurement),
//! nodule type and features, and the prior size, suggested from the prior exam's measurement at the same
//! place, with the change against it.

use leptos::prelude::*;
use report::Report;
use report::model::{Finding, LengthUnit, Measurements, NoduleType, PriorSize};

use crate::api::{ApiError, StudySummary, display_date};
use crate::i18n::tr;
use crate::viewer::measurements::{Saved, SavedList, basis_text, outcome_text};

/// Nodule features the guidelines weigh, as the form offers them.
const NODULE_FEATURES: [(&str, &str); 5] = [
    ("spiculation", "毛刺 / spiculation"),
    ("perifissural", "叶间裂旁 / perifissural"),
    ("juxtapleural", "胸膜下 / juxtapleural"),
    ("benign_calcification", "良性钙化 / benign calcification"),
    ("fat", "含脂肪 / contains fat"),
];

const NODULE_TYPES: [NoduleType; 3] = [NoduleType::Solid, NoduleType::PartSolid, NoduleType::GroundGlass];

/// A nodule type as the form's select names it: its JSON name, or "" for a finding that is no nodule.
fn nodule_type_key(kind: Option<NoduleType>) -> &'static str {
    match kind {
        None => "",
        Some(NoduleType::Solid) => "solid",
        Some(NoduleType::PartSolid) => "part_solid",
        Some(NoduleType::GroundGlass) => "ground_glass",
    }
}

fn nodule_type_of_key(key: &str) -> Option<NoduleType> {
    NODULE_TYPES.into_iter().find(|kind| nodule_type_key(Some(*kind)) == key)
}

/// One finding's fields as the form edits them: text as typed (axes too, so "8." stays while typing);
/// `original` keeps what the form does not show (links to images, the AI-drafted mark).
#[derive(Clone)]
pub struct FindingForm {
    /// Tells this form from any other, also from the one a reload makes for the same finding: the
    /// panel's rows are keyed by it, so the fields on screen are always bound to the signals in the list.
    pub id: usize,
    original: Finding,
    location: RwSignal<String>,
    feature: RwSignal<String>,
    morphology: RwSignal<String>,
    density: RwSignal<String>,
    boundary: RwSignal<String>,
    adjacent_structures: RwSignal<String>,
    long_axis: RwSignal<String>,
    short_axis: RwSignal<String>,
    nodule_type: RwSignal<Option<NoduleType>>,
    nodule_features: RwSignal<Vec<String>>,
    solid_long_axis: RwSignal<String>,
    solid_short_axis: RwSignal<String>,
    /// How the axes were measured (from a viewer measurement), and which measurement.
    basis: RwSignal<String>,
    measurement_ids: RwSignal<Vec<String>>,
    /// The same nodule on the prior exam: date (YYYY-MM-DD) and axes, as the radiologist matched it.
    prior_date: RwSignal<String>,
    prior_long_axis: RwSignal<String>,
    prior_short_axis: RwSignal<String>,
}

impl FindingForm {
    pub fn new(finding: Finding) -> FindingForm {
        let text = |value: &str| RwSignal::new(value.to_string());
        let optional = |value: &Option<String>| RwSignal::new(value.clone().unwrap_or_default());
        let number = |value: Option<f64>| RwSignal::new(value.map(|v| v.to_string()).unwrap_or_default());
        let (m, prior) = (finding.measurements.as_ref(), finding.prior.as_ref());
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        FindingForm {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            location: text(&finding.location),
            feature: text(&finding.feature),
            morphology: optional(&finding.morphology),
            density: optional(&finding.density),
            boundary: optional(&finding.boundary),
            adjacent_structures: optional(&finding.adjacent_structures),
            long_axis: number(m.map(|m| m.long_axis)),
            short_axis: number(m.and_then(|m| m.short_axis)),
            nodule_type: RwSignal::new(finding.nodule_type),
            nodule_features: RwSignal::new(finding.nodule_features.clone()),
            solid_long_axis: number(m.and_then(|m| m.solid_long_axis)),
            solid_short_axis: number(m.and_then(|m| m.solid_short_axis)),
            basis: optional(&m.and_then(|m| m.basis.clone())),
            measurement_ids: RwSignal::new(finding.measurement_ids.clone()),
            prior_date: text(prior.map_or("", |p| &p.study_date)),
            prior_long_axis: number(prior.map(|p| p.long_axis)),
            prior_short_axis: number(prior.and_then(|p| p.short_axis)),
            original: finding,
        }
    }

    /// The five-part frame's text fields with their labels, in the form's order.
    fn text_fields(&self) -> [(&'static str, RwSignal<String>); 6] {
        [
            ("部位 / Location", self.location),
            ("所见 / Finding", self.feature),
            ("形态 / Morphology", self.morphology),
            ("密度 / Density", self.density),
            ("边界 / Boundary", self.boundary),
            ("邻近结构 / Adjacent structures", self.adjacent_structures),
        ]
    }

    /// Subscribes to every field the guidelines read, for views computed from the whole form.
    pub fn track(&self) {
        for (_, field) in self.text_fields() {
            field.track();
        }
        for field in [
            self.long_axis,
            self.short_axis,
            self.solid_long_axis,
            self.solid_short_axis,
            self.prior_date,
            self.prior_long_axis,
            self.prior_short_axis,
        ] {
            field.track();
        }
        self.nodule_type.track();
        self.nodule_features.track();
    }

    /// The finding on screen: text trimmed, empty optional fields left out, axes only when a long axis
    /// is given, the solid component only for a part-solid nodule, features only for a nodule. No longer
    /// `ai_drafted` once it differs from what was loaded.
    pub fn finding(&self) -> Finding {
        let text = |field: RwSignal<String>| field.get_untracked().trim().to_string();
        let optional = |field: RwSignal<String>| Some(text(field)).filter(|t| !t.is_empty());
        let number = |field: RwSignal<String>| text(field).parse::<f64>().ok().filter(|v| *v > 0.0);
        let kind = self.nodule_type.get_untracked();
        let part_solid = kind == Some(NoduleType::PartSolid);
        let measurements = number(self.long_axis).map(|long_axis| Measurements {
            long_axis,
            short_axis: number(self.short_axis),
            solid_long_axis: number(self.solid_long_axis).filter(|_| part_solid),
            solid_short_axis: number(self.solid_short_axis).filter(|_| part_solid),
            unit: LengthUnit::Millimetre,
            basis: optional(self.basis),
        });
        let prior_date = text(self.prior_date);
        let prior = number(self.prior_long_axis).filter(|_| !prior_date.is_empty()).map(|long_axis| PriorSize {
            study_date: prior_date,
            long_axis,
            short_axis: number(self.prior_short_axis),
        });
        let mut finding = Finding {
            location: text(self.location),
            feature: text(self.feature),
            measurements,
            density: optional(self.density),
            boundary: optional(self.boundary),
            morphology: optional(self.morphology),
            adjacent_structures: optional(self.adjacent_structures),
            nodule_type: kind,
            nodule_features: if kind.is_some() { self.nodule_features.get_untracked() } else { Vec::new() },
            prior,
            // The server writes the change from the sizes; a stale one is not sent back.
            change: None,
            measurement_ids: self.measurement_ids.get_untracked(),
            ..self.original.clone()
        };
        if finding != self.original {
            finding.ai_drafted = false;
        }
        finding
    }
}

/// A viewer measurement as a report finding uses it: its axes in millimetres and their basis.
fn measurement_axes(m: &Saved) -> Option<(f64, Option<f64>, String)> {
    if !m.outcome.calibrated {
        return None;
    }
    let axes = match (m.outcome.length, m.outcome.long_axis, m.outcome.short_axis) {
        (Some(length), _, _) => (length, None),
        (None, Some(long), short) => (long, short),
        _ => return None,
    };
    let round = |v: f64| (v * 10.0).round() / 10.0;
    // Report text: Chinese whatever the page's language (the PDF and the HIS read it).
    Some((round(axes.0), axes.1.map(round), basis_text(&m.basis, crate::i18n::Lang::Zh)))
}

/// The prior exam's measurement of the same nodule as `current`, suggested for the radiologist to confirm:
/// the one whose position, relative to its image's size, is nearest — within a tenth of the image.
fn match_prior<'a>(current: &Saved, prior: &'a [Saved]) -> Option<&'a Saved> {
    let relative = |m: &Saved| {
        let c = m.shape.center();
        let (w, h) = (f64::from(m.image.columns.max(1)), f64::from(m.image.rows.max(1)));
        ((c.x + 0.5) / w, (c.y + 0.5) / h)
    };
    let here = relative(current);
    prior
        .iter()
        .filter(|m| measurement_axes(m).is_some())
        .map(|m| {
            let (x, y) = relative(m);
            (m, (x - here.0).hypot(y - here.1))
        })
        .filter(|(_, d)| *d <= 0.1)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m)
}

/// Finding number `index + 1`'s fieldset. `measurements`: the study's viewer measurements, to fill the
/// axes from; `prior_measurements`: the prior study's, offered as the prior size; `on_screen`: the whole
/// report as the form holds it, for the change against the prior size.
#[component]
pub fn FindingFields(
    index: usize,
    form: FindingForm,
    measurements: LocalResource<Result<SavedList, ApiError>>,
    prior_measurements: LocalResource<(Option<StudySummary>, Vec<Saved>)>,
    on_screen: Memo<Option<Report>>,
) -> impl IntoView {
    // Marked while it is what the model wrote: a person's edit takes the mark away.
    let ai_drafted = {
        let form = form.clone();
        Signal::derive(move || {
            form.track();
            form.finding().ai_drafted
        })
    };
    let text_inputs = form
        .text_fields()
        .map(|(label, field)| {
            let label = tr(label);
            view! {
                <label>{label}<input aria-label=format!("{label} {}", index + 1) prop:value=move || field.get()
                    on:input=move |ev| field.set(event_target_value(&ev))/></label>
            }
        })
        .into_iter()
        .collect_view();
    let (long, short) = (form.long_axis, form.short_axis);
    let (solid_long, solid_short) = (form.solid_long_axis, form.solid_short_axis);
    let (kind, features, basis, ids) = (form.nodule_type, form.nodule_features, form.basis, form.measurement_ids);
    let (prior_date, prior_long, prior_short) = (form.prior_date, form.prior_long_axis, form.prior_short_axis);
    let feature_boxes = NODULE_FEATURES
        .iter()
        .map(|(key, label)| {
            let label = tr(label);
            let key = key.to_string();
            let checked = {
                let key = key.clone();
                move || features.with(|f| f.contains(&key))
            };
            view! {
                <label class="nodule-feature"><input type="checkbox" aria-label=format!("{label} {}", index + 1)
                    prop:checked=checked
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        features.update(|f| { f.retain(|x| *x != key); if on { f.push(key.clone()); } });
                    }/>{label}</label>
            }
        })
        .collect_view();
    // The prior exam's measurement at the place of this finding's measurement, with the prior exam's date.
    let suggestion = move |ids: Vec<String>| {
        let current = measurements.get()?.ok()?.measurements.into_iter().find(|m| ids.contains(&m.id.to_string()))?;
        let (prior, candidates) = prior_measurements.get()?;
        let date = display_date(&prior?.study_date);
        let found = match_prior(&current, &candidates)?;
        let (long, short, _) = measurement_axes(found)?;
        Some((date, long, short, outcome_text(&found.outcome, &found.basis.units), found.id))
    };
    // The change against the prior size, or why there is none.
    let change_text = move || {
        on_screen.with(|report| {
            let report = report.as_ref()?;
            Some(match report.change_of(report.findings.get(index)?)? {
                Ok(change) => crate::i18n::choose(change.summary.zh, change.summary.en),
                Err(e) => format!("{}{e}", tr("无法对比： / cannot compare: ")),
            })
        })
    };
    view! {
        <fieldset class="finding" class:ai-drafted=move || ai_drafted.get()>
            <legend>{tr(&format!("第 {0} 条 / Finding {0}", index + 1)).to_string()}
                <Show when=move || ai_drafted.get()>
                    " "<span class="ai-drafted-mark">{tr("AI草稿，未经修改 / AI draft, not yet edited")}</span>
                </Show>
            </legend>
            {text_inputs}
            <label>{tr("长径（毫米） / Long axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("长径 / Long axis"), index + 1)
                prop:value=move || long.get() on:input=move |ev| long.set(event_target_value(&ev))/></label>
            <label>{tr("短径（毫米） / Short axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("短径 / Short axis"), index + 1)
                prop:value=move || short.get() on:input=move |ev| short.set(event_target_value(&ev))/></label>
            <label>{tr("填入测量 / From measurement")}
                <select class="use-measurement" aria-label=format!("{} {}", tr("测量 / Measurement"), index + 1)
                    on:focus=move |_| measurements.refetch()
                    on:change=move |ev| {
                        let chosen = event_target_value(&ev);
                        let list = measurements.get().and_then(|m| m.ok()).map(|l| l.measurements).unwrap_or_default();
                        let m = list.iter().find(|m| m.id.to_string() == chosen);
                        if let Some((m, (l, sh, b))) = m.and_then(|m| Some((m, measurement_axes(m)?))) {
                            long.set(l.to_string());
                            short.set(sh.map(|v| v.to_string()).unwrap_or_default());
                            basis.set(b);
                            ids.set(vec![m.id.to_string()]);
                        }
                    }>
                    <option value="">"—"</option>
                    {move || measurements.get().and_then(|m| m.ok()).map(|l| l.measurements).unwrap_or_default()
                        .into_iter().filter(|m| measurement_axes(m).is_some()).map(|m| {
                            let text = format!("#{} {}", m.id, outcome_text(&m.outcome, &m.basis.units));
                            view! { <option value=m.id.to_string()>{text}</option> }
                        }).collect_view()}
                </select>
            </label>
            <Show when=move || !basis.get().is_empty()>
                <p class="finding-basis">{tr("测量依据： / Basis: ")}{move || basis.get()}</p>
            </Show>
            <label>{tr("结节类型 / Nodule type")}
                <select class="nodule-type" aria-label=format!("{} {}", tr("结节类型 / Nodule type"), index + 1)
                    prop:value=move || nodule_type_key(kind.get()) on:change=move |ev| kind.set(nodule_type_of_key(&event_target_value(&ev)))>
                    <option value="">{tr("非结节 / —")}</option>
                    <option value="solid">{tr("实性 / solid")}</option>
                    <option value="part_solid">{tr("部分实性 / part-solid")}</option>
                    <option value="ground_glass">{tr("磨玻璃 / ground glass")}</option>
                </select>
            </label>
            <Show when=move || kind.get() == Some(NoduleType::PartSolid)>
                <label>{tr("实性成分长径（毫米） / Solid component long axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("实性成分长径 / Solid long axis"), index + 1)
                    prop:value=move || solid_long.get() on:input=move |ev| solid_long.set(event_target_value(&ev))/></label>
                <label>{tr("实性成分短径（毫米） / Solid component short axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("实性成分短径 / Solid short axis"), index + 1)
                    prop:value=move || solid_short.get() on:input=move |ev| solid_short.set(event_target_value(&ev))/></label>
            </Show>
            <Show when=move || kind.get().is_some()>
                <span class="nodule-features">{feature_boxes.clone()}</span>
            </Show>
            {move || suggestion(ids.get()).map(|(date, long, short, text, id)| view! {
                <p class="prior-suggestion">
                    {tr(&format!("既往检查 {date} 同一位置的测量 #{id}：{text} / Measurement #{id} at the same place on {date}: {text}")).to_string()}
                    " "
                    <button class="use-prior" on:click=move |_| {
                        prior_date.set(date.clone());
                        prior_long.set(long.to_string());
                        prior_short.set(short.map(|v| v.to_string()).unwrap_or_default());
                    }>{tr("采用为既往大小 / Use as prior")}</button>
                </p>
            })}
            <label>{tr("既往检查日期 / Prior exam date")}<input type="date" class="prior-date" aria-label=format!("{} {}", tr("既往日期 / Prior date"), index + 1)
                prop:value=move || prior_date.get() on:input=move |ev| prior_date.set(event_target_value(&ev))/></label>
            <label>{tr("既往长径 × 短径（毫米） / Prior long × short axis (mm)")}
                <span class="prior-axes">
                    <input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("既往长径 / Prior long axis"), index + 1)
                        prop:value=move || prior_long.get() on:input=move |ev| prior_long.set(event_target_value(&ev))/>
                    <input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("既往短径 / Prior short axis"), index + 1)
                        prop:value=move || prior_short.get() on:input=move |ev| prior_short.set(event_target_value(&ev))/>
                </span>
            </label>
            {move || change_text().map(|t| view! { <p class="finding-change">{t}</p> })}
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::measurements::{ImageSize, SavedBasis};
    use measure::Point;
    use measure::shape::{Outcome, Shape};
    use serde_json::json;

    /// Signals live in a reactive owner's arena (the workspace's feature set turns on leptos's
    /// sandboxed arenas, which refuse a signal made outside one).
    fn in_an_owner(test: impl FnOnce()) {
        leptos::prelude::Owner::new().with(test)
    }

    fn saved(id: i64, at: (f64, f64), size: u32, calibrated: bool) -> Saved {
        Saved {
            id,
            instance_id: 1,
            frame: 1,
            shape: Shape::Length { a: Point::new(at.0 - 2.0, at.1), b: Point::new(at.0 + 2.0, at.1) },
            outcome: Outcome {
                calibrated,
                length: Some(4.0),
                long_axis: None,
                short_axis: None,
                mean_diameter: None,
                roi: None,
                angle_deg: None,
            },
            basis: SavedBasis { spacing: None, window: None, units: "HU".into() },
            image: ImageSize { columns: size, rows: size },
            label: None,
        }
    }

    #[test]
    fn the_prior_measurement_at_the_same_relative_place_is_suggested() {
        // Current at (100, 100) of 512; prior images of 256: (50, 52) is the same place, (200, 50) is not.
        let current = saved(1, (100.0, 100.0), 512, true);
        let prior =
            [saved(2, (200.0, 50.0), 256, true), saved(3, (50.0, 52.0), 256, true), saved(4, (50.0, 50.0), 256, false)];
        assert_eq!(match_prior(&current, &prior).map(|m| m.id), Some(3));
        assert_eq!(match_prior(&current, &prior[..1]), None);
    }

    /// A finding as the server returns it: every field the form shows, and some it does not.
    fn drafted() -> serde_json::Value {
        json!({
            "location": "右肺上叶尖段", "feature": "部分实性结节",
            "measurements": {"long_axis": 11.2, "short_axis": 9.8, "solid_long_axis": 4.0, "unit": "mm",
                             "basis": "窗宽 1500 / 窗位 -600"},
            "density": "混杂密度", "boundary": "分叶状", "morphology": "类圆形", "adjacent_structures": "邻近胸膜牵拉",
            "nodule_type": "part_solid", "nodule_features": ["spiculation", "endobronchial"],
            "prior": {"study_date": "2024-10-15", "long_axis": 8.4, "short_axis": 4.2},
            "measurement_ids": ["7"], "image_ids": ["3"], "ai_drafted": true
        })
    }

    #[test]
    fn a_finding_nobody_edited_goes_back_as_it_came() {
        in_an_owner(|| {
            let finding: Finding = serde_json::from_value(drafted()).unwrap();
            let back = FindingForm::new(finding.clone()).finding();
            assert_eq!(back, finding);
            assert_eq!(serde_json::to_value(&back).unwrap(), drafted());
        })
    }

    #[test]
    fn an_edited_finding_is_no_longer_the_ai_draft_and_sends_no_stale_change() {
        in_an_owner(|| {
            let mut json = drafted();
            json["change"] = json!("较2024-10-15增大2.8毫米");
            let form = FindingForm::new(serde_json::from_value(json).unwrap());
            form.density.set("  ".into());
            form.location.set(" 右肺下叶 ".into());
            let sent = serde_json::to_value(form.finding()).unwrap();
            assert_eq!(sent["location"], "右肺下叶");
            for gone in ["density", "change", "ai_drafted"] {
                assert!(sent.get(gone).is_none(), "{gone}");
            }
            assert_eq!(sent["image_ids"], json!(["3"]));
        })
    }

    #[test]
    fn the_solid_component_belongs_to_part_solid_nodules_and_features_to_nodules() {
        in_an_owner(|| {
            let form = FindingForm::new(serde_json::from_value(drafted()).unwrap());
            form.nodule_type.set(Some(NoduleType::Solid));
            let solid = form.finding();
            assert_eq!(solid.measurements.as_ref().unwrap().solid_long_axis, None);
            assert_eq!(solid.nodule_features, ["spiculation", "endobronchial"]);
            form.nodule_type.set(None);
            form.long_axis.set("0".into());
            let no_nodule = form.finding();
            assert!(no_nodule.nodule_features.is_empty());
            assert_eq!(no_nodule.measurements, None);
        })
    }

    #[test]
    fn the_nodule_type_select_uses_the_json_names() {
        for kind in NODULE_TYPES {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(nodule_type_key(Some(kind))));
            assert_eq!(nodule_type_of_key(nodule_type_key(Some(kind))), Some(kind));
        }
        assert_eq!(nodule_type_of_key(""), None);
    }
}
