//! The study's structured report beside the image: findings in the five-part frame (部位 形态 密度 边界
//! 邻近结构) with their axes in 毫米, the summary and the recommendation; started from the model's latest
//! draft or blank; saved, signed, countersigned or returned, and amended, as the signed-in role allows; the
//! changes since the AI draft for the reviewer; templates and phrases inserted by click or short code;
//! exports. The server enforces every rule again. Every step has a key: G drafts, M goes to the template
//! code, Ctrl+Enter signs, J opens the next unread study.
//!
//! The form edits the typed `report::Report` of the latest version: a signal per field ([`finding`]), the
//! report rebuilt from them for each save and for the live Lung-RADS category.

mod finding;
mod templates;
mod version;

use leptos::prelude::*;
use report::Report;
use report::model::Finding;
use serde_json::{Value, json};

use crate::api::{self, History, Me, StudySummary};
use crate::i18n::tr;
use crate::templates::{Template, TemplateList};
use crate::viewer::measurements::SavedList;
use finding::{FindingFields, FindingForm};
use templates::{NewTemplate, TemplateBar};
use version::{ExportLinks, Version, VersionHeader, VersionTrail};

/// The model's latest report draft in the study's conversation, if any. It stays the JSON the model
/// wrote: it goes to the server as it is, which checks it.
fn latest_ai_draft(history: &History) -> Option<Value> {
    history.messages.iter().rev().find_map(|m| {
        let report = m.details.as_ref()?.get("report")?;
        (report.is_object() && report.get("error").is_none()).then(|| report.clone())
    })
}

