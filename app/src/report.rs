//! The study's structured report beside the image: findings in the five-part frame (部位 形态 密度 边界
//! 邻近结构) with their axes in 毫米, the summary and the recommendation; started from the model's latest
//! draft or blank; saved, signed, countersigned or returned, and amended, as the signed-in role allows; the
//! changes since the AI draft for the reviewer; exports. The server enforces every rule again.

use crate::i18n::tr;
use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, History, Me, StudySummary, display_date};
use crate::viewer::measurements::{Saved, SavedList, basis_text, outcome_text};

/// One finding's fields as the form edits them; `original` keeps what the form does not show (links to
/// images).
#[derive(Clone)]
struct Row {
    original: Value,
    location: RwSignal<String>,
    feature: RwSignal<String>,
    morphology: RwSignal<String>,
    density: RwSignal<String>,
    boundary: RwSignal<String>,
    adjacent: RwSignal<String>,
    long_axis: RwSignal<String>,
    short_axis: RwSignal<String>,
    /// "", solid, part_solid, ground_glass.
    nodule_type: RwSignal<String>,
    features: RwSignal<Vec<String>>,
    solid_long_axis: RwSignal<String>,
    solid_short_axis: RwSignal<String>,
    /// How the axes were measured (from a viewer measurement), and which measurement.
    basis: RwSignal<String>,
    measurement_ids: RwSignal<Vec<String>>,
    /// The same nodule on the prior exam: date (YYYY-MM-DD) and axes, as the radiologist matched it.
    prior_date: RwSignal<String>,
    prior_long: RwSignal<String>,
    prior_short: RwSignal<String>,
}

/// Nodule features the guidelines weigh, as the form offers them.
const NODULE_FEATURES: [(&str, &str); 5] = [
    ("spiculation", "毛刺 / spiculation"),
    ("perifissural", "叶间裂旁 / perifissural"),
    ("juxtapleural", "胸膜下 / juxtapleural"),
    ("benign_calcification", "良性钙化 / benign calcification"),
    ("fat", "含脂肪 / contains fat"),
];

const TEXT_FIELDS: [(&str, &str); 6] = [
    ("location", "部位 / Location"),
    ("feature", "所见 / Finding"),
    ("morphology", "形态 / Morphology"),
    ("density", "密度 / Density"),
    ("boundary", "边界 / Boundary"),
    ("adjacent_structures", "邻近结构 / Adjacent structures"),
];

