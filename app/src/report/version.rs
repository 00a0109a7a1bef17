//! A report version as the server lists it (GET /api/v1/studies/{id}/reports, server/src/reports.rs
//! `ReportView`), as far as the panel reads it; and the parts of the panel that show it: its state and
//! signatures, the export links, and what changed after the AI draft and where it was delivered.

use leptos::prelude::*;
use report::Report;
use serde::Deserialize;
use serde_json::Value;

use crate::api::display_time;
use crate::i18n::tr;

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Version {
    pub id: i64,
    /// draft, signed, reviewed, returned or superseded.
    pub state: String,
    /// 1 for the first; each amendment counts up.
    pub version: i64,
    pub content_sha256: Option<String>,
    pub review_comment: Option<String>,
    pub report: Report,
    /// What people changed after the model's draft (empty when the report did not start from one).
    #[serde(default)]
    pub changes_since_ai_draft: Vec<Change>,
    /// To the HIS: one row per target and report event.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

/// One difference from the AI draft: `findings[0].location` was "右肺上叶", is "右肺下叶". The values are
/// the JSON leaves the server compared, of any type.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Change {
    pub path: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Delivery {
    /// pending, delivered or failed.
    pub state: String,
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

/// The version's state, number and content hash; who signed it; the reviewer's comment.
#[component]
pub fn VersionHeader(#[prop(into)] current: Signal<Option<Version>>) -> impl IntoView {
    let review_comment = move || current.with(|v| v.as_ref().and_then(|v| v.review_comment.clone()));
    view! {
        <p class="report-state">
            {move || current.get().map(|v| format!(
                "{} · {}{}",
                state_label(&v.state),
                tr(&format!("第 {0} 版 / version {0}", v.version)),
                v.content_sha256.as_deref().map(|h| format!(" · SHA-256 {}…", &h[..12.min(h.len())])).unwrap_or_default()
            ))}
        </p>
        <ul class="report-signatures">
            {move || current.get().map(|v| v.report.signatures).unwrap_or_default().into_iter().map(|s| view! {
                <li>{format!("{}：{}（{}）", if s.role == "department_head" { tr("审核医师 / Reviewer") } else { tr("报告医师 / Reporting radiologist") },
                    s.name, display_time(&s.signed_at))}</li>
            }).collect_view()}
        </ul>
        <Show when=move || review_comment().is_some()>
            <p class="report-comment">{tr("审核意见 / Review: ")}{move || review_comment().unwrap_or_default()}</p>
        </Show>
    }
}

/// The report as a file: JSON always, PDF, HL7 and FHIR once signed.
#[component]
pub fn ExportLinks(#[prop(into)] current: Signal<Option<Version>>) -> impl IntoView {
    view! {
        <p class="report-exports">
            {tr("导出 / Export: ")}
            {move || {
                let (id, state) = current.with(|v| v.as_ref().map(|v| (v.id, v.state.clone()))).unwrap_or_default();
                let signed = matches!(state.as_str(), "signed" | "reviewed" | "superseded");
                [("pdf", "PDF"), ("hl7", "HL7"), ("fhir", "FHIR"), ("json", "JSON")].into_iter()
                    .filter(move |(f, _)| signed || *f == "json")
                    .map(move |(format, label)| view! {
                        <a class="export" data-format=format href=format!("/api/v1/reports/{id}/export?format={format}") download="">{label}</a>" "
                    }).collect_view()
            }}
        </p>
    }
}

/// For the reviewer, what people changed after the AI draft; and how many deliveries to the HIS arrived.
#[component]
pub fn VersionTrail(#[prop(into)] current: Signal<Option<Version>>) -> impl IntoView {
    let changes = move || current.with(|v| v.as_ref().map(|v| v.changes_since_ai_draft.clone())).unwrap_or_default();
    view! {
        <Show when=move || !changes().is_empty()>
            <details class="report-changes">
                <summary>{tr("AI草稿之后的修改 / Changes since the AI draft")}</summary>
                <ul>
                    {move || changes().into_iter().map(|c| view! {
                        <li><code>{c.path}</code>"： "{short(&c.before)}" → "{short(&c.after)}</li>
                    }).collect_view()}
                </ul>
            </details>
        </Show>
        <p class="report-deliveries">
            {move || {
                let list = current.with(|v| v.as_ref().map(|v| v.deliveries.clone())).unwrap_or_default();
                if list.is_empty() { return String::new(); }
                let delivered = list.iter().filter(|d| d.state == "delivered").count();
                tr(&format!("投递医院信息系统：{delivered}/{0} 已送达 / Delivered to the HIS: {delivered} of {0}", list.len())).to_string()
            }}
        </p>
    }
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