/// `prior_study`: the patient's latest earlier study, whose measurements are offered as the prior size of
/// a finding's nodule.
#[component]
pub fn ReportPanel(study_id: i64, ct: bool, prior_study: Signal<Option<StudySummary>>) -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let versions = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<Version>>(format!("/api/v1/studies/{study_id}/reports"))
    });
    let me = LocalResource::new(|| api::get::<Me>("/api/v1/auth/me".into()));
    let history = LocalResource::new(move || {
        refresh.track();
        api::get::<History>(format!("/api/v1/studies/{study_id}/chat"))
    });
    // The latest version as the server has it, and the form's fields over its report.
    let current = RwSignal::new(None::<Version>);
    let summary = RwSignal::new(String::new());
    let recommendation = RwSignal::new(String::new());
    let rows = RwSignal::new(Vec::<FindingForm>::new());
    let screening = RwSignal::new(false);
    let comment = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
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
    let fill = move |report: &Report| {
        summary.set(report.report_summary.clone());
        recommendation.set(report.recommendation.clone());
        screening.set(report.lung_cancer_screening);
        rows.set(report.findings.iter().cloned().map(FindingForm::new).collect());
    };
    Effect::new(move |_| {
        if let Some(Ok(list)) = versions.get() {
            let latest = list.into_iter().next();
            if let Some(v) = &latest {
                fill(&v.report);
            }
            current.set(latest);
        }
    });
    let can = move |p: &str| me.get().and_then(|m| m.ok()).is_some_and(|m| m.can(p));
    let state = move || current.with(|v| v.as_ref().map(|v| v.state.clone())).unwrap_or_default();
    let editable =
        move || matches!(state().as_str(), "" | "draft" | "returned" | "signed" | "reviewed") && can("report_sign");
    let report_id = move || current.with_untracked(|v| v.as_ref().map(|v| v.id));
    // The current version's report with what the form holds: what is saved, signed or amended.
    let build = move || {
        let mut report = current.with_untracked(|v| v.as_ref().map(|v| v.report.clone()))?;
        report.report_summary = summary.get_untracked().trim().to_string();
        report.recommendation = recommendation.get_untracked().trim().to_string();
        report.findings = rows.with_untracked(|r| r.iter().map(FindingForm::finding).collect());
        report.lung_cancer_screening = screening.get_untracked();
        Some(report)
    };
    // What is on screen, for the numbers the server computes again on saving: built once per edit, read
    // by the Lung-RADS box and by every finding's change.
    let on_screen = Memo::new(move |_| {
        rows.with(|r| r.iter().for_each(FindingForm::track));
        screening.track();
        current.track();
        build()
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
        // Blank: the seed's report with nothing in it.
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
    // The AI's structured draft from the page: the model writes it (told the study's saved measurements),
    // the progress shows here, and the report starts from it.
    let drafting = RwSignal::new(false);
    let draft_abort = StoredValue::new_local(None::<crate::chat::Abort>);
    let generate = move || {
        if drafting.get_untracked() {
            return;
        }
        drafting.set(true);
        status.set(tr("AI 正在生成结构化报告… / The AI is drafting the report…").into());
        let body = json!({"message": "生成结构化报告", "mode": "report_draft"}).to_string();
        let written = StoredValue::new(0usize);
        let failed = StoredValue::new(None::<String>);
        // This answer's own draft (not an older one from the conversation), as its `done` event brings it.
        let drafted = StoredValue::new(None::<Value>);
        let on_event = move |name: String, data: String| match name.as_str() {
            "token" => {
                let piece = serde_json::from_str::<Value>(&data).ok();
                let n = piece.as_ref().and_then(|t| t["text"].as_str()).map_or(0, |t| t.chars().count());
                written.update_value(|w| *w += n);
                let w = written.get_value();
                status.set(
                    tr(&format!(
                        "AI 正在生成结构化报告…（已写 {w} 字） / The AI is drafting the report… ({w} characters)"
                    ))
                    .to_string(),
                );
            }
            "done" => {
                let done = serde_json::from_str::<Value>(&data).ok();
                let report = done.and_then(|d| d.get("report").cloned());
                drafted.set_value(report.filter(|r| r.is_object() && r.get("error").is_none()));
            }
            "error" => {
                failed.set_value(Some(serde_json::from_str::<api::ApiError>(&data).map(|e| e.text()).unwrap_or(data)))
            }
            _ => {}
        };
        leptos::task::spawn_local(async move {
            let streamed = crate::chat::stream(study_id, body, draft_abort, on_event).await;
            drafting.set(false);
            if let Some(message) = failed.get_value().or_else(|| streamed.err().map(|e| e.text())) {
                status.set(message);
                return;
            }
            match drafted.get_value() {
                Some(draft) => step(
                    format!("/api/v1/studies/{study_id}/reports"),
                    "POST",
                    json!({"report": draft, "ai_draft": draft}),
                    tr("已由AI草稿创建，请逐项核对 / created from the AI draft: check every field"),
                ),
                None => status.set(
                    tr("AI 未给出可用的草稿，请重试或从空白报告开始 / The AI gave no usable draft: try again or start blank")
                        .into(),
                ),
            }
        });
    };
    let save = move |_| {
        if let (Some(id), Some(report)) = (report_id(), build()) {
            step(format!("/api/v1/reports/{id}"), "PUT", json!({"report": report}), tr("已保存 / saved"));
        }
    };
    // Set when this page signed the report: the next study's link then takes the keyboard's focus.
    let signed_here = RwSignal::new(false);
    let sign = move || {
        let (Some(id), Some(report)) = (report_id(), build()) else { return };
        // What is on screen is what gets signed: save first, then sign.
        status.set("…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let saved = api::put(&format!("/api/v1/reports/{id}"), &json!({"report": report})).await;
            let signed = match saved {
                Ok(_) => api::post(&format!("/api/v1/reports/{id}/sign"), &json!({})).await,
                Err(e) => Err(e),
            };
            match signed {
                Ok(_) => {
                    status.set(tr("已签发 / signed").into());
                    signed_here.set(true);
                    refresh.update(|n| *n += 1);
                }
                Err(e) => status.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, report);
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
        if let (Some(id), Some(report)) = (report_id(), build()) {
            let body = json!({"report": report, "reason": comment.get_untracked().trim()});
            step(format!("/api/v1/reports/{id}/amend"), "POST", body, tr("已生成修订版本 / amended"));
        }
    };

    // Once signed: the next study nobody has begun a report for, in the worklist's order (newest first).
    // A whole page load (rel="external"): the study page's parts each take their study once.
    let next_study = LocalResource::new(move || {
        let signed = matches!(state().as_str(), "signed" | "reviewed");
        async move {
            if !signed {
                return None;
            }
            let list = api::get::<crate::studies::StudyList>("/api/v1/studies?limit=500".into()).await.ok()?;
            list.studies.into_iter().find(|s| s.id != study_id && s.status == "new").map(|s| s.id)
        }
    });

    // Templates: a new report from one, or its parts appended to the report on screen (a phrase adds to
    // what is written, it never replaces it).
    let templates = LocalResource::new(|| api::get::<TemplateList>("/api/v1/templates".into()));
    let template_code = NodeRef::<leptos::html::Input>::new();
    let apply_template = Callback::new(move |template: Template| {
        let content = template.content;
        if current.with_untracked(Option::is_none) {
            let report = json!({"exam_id": "-", "report_summary": content.report_summary,
                                "findings": content.findings, "recommendation": content.recommendation});
            let body = json!({"report": report, "ai_draft": null});
            step(
                format!("/api/v1/studies/{study_id}/reports"),
                "POST",
                body,
                tr("已按模板创建 / created from the template"),
            );
            return;
        }
        if !editable() {
            return;
        }
        let append = |field: RwSignal<String>, text: &str| {
            if !text.trim().is_empty() {
                field.update(|f| *f = if f.trim().is_empty() { text.to_string() } else { format!("{f}\n{text}") });
            }
        };
        append(summary, &content.report_summary);
        append(recommendation, &content.recommendation);
        rows.update(|r| r.extend(content.findings.into_iter().map(FindingForm::new)));
        status.set(format!("{}{}", tr("已插入模板： / Inserted: "), content.name));
    });
    // What is on screen as a new template: nothing of this study's (measurements, cited images, prior
    // sizes) goes with it.
    let save_template = Callback::new(move |(code, name, site): NewTemplate| {
        let Some(report) = build() else { return };
        let findings: Vec<Finding> = report
            .findings
            .into_iter()
            .map(|f| Finding {
                measurements: None,
                prior: None,
                change: None,
                measurement_ids: Vec::new(),
                image_ids: Vec::new(),
                ai_drafted: false,
                ..f
            })
            .collect();
        let body = json!({"scope": if site { "site" } else { "personal" }, "code": code, "name": name,
                          "report_summary": report.report_summary, "findings": findings,
                          "recommendation": report.recommendation});
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match api::post("/api/v1/templates", &body).await {
                Ok(_) => {
                    status.set(tr("模板已保存 / template saved").into());
                    templates.refetch();
                }
                Err(e) => status.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = body;
    });
    let save_as = Signal::derive(move || current.with(Option::is_some).then_some(save_template));
    let site_editor = Signal::derive(move || can("report_review"));
    let templates_usable = move || can("report_sign") && (current.with(Option::is_none) || editable());

    // The keys of the report's steps. Ctrl+Enter signs also from a report field (it signs what is on
    // screen), but not from the chat box, whose Enter is its own.
    let next_link = NodeRef::<leptos::html::A>::new();
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            if crate::viewer::browser::typing_outside(&ev, ".report-panel") {
                return;
            }
            if matches!(state().as_str(), "draft" | "returned") && can("report_sign") {
                ev.prevent_default();
                sign();
            }
            return;
        }
        if crate::viewer::browser::typing(&ev) || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().to_lowercase().as_str() {
            "g" if current.with_untracked(Option::is_none) && can("report_sign") => generate(),
            "m" => {
                if let Some(input) = template_code.get_untracked() {
                    ev.prevent_default();
                    let _ = input.focus();
                }
            }
            "j" => {
                if let Some(link) = next_link.get_untracked() {
                    link.click();
                }
            }
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());
    Effect::new(move |_| {
        if let Some(link) = next_link.get()
            && signed_here.get()
        {
            let _ = link.focus();
        }
    });

    let indexed_rows = move || rows.get().into_iter().enumerate().collect::<Vec<(usize, FindingForm)>>();

    view! {
        <section class="report-panel" aria-label=tr("结构化报告 / Structured report")>
            <h2>{tr("结构化报告 / Report")}</h2>
            <Show when=move || current.get().is_none() && can("report_sign")>
                <p class="report-start">
                    <button class="report-generate" disabled=move || drafting.get() on:click=move |_| generate()
                        title=tr("快捷键 G / key G")>
                        {tr("生成结构化报告 / Generate the structured report")}</button>
                    " "
                    <button class="report-from-ai" disabled=move || history.get().and_then(|h| h.ok()).as_ref().and_then(latest_ai_draft).is_none()
                        on:click=move |_| start(true)>{tr("从AI草稿开始 / From the AI draft")}</button>
                    " "
                    <button class="report-blank" on:click=move |_| start(false)>{tr("空白报告 / Blank report")}</button>
                </p>
            </Show>
            <Show when=templates_usable>
                <TemplateBar templates code_input=template_code apply=apply_template save_as site_editor/>
            </Show>
            <Show when=move || current.get().is_some()>
                <VersionHeader current/>
                <div class="report-form">
                    <label>{tr("检查所见与印象 / Findings and impression")}
                        <textarea name="report_summary" rows="3" prop:value=move || summary.get()
                            on:input=move |ev| summary.set(event_target_value(&ev)) prop:readonly=move || !editable()/>
                    </label>
                    <div class="findings">
                        // Keyed by the form as well as its place: a save, sign or amend fills the list with new
                        // forms, and the rows on screen must be bound to those, not to the ones they replace.
                        <For each=indexed_rows key=|(i, form)| (*i, form.id) let:item>
                            {
                                let (index, form) = item;
                                view! { <FindingFields index form measurements prior_measurements on_screen/> }
                            }
                        </For>
                    </div>
                    <button class="add-finding" on:click=move |_| rows.update(|r| r.push(FindingForm::new(Finding::default())))>{tr("添加所见 / Add a finding")}</button>
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
                        <button class="report-sign" on:click=move |_| sign() title=tr("快捷键 Ctrl+Enter / key Ctrl+Enter")>{tr("签发 / Sign")}</button>
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
                {move || next_study.get().flatten().map(|id| view! {
                    <p class="next-study"><a node_ref=next_link href=format!("/studies/{id}") rel="external"
                        title=tr("快捷键 J / key J")>{tr("下一个未读检查 → / Next unread study →")}</a></p>
                })}
                <ExportLinks current/>
                <VersionTrail current/>
            </Show>
            <p class="form-status" role="status">{move || status.get()}</p>
            <p class="report-keys">{tr("快捷键：G 生成报告 · M 模板代码 · Ctrl+Enter 签发 · J 下一个未读检查 / Keys: G draft · M template code · Ctrl+Enter sign · J next unread study")}</p>
        </section>
    }
    // Erased: the study page's view type is deep enough without this panel's.
    .into_any()
}