impl Row {
    fn from(finding: &Value) -> Row {
        let text = |key: &str| RwSignal::new(finding[key].as_str().unwrap_or_default().to_string());
        let axis =
            |key: &str| RwSignal::new(finding["measurements"][key].as_f64().map(|v| v.to_string()).unwrap_or_default());
        let list = |key: &str| {
            let items =
                finding[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
            RwSignal::new(items.unwrap_or_default())
        };
        Row {
            original: finding.clone(),
            location: text("location"),
            feature: text("feature"),
            morphology: text("morphology"),
            density: text("density"),
            boundary: text("boundary"),
            adjacent: text("adjacent_structures"),
            long_axis: axis("long_axis"),
            short_axis: axis("short_axis"),
            nodule_type: text("nodule_type"),
            features: list("nodule_features"),
            solid_long_axis: axis("solid_long_axis"),
            solid_short_axis: axis("solid_short_axis"),
            basis: RwSignal::new(finding["measurements"]["basis"].as_str().unwrap_or_default().to_string()),
            measurement_ids: list("measurement_ids"),
            prior_date: RwSignal::new(finding["prior"]["study_date"].as_str().unwrap_or_default().to_string()),
            prior_long: RwSignal::new(
                finding["prior"]["long_axis"].as_f64().map(|v| v.to_string()).unwrap_or_default(),
            ),
            prior_short: RwSignal::new(
                finding["prior"]["short_axis"].as_f64().map(|v| v.to_string()).unwrap_or_default(),
            ),
        }
    }

    /// Subscribes to every field, for views computed from the whole form.
    fn track(&self) {
        for (key, _) in TEXT_FIELDS {
            self.field(key).track();
        }
        for field in [
            self.long_axis,
            self.short_axis,
            self.nodule_type,
            self.solid_long_axis,
            self.solid_short_axis,
            self.prior_date,
            self.prior_long,
            self.prior_short,
        ] {
            field.track();
        }
        self.features.track();
    }

    fn field(&self, key: &str) -> RwSignal<String> {
        match key {
            "location" => self.location,
            "feature" => self.feature,
            "morphology" => self.morphology,
            "density" => self.density,
            "boundary" => self.boundary,
            _ => self.adjacent,
        }
    }

    /// The finding as JSON: the original with the edited fields; no longer `ai_drafted` once changed.
    fn to_json(&self) -> Value {
        let mut f = if self.original.is_object() { self.original.clone() } else { json!({}) };
        for (key, _) in TEXT_FIELDS {
            let value = self.field(key).get_untracked().trim().to_string();
            if value.is_empty() && key != "location" && key != "feature" {
                f.as_object_mut().map(|o| o.remove(key));
            } else {
                f[key] = json!(value);
            }
        }
        let number = |field: RwSignal<String>| field.get_untracked().trim().parse::<f64>().ok().filter(|v| *v > 0.0);
        let kind = self.nodule_type.get_untracked();
        match number(self.long_axis) {
            Some(long) => {
                let mut m = f["measurements"].as_object().cloned().unwrap_or_default();
                m.insert("long_axis".into(), json!(long));
                m.insert("unit".into(), json!("mm"));
                let mut set = |key: &str, value: Option<f64>| match value {
                    Some(v) => m.insert(key.into(), json!(v)),
                    None => m.remove(key),
                };
                set("short_axis", number(self.short_axis));
                let part_solid = kind == "part_solid";
                set("solid_long_axis", number(self.solid_long_axis).filter(|_| part_solid));
                set("solid_short_axis", number(self.solid_short_axis).filter(|_| part_solid));
                match self.basis.get_untracked().trim() {
                    "" => m.remove("basis"),
                    basis => m.insert("basis".into(), json!(basis)),
                };
                f["measurements"] = Value::Object(m);
            }
            None => {
                f.as_object_mut().map(|o| o.remove("measurements"));
            }
        }
        let mut set = |key: &str, value: Option<Value>| match value {
            Some(v) => f[key] = v,
            None => {
                f.as_object_mut().map(|o| o.remove(key));
            }
        };
        set("nodule_type", (!kind.is_empty()).then(|| json!(kind)));
        let features = self.features.get_untracked();
        set("nodule_features", (!features.is_empty() && !kind.is_empty()).then(|| json!(features)));
        let ids = self.measurement_ids.get_untracked();
        set("measurement_ids", (!ids.is_empty()).then(|| json!(ids)));
        let prior_date = self.prior_date.get_untracked().trim().to_string();
        let prior = number(self.prior_long).filter(|_| !prior_date.is_empty()).map(|long| {
            let mut p = json!({"study_date": prior_date, "long_axis": long});
            if let Some(short) = number(self.prior_short) {
                p["short_axis"] = json!(short);
            }
            p
        });
        set("prior", prior);
        // The server writes the change from the sizes; a stale one is not sent back.
        set("change", None);
        if f != self.original {
            f.as_object_mut().map(|o| o.remove("ai_drafted"));
        }
        f
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "draft" => tr("草稿 / draft"),
        "signed" => tr("已签发，待审核 / signed"),
        "reviewed" => tr("已审核 / reviewed"),
        "returned" => tr("已退回修改 / returned"),
        "superseded" => tr("已被修订 / superseded"),
        _ => "—",
    }
}

/// The model's latest report draft in the study's conversation, if any.
fn latest_ai_draft(history: &History) -> Option<Value> {
    history.messages.iter().rev().find_map(|m| {
        let report = m.details.as_ref()?.get("report")?;
        (report.is_object() && report.get("error").is_none()).then(|| report.clone())
    })
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

/// `prior_study`: the patient's latest earlier study, whose measurements are offered as the prior size of
/// a finding's nodule.
#[component]
pub fn ReportPanel(study_id: i64, ct: bool, prior_study: Signal<Option<StudySummary>>) -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let versions = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<Value>>(format!("/api/v1/studies/{study_id}/reports"))
    });
    let me = LocalResource::new(|| api::get::<Me>("/api/v1/auth/me".into()));
    let history = LocalResource::new(move || {
        refresh.track();
        api::get::<History>(format!("/api/v1/studies/{study_id}/chat"))
    });
    let current = RwSignal::new(None::<Value>);
    let summary = RwSignal::new(String::new());
    let recommendation = RwSignal::new(String::new());
    let rows = RwSignal::new(Vec::<Row>::new());
    let comment = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let screening = RwSignal::new(false);
    // The study's viewer measurements, to fill a finding's axes from (asked again when the list opens).
    let measurements =
        LocalResource::new(move || api::get::<SavedList>(format!("/api/v1/studies/{study_id}/measurements")));
    let prior_measurements = LocalResource::new(move || {
        let prior = prior_study.get();
        async move {
            let Some(prior) = prior else { return (None, Vec::new()) };
            let list = api::get::<SavedList>(format!("/api/v1/studies/{}/measurements", prior.id)).await;
            (Some(prior), list.map(|l| l.measurements).unwrap_or_default())
        }
    });
    // The prior exam's measurement at the place of finding `ids`' measurement, with the prior exam's date.
    let suggestion = move |ids: Vec<String>| {
        let current = measurements.get()?.ok()?.measurements.into_iter().find(|m| ids.contains(&m.id.to_string()))?;
        let (prior, candidates) = prior_measurements.get()?;
        let date = display_date(&prior?.study_date);
        let found = match_prior(&current, &candidates)?;
        let (long, short, _) = measurement_axes(found)?;
        Some((date, long, short, outcome_text(&found.outcome, &found.basis.units), found.id))
    };
    let fill = move |report: &Value| {
        summary.set(report["report_summary"].as_str().unwrap_or_default().to_string());
        recommendation.set(report["recommendation"].as_str().unwrap_or_default().to_string());
        screening.set(report["lung_cancer_screening"].as_bool().unwrap_or(false));
        rows.set(report["findings"].as_array().map(|a| a.iter().map(Row::from).collect()).unwrap_or_default());
    };
    Effect::new(move |_| {
        if let Some(Ok(list)) = versions.get() {
            let latest = list.into_iter().next();
            if let Some(v) = &latest {
                fill(&v["report"]);
            }
            current.set(latest);
        }
    });
    let can = move |p: &str| me.get().and_then(|m| m.ok()).is_some_and(|m| m.can(p));
    let state = move || current.get().and_then(|v| v["state"].as_str().map(str::to_string)).unwrap_or_default();
    let editable =
        move || matches!(state().as_str(), "" | "draft" | "returned" | "signed" | "reviewed") && can("report_sign");
    let report_id = move || current.get_untracked().and_then(|v| v["id"].as_i64());
    let build = move || {
        let mut report =
            current.get_untracked().map(|v| v["report"].clone()).unwrap_or_else(|| json!({"exam_id": "-"}));
        report["report_summary"] = json!(summary.get_untracked().trim());
        report["recommendation"] = json!(recommendation.get_untracked().trim());
        report["findings"] = Value::Array(rows.get_untracked().iter().map(Row::to_json).collect());
        if screening.get_untracked() {
            report["lung_cancer_screening"] = json!(true);
        } else {
            report.as_object_mut().map(|o| o.remove("lung_cancer_screening"));
        }
        report
    };
    // What is on screen as the report model, for the numbers the server computes again on saving: built
    // once per edit, read by the Lung-RADS box and by every finding's change.
    let on_screen = Memo::new(move |_| {
        rows.with(|r| r.iter().for_each(Row::track));
        screening.track();
        current.track();
        serde_json::from_value::<report::Report>(build()).ok()
    });
    let lung_rads = move || {
        if !screening.get() {
            return None;
        }
        on_screen.with(|r| match crate::i18n::lang() {
            crate::i18n::Lang::Zh => r.as_ref()?.lung_rads(),
            crate::i18n::Lang::En => r.as_ref()?.lung_rads_en(),
        })
    };
    // Finding `i`'s change against its prior size, or why there is none.
    let change_text = move |i: usize| {
        on_screen.with(|report| {
            let report = report.as_ref()?;
            Some(match report.change_of(report.findings.get(i)?)? {
                Ok(change) => crate::i18n::choose(change.summary.zh, change.summary.en),
                Err(e) => format!("{}{e}", tr("无法对比： / cannot compare: ")),
            })
        })
    };
    // One step of the workflow; the panel reloads after it.
    let step = move |path: String, method: &'static str, body: Value, done: &'static str| {
        status.set("…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let result = match method {
                "PUT" => api::put(&path, &body).await,
                _ => api::post(&path, &body).await,
            };
            match result {
                Ok(_) => {
                    status.set(done.into());
                    refresh.update(|n| *n += 1);
                }
                Err(e) => status.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (path, method, body, done);
    };
    let start = move |from_ai: bool| {
        let draft = if from_ai { history.get().and_then(|h| h.ok()).as_ref().and_then(latest_ai_draft) } else { None };
        let report = draft
            .clone()
            .unwrap_or_else(|| json!({"exam_id": "-", "report_summary": "", "findings": [], "recommendation": ""}));
        step(
            format!("/api/v1/studies/{study_id}/reports"),
            "POST",
            json!({"report": report, "ai_draft": draft}),
            tr("已创建 / created"),
        );
    };
    let save = move |_| {
        if let Some(id) = report_id() {
            step(format!("/api/v1/reports/{id}"), "PUT", json!({"report": build()}), tr("已保存 / saved"));
        }
    };
    let sign = move |_| {
        let Some(id) = report_id() else { return };
        // What is on screen is what gets signed: save first, then sign.
        status.set("…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let saved = api::put(&format!("/api/v1/reports/{id}"), &json!({"report": build()})).await;
            let signed = match saved {
                Ok(_) => api::post(&format!("/api/v1/reports/{id}/sign"), &json!({})).await,
                Err(e) => Err(e),
            };
            match signed {
                Ok(_) => {
                    status.set(tr("已签发 / signed").into());
                    refresh.update(|n| *n += 1);
                }
                Err(e) => status.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    };
    let review = move |decision: &'static str| {
        if let Some(id) = report_id() {
            let body = json!({"decision": decision, "comment": comment.get_untracked().trim()});
            let done =
                if decision == "countersign" { tr("已会签 / countersigned") } else { tr("已退回 / returned") };
            step(format!("/api/v1/reports/{id}/review"), "POST", body, done);
        }
    };
    let amend = move |_| {
        if let Some(id) = report_id() {
            let body = json!({"report": build(), "reason": comment.get_untracked().trim()});
            step(format!("/api/v1/reports/{id}/amend"), "POST", body, tr("已生成修订版本 / amended"));
        }
    };

    let indexed_rows = move || rows.get().into_iter().enumerate().collect::<Vec<(usize, Row)>>();

    view! {
        <section class="report-panel" aria-label=tr("结构化报告 / Structured report")>
            <h2>{tr("结构化报告 / Report")}</h2>
            <Show when=move || current.get().is_none() && can("report_sign")>
                <p class="report-start">
                    <button class="report-from-ai" disabled=move || history.get().and_then(|h| h.ok()).as_ref().and_then(latest_ai_draft).is_none()
                        on:click=move |_| start(true)>{tr("从AI草稿开始 / From the AI draft")}</button>
                    " "
                    <button class="report-blank" on:click=move |_| start(false)>{tr("空白报告 / Blank report")}</button>
                </p>
            </Show>
            <Show when=move || current.get().is_some()>
                <p class="report-state">
                    {move || current.get().map(|v| format!(
                        "{} · {}{}",
                        state_label(v["state"].as_str().unwrap_or("")),
                        tr(&format!("第 {0} 版 / version {0}", v["version"].as_i64().unwrap_or(1))),
                        v["content_sha256"].as_str().map(|h| format!(" · SHA-256 {}…", &h[..12.min(h.len())])).unwrap_or_default()
                    ))}
                </p>
                <ul class="report-signatures">
                    {move || current.get().and_then(|v| v["report"]["signatures"].as_array().cloned()).unwrap_or_default().into_iter().map(|s| view! {
                        <li>{format!("{}：{}（{}）", if s["role"] == "department_head" { tr("审核医师 / Reviewer") } else { tr("报告医师 / Reporting radiologist") },
                            s["name"].as_str().unwrap_or(""), api::display_time(s["signed_at"].as_str().unwrap_or("")))}</li>
                    }).collect_view()}
                </ul>
                <Show when=move || current.get().and_then(|v| v["review_comment"].as_str().map(str::to_string)).is_some()>
                    <p class="report-comment">{tr("审核意见 / Review: ")}{move || current.get().and_then(|v| v["review_comment"].as_str().map(str::to_string)).unwrap_or_default()}</p>
                </Show>
                <div class="report-form">
                    <label>{tr("检查所见与印象 / Findings and impression")}
                        <textarea name="report_summary" rows="3" prop:value=move || summary.get()
                            on:input=move |ev| summary.set(event_target_value(&ev)) prop:readonly=move || !editable()/>
                    </label>
                    <div class="findings">
                        <For each=indexed_rows key=|(i, _)| *i let:item>
                            {
                                let (i, row) = item;
                                let text_inputs = TEXT_FIELDS.iter().map(|(key, label)| {
                                    let label = tr(label);
                                    let field = row.field(key);
                                    view! { <label>{label}<input aria-label=format!("{label} {}", i + 1) prop:value=move || field.get()
                                        on:input=move |ev| field.set(event_target_value(&ev))/></label> }
                                }).collect_view();
                                let (long, short) = (row.long_axis, row.short_axis);
                                let (solid_long, solid_short) = (row.solid_long_axis, row.solid_short_axis);
                                let (kind, features, basis, ids) = (row.nodule_type, row.features, row.basis, row.measurement_ids);
                                let (prior_date, prior_long, prior_short) = (row.prior_date, row.prior_long, row.prior_short);
                                let feature_boxes = NODULE_FEATURES.iter().map(|(key, label)| {
                                    let label = tr(label);
                                    let key = key.to_string();
                                    let checked = { let key = key.clone(); move || features.with(|f| f.contains(&key)) };
                                    view! { <label class="nodule-feature"><input type="checkbox" aria-label=format!("{label} {}", i + 1)
                                        prop:checked=checked
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            features.update(|f| { f.retain(|x| *x != key); if on { f.push(key.clone()); } });
                                        }/>{label}</label> }
                                }).collect_view();
                                view! {
                                    <fieldset class="finding">
                                        <legend>{tr(&format!("第 {0} 条 / Finding {0}", i + 1)).to_string()}</legend>
                                        {text_inputs}
                                        <label>{tr("长径（毫米） / Long axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("长径 / Long axis"), i + 1)
                                            prop:value=move || long.get() on:input=move |ev| long.set(event_target_value(&ev))/></label>
                                        <label>{tr("短径（毫米） / Short axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("短径 / Short axis"), i + 1)
                                            prop:value=move || short.get() on:input=move |ev| short.set(event_target_value(&ev))/></label>
                                        <label>{tr("填入测量 / From measurement")}
                                            <select class="use-measurement" aria-label=format!("{} {}", tr("测量 / Measurement"), i + 1)
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
                                            <select class="nodule-type" aria-label=format!("{} {}", tr("结节类型 / Nodule type"), i + 1)
                                                prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                                                <option value="">{tr("非结节 / —")}</option>
                                                <option value="solid">{tr("实性 / solid")}</option>
                                                <option value="part_solid">{tr("部分实性 / part-solid")}</option>
                                                <option value="ground_glass">{tr("磨玻璃 / ground glass")}</option>
                                            </select>
                                        </label>
                                        <Show when=move || kind.get() == "part_solid">
                                            <label>{tr("实性成分长径（毫米） / Solid component long axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("实性成分长径 / Solid long axis"), i + 1)
                                                prop:value=move || solid_long.get() on:input=move |ev| solid_long.set(event_target_value(&ev))/></label>
                                            <label>{tr("实性成分短径（毫米） / Solid component short axis (mm)")}<input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("实性成分短径 / Solid short axis"), i + 1)
                                                prop:value=move || solid_short.get() on:input=move |ev| solid_short.set(event_target_value(&ev))/></label>
                                        </Show>
                                        <Show when=move || !kind.get().is_empty()>
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
                                        <label>{tr("既往检查日期 / Prior exam date")}<input type="date" class="prior-date" aria-label=format!("{} {}", tr("既往日期 / Prior date"), i + 1)
                                            prop:value=move || prior_date.get() on:input=move |ev| prior_date.set(event_target_value(&ev))/></label>
                                        <label>{tr("既往长径 × 短径（毫米） / Prior long × short axis (mm)")}
                                            <span class="prior-axes">
                                                <input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("既往长径 / Prior long axis"), i + 1)
                                                    prop:value=move || prior_long.get() on:input=move |ev| prior_long.set(event_target_value(&ev))/>
                                                <input class="axis" inputmode="decimal" aria-label=format!("{} {}", tr("既往短径 / Prior short axis"), i + 1)
                                                    prop:value=move || prior_short.get() on:input=move |ev| prior_short.set(event_target_value(&ev))/>
                                            </span>
                                        </label>
                                        {move || change_text(i).map(|t| view! { <p class="finding-change">{t}</p> })}
                                    </fieldset>
                                }
                            }
                        </For>
                    </div>
                    <button class="add-finding" on:click=move |_| rows.update(|r| r.push(Row::from(&json!({}))))>{tr("添加所见 / Add a finding")}</button>
                    <Show when=move || ct || screening.get()>
                        <label class="screening">
                            <input type="checkbox" class="screening-toggle" prop:checked=move || screening.get()
                                on:change=move |ev| screening.set(event_target_checked(&ev))/>
                            {tr("低剂量CT肺癌筛查（按 Lung-RADS v2022 分类） / Low-dose CT lung cancer screening (Lung-RADS v2022)")}
                        </label>
                    </Show>
                    {move || lung_rads().map(|g| view! {
                        <div class="lung-rads" role="status">
                            <p class="lung-rads-category">{format!("Lung-RADS {}", g.category)}</p>
                            <p class="lung-rads-management">{tr("管理建议： / Management: ")}{g.management}</p>
                            <p class="lung-rads-basis">{tr("▲ 依据： / ▲ Basis: ")}{g.basis}</p>
                        </div>
                    })}
                    <label>{tr("建议 / Recommendation")}
                        <textarea name="recommendation" rows="2" prop:value=move || recommendation.get()
                            on:input=move |ev| recommendation.set(event_target_value(&ev)) prop:readonly=move || !editable()/>
                    </label>
                </div>
                <p class="report-actions">
                    <Show when=move || matches!(state().as_str(), "draft" | "returned") && can("report_sign")>
                        <button class="report-save" on:click=save>{tr("保存 / Save")}</button>
                        <button class="report-sign" on:click=sign>{tr("签发 / Sign")}</button>
                    </Show>
                    <Show when=move || state() == "signed" && can("report_review")>
                        <input class="review-comment" placeholder=tr("审核意见（退回时必填） / comment") on:input=move |ev| comment.set(event_target_value(&ev))/>
                        <button class="report-countersign" on:click=move |_| review("countersign")>{tr("会签 / Countersign")}</button>
                        <button class="report-return" on:click=move |_| review("return")>{tr("退回 / Return")}</button>
                    </Show>
                    <Show when=move || matches!(state().as_str(), "signed" | "reviewed") && can("report_sign")>
                        <input class="amend-reason" placeholder=tr("修订原因 / reason") on:input=move |ev| comment.set(event_target_value(&ev))/>
                        <button class="report-amend" on:click=amend>{tr("修订 / Amend")}</button>
                    </Show>
                </p>
                <p class="report-exports">
                    {tr("导出 / Export: ")}
                    {move || {
                        let id = report_id().unwrap_or_default();
                        let signed = matches!(state().as_str(), "signed" | "reviewed" | "superseded");
                        [("pdf", "PDF"), ("hl7", "HL7"), ("fhir", "FHIR"), ("json", "JSON")].into_iter()
                            .filter(move |(f, _)| signed || *f == "json")
                            .map(move |(format, label)| view! {
                                <a class="export" data-format=format href=format!("/api/v1/reports/{id}/export?format={format}") download="">{label}</a>" "
                            }).collect_view()
                    }}
                </p>
                <Show when=move || current.get().is_some_and(|v| v["changes_since_ai_draft"].as_array().is_some_and(|c| !c.is_empty()))>
                    <details class="report-changes">
                        <summary>{tr("AI草稿之后的修改 / Changes since the AI draft")}</summary>
                        <ul>
                            {move || current.get().and_then(|v| v["changes_since_ai_draft"].as_array().cloned()).unwrap_or_default().into_iter().map(|c| view! {
                                <li><code>{c["path"].as_str().unwrap_or("").to_string()}</code>"： "{short(&c["before"])}" → "{short(&c["after"])}</li>
                            }).collect_view()}
                        </ul>
                    </details>
                </Show>
                <p class="report-deliveries">
                    {move || {
                        let list = current.get().and_then(|v| v["deliveries"].as_array().cloned()).unwrap_or_default();
                        if list.is_empty() { return String::new(); }
                        let delivered = list.iter().filter(|d| d["state"] == "delivered").count();
                        tr(&format!("投递医院信息系统：{delivered}/{0} 已送达 / Delivered to the HIS: {delivered} of {0}", list.len())).to_string()
                    }}
                </p>
            </Show>
            <p class="form-status" role="status">{move || status.get()}</p>
        </section>
    }
    // Erased: the study page's view type is deep enough without this panel's.
    .into_any()
}

/// A changed value, short enough for one line.
fn short(value: &Value) -> String {
    let text = match value {
        Value::Null => tr("（无） / (none)").to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::measurements::{ImageSize, SavedBasis};
    use measure::Point;
    use measure::shape::{Outcome, Shape};

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
}
