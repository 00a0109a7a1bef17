//! The worklist (with the upload panel) and a study's page: its images in the viewer (the last answer's
//! heatmap and boxes laid over them), a prior study of the same patient beside them on request, and the
//! chat and report panels.

use crate::i18n::tr;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{self, StudyDetail, StudyList, display_date};
use crate::chat::{ChatPanel, Overlay};
use crate::studies::{RemoteStudy, Retrieved};
use crate::viewer::{ImageRef, ImageView, Placement, Shown};

#[component]
pub fn WorklistPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let studies = LocalResource::new(|| api::get::<StudyList>("/api/v1/studies?limit=100".into()));
    view! {
        <main class="worklist" data-hydrated=move || hydrated.get().to_string()>
            <header class="page-header">
                <h1>{tr("工作列表 / Worklist")}</h1>
                <a href="/">{tr("服务状态 / Status")}</a>
                <crate::login::UserBar/>
            </header>
            <crate::upload::UploadPanel on_done=Callback::new(move |()| studies.refetch())/>
            <Transition fallback=|| view! { <p class="status-pending">{tr("加载中… / Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match studies.await {
                        Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                        Ok(list) if list.studies.is_empty() => view! {
                            <p class="empty">{tr("还没有检查，请先上传图像 / No studies yet: upload images first")}</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="studies">
                                <thead><tr>
                                    <th>{tr("患者 / Patient")}</th><th>{tr("患者ID / Patient ID")}</th><th>{tr("检查日期 / Date")}</th>
                                    <th>{tr("模态 / Modality")}</th><th>{tr("图像 / Images")}</th><th>{tr("状态 / Status")}</th>
                                    <th>{tr("AI分诊 / AI triage")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.studies.into_iter().map(|s| view! {
                                        <tr>
                                            <td><a class="study-link" href=format!("/studies/{}", s.id)>
                                                {s.patient_name.clone().unwrap_or_else(|| tr("（无姓名） / (no name)").into())}
                                            </a></td>
                                            <td>{s.patient_id.clone().unwrap_or_default()}</td>
                                            <td>{display_date(&s.study_date)}</td>
                                            <td>{s.modalities.join(", ")}</td>
                                            <td>{s.instance_count}</td>
                                            <td>{status_label(&s.status)}{pre_read_label(s.pre_read.as_deref()).map(|(class, text)| view! {
                                                " " <span class=format!("pre-read pre-read-{class}")>{text}</span>
                                            })}</td>
                                            <td>{s.triage.clone().map(|mark| view! {
                                                <TriageCell study_id=s.id mark on_change=Callback::new(move |()| studies.refetch())/>
                                            })}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}

/// The AI's triage of a worklist row, labelled as the AI's (the model and its basis on hover), with the
/// radiologist's confirm or dismiss; a dismissed urgent flag no longer puts the study first.
#[component]
fn TriageCell(study_id: i64, mark: crate::studies::TriageMark, on_change: Callback<()>) -> impl IntoView {
    let error = RwSignal::new(String::new());
    let decide = move |decision: &'static str| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({ "decision": decision });
            match api::post(&format!("/api/v1/studies/{study_id}/triage"), &body).await {
                Ok(_) => on_change.run(()),
                Err(e) => error.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (decision, study_id, on_change);
    };
    let findings = if mark.flags.is_empty() {
        tr("未见异常 / nothing flagged").to_string()
    } else {
        mark.flags.iter().map(|f| flag_label(f)).collect::<Vec<_>>().join(tr("、 / , "))
    };
    let class = match (mark.decision.as_deref(), mark.urgent, mark.flags.is_empty()) {
        (Some("dismissed"), _, _) => "triage triage-dismissed",
        (_, true, _) => "triage triage-urgent",
        (_, false, false) => "triage triage-flagged",
        _ => "triage triage-normal",
    };
    let decided = match mark.decision.as_deref() {
        Some("confirmed") => Some(tr("（已确认） / (confirmed)")),
        Some("dismissed") => Some(tr("（已排除） / (dismissed)")),
        _ => None,
    };
    let undecided = mark.decision.is_none() && !mark.flags.is_empty();
    view! {
        <span class=class title=format!("{}: {}", mark.model, mark.basis)>
            {tr("AI提示： / AI: ")}{findings}{decided}
        </span>
        <Show when=move || undecided>
            " "
            <button class="triage-confirm" on:click=move |_| decide("confirmed")>{tr("确认 / Confirm")}</button>
            <button class="triage-dismiss" on:click=move |_| decide("dismissed")>{tr("排除 / Dismiss")}</button>
        </Show>
        {move || (!error.get().is_empty()).then(|| view! { <span class="status-error">{error.get()}</span> })}
    }
}

fn flag_label(flag: &str) -> &'static str {
    match flag {
        "pneumothorax" => tr("疑似气胸 / suspected pneumothorax"),
        "large_pleural_effusion" => tr("大量胸腔积液 / large pleural effusion"),
        "mass_or_nodule_8mm" => tr("肿块或≥8毫米结节 / mass or nodule ≥ 8 mm"),
        "consolidation" => tr("肺实变 / consolidation"),
        "cardiomegaly" => tr("心影增大 / cardiomegaly"),
        _ => tr("其他 / other"),
    }
}

/// The pre-read's state beside the workflow state: whether the AI draft waits for the radiologist.
fn pre_read_label(state: Option<&str>) -> Option<(&'static str, &'static str)> {
    Some(match state? {
        "queued" => ("queued", tr("AI预读排队中 / AI pre-read queued")),
        "running" => ("running", tr("AI预读中 / AI pre-reading")),
        "ready" => ("ready", tr("AI草稿已就绪 / AI draft ready")),
        "failed" => ("failed", tr("AI预读未完成 / AI pre-read failed")),
        _ => return None,
    })
}

fn status_label(status: &str) -> &'static str {
    match status {
        "new" => tr("新检查 / new"),
        "ai_draft" => tr("AI草稿 / AI draft"),
        "draft" => tr("草稿 / draft"),
        "returned" => tr("退回修改 / returned"),
        "signed" => tr("已签发 / signed"),
        "reviewed" => tr("已审核 / reviewed"),
        _ => "—",
    }
}

#[component]
pub fn StudyPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    // Read once: a reactive closure here re-ran its resource's future after the server had disposed it
    // (a panic in the server log). Nothing links one study page to another in place; a link that ever
    // does must load the page anew.
    let study_id = use_params_map().with_untracked(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())).unwrap_or(0);
    view! {
        <main class="study" data-hydrated=move || hydrated.get().to_string()>
            <StudyLoader study_id/>
        </main>
    }
}

#[component]
fn StudyLoader(study_id: i64) -> impl IntoView {
    let study = LocalResource::new(move || api::get::<StudyDetail>(format!("/api/v1/studies/{study_id}")));
    let overlay = RwSignal::new(Overlay::default());
    view! {
        <Transition fallback=|| view! { <p class="status-pending">{tr("加载中… / Loading…")}</p> }>
            {move || Suspend::new(async move {
                match study.await {
                    Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                    Ok(s) => view! { <StudyView study=s overlay/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Every frame of every instance of a study, series by series: the viewer scrolls through them.
fn images_of(study: &StudyDetail) -> Vec<ImageRef> {
    study
        .series
        .iter()
        .flat_map(|s| &s.instances)
        .flat_map(|i| {
            (1..=i.frames.max(1)).map(|frame| ImageRef { instance_id: i.id, frame, columns: i.columns, rows: i.rows })
        })
        .collect()
}

#[component]
fn StudyView(study: StudyDetail, overlay: RwSignal<Overlay>) -> impl IntoView {
    let s = &study.summary;
    let title = format!(
        "{} · {} · {} · {}",
        s.patient_name.clone().unwrap_or_else(|| tr("（无姓名） / (no name)").into()),
        s.patient_id.clone().unwrap_or_default(),
        display_date(&s.study_date),
        s.modalities.join(", ")
    );
    let images = images_of(&study);
    let study_id = study.summary.id;
    // The same patient's other studies, for the side-by-side comparison (newest first).
    let patient_id = study.summary.patient_id.clone().unwrap_or_default();
    let others = LocalResource::new(move || {
        let patient_id = patient_id.clone();
        async move {
            if patient_id.is_empty() {
                return Vec::new();
            }
            let path = format!("/api/v1/studies?limit=100&q={}", api::encode_query(&patient_id));
            let mut list = api::get::<StudyList>(path).await.map(|l| l.studies).unwrap_or_default();
            list.retain(|o| o.id != study_id && o.patient_id.as_deref() == Some(patient_id.as_str()));
            list.sort_by(|a, b| b.study_date.cmp(&a.study_date));
            list
        }
    });
    // The latest earlier study: the report panel offers its measurements as a finding's prior size.
    let current_date = study.summary.study_date.clone();
    let prior_study = Signal::derive(move || {
        let current = current_date.clone()?;
        others.get()?.into_iter().find(|o| o.study_date.as_ref().is_some_and(|d| *d < current))
    });
    let compare = RwSignal::new(None::<i64>);
    // One zoom and pan for both images while comparing: they move together.
    let placement = RwSignal::new(Placement::default());
    // The image on screen: the chat asks about it.
    let shown = RwSignal::new(None::<Shown>);
    view! {
        <header class="page-header">
            <h1 class="study-title">{title.clone()}</h1>
            <a href="/studies">{tr("返回工作列表 / Worklist")}</a>
            <label class="compare-pick">{tr("对比既往 / Compare ")}
                <select class="compare-select" on:change=move |ev| compare.set(event_target_value(&ev).parse().ok())
                    prop:value=move || compare.get().map(|id| id.to_string()).unwrap_or_default()>
                    <option value="">"—"</option>
                    {move || others.get().unwrap_or_default().into_iter().map(|o| view! {
                        <option value=o.id.to_string()>{format!("{} {}", display_date(&o.study_date), o.modalities.join(","))}</option>
                    }).collect_view()}
                </select>
            </label>
            <PacsPriors study_id compare on_arrived=Callback::new(move |_| others.refetch())/>
            <crate::login::UserBar/>
        </header>
        <div class="study-layout">
            <div class="viewers">
                {if images.is_empty() {
                    view! { <p class="empty">{tr("该检查没有图像 / No images")}</p> }.into_any()
                } else {
                    view! { <ImageView study_id images overlay placement caption=title.clone() shown/> }.into_any()
                }}
                {move || compare.get().map(|prior| view! { <PriorView study_id=prior placement/> })}
            </div>
            <div class="study-side">
                <ChatPanel study_id overlay shown=shown.read_only()/>
                <crate::report::ReportPanel study_id ct=study.summary.modalities.iter().any(|m| m == "CT") prior_study/>
            </div>
        </div>
    }
}

/// The patient's studies on the PACS (C-FIND by Patient ID, on asking): one already here opens as the
/// prior; another is brought here first (C-MOVE, which answers once its images are stored).
#[component]
fn PacsPriors(study_id: i64, compare: RwSignal<Option<i64>>, on_arrived: Callback<()>) -> impl IntoView {
    let open = RwSignal::new(false);
    let listed = RwSignal::new(None::<Result<Vec<RemoteStudy>, String>>);
    // The study being retrieved, and what the last retrieval said.
    let retrieving = RwSignal::new(None::<String>);
    let said = RwSignal::new(None::<String>);
    let ask = move |_| {
        open.set(true);
        listed.set(None);
        said.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/studies/{study_id}/pacs-priors");
            listed.set(Some(api::get::<Vec<RemoteStudy>>(path).await.map_err(|e| e.text())));
        });
    };
    let retrieve = move |remote: RemoteStudy| {
        retrieving.set(Some(remote.study_uid.clone()));
        said.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/studies/{study_id}/pacs-priors/retrieve");
            let body = serde_json::json!({"peer": remote.peer, "study_uid": remote.study_uid});
            match api::post_json::<Retrieved>(&path, &body).await {
                Ok(Retrieved { study_id: Some(id), completed, .. }) => {
                    listed.update(|l| {
                        let found = l.as_mut().and_then(|l| l.as_mut().ok());
                        for r in found.into_iter().flatten().filter(|r| r.study_uid == remote.study_uid) {
                            r.held = Some(id);
                        }
                    });
                    said.set(Some(format!("{}{completed}", tr("已调取，图像数： / Retrieved, images: "))));
                    on_arrived.run(());
                    compare.set(Some(id));
                }
                Ok(_) => said.set(Some(tr("PACS 未发来图像 / The PACS sent nothing").into())),
                Err(e) => said.set(Some(e.text())),
            }
            retrieving.set(None);
        });
    };
    view! {
        <button class="pacs-ask" on:click=ask>{tr("向 PACS 查询既往 / Ask the PACS")}</button>
        <Show when=move || open.get()>
            <div class="pacs-priors" role="dialog">
                <button class="pacs-close" on:click=move |_| open.set(false)>"×"</button>
                {move || match listed.get() {
                    None => view! { <p class="status-pending">{tr("正在查询 PACS… / Asking the PACS…")}</p> }.into_any(),
                    Some(Err(e)) => view! { <p class="status-error">{e}</p> }.into_any(),
                    Some(Ok(found)) if found.is_empty() => {
                        view! { <p class="empty">{tr("PACS 中没有该患者的其他检查 / No other studies on the PACS")}</p> }.into_any()
                    }
                    Some(Ok(found)) => view! {
                        <table class="pacs-list">
                            <tbody>
                                {found.into_iter().map(|r| {
                                    let line = format!("{} {} {}", display_date(&r.study_date), r.modalities.join(","), r.description.clone().unwrap_or_default());
                                    let action = match r.held {
                                        Some(id) => view! {
                                            <button class="pacs-open" on:click=move |_| compare.set(Some(id))>{tr("对比 / Compare")}</button>
                                        }.into_any(),
                                        None => {
                                            let uid = r.study_uid.clone();
                                            view! {
                                                <button class="pacs-retrieve"
                                                    disabled=move || retrieving.get().is_some()
                                                    on:click=move |_| retrieve(r.clone())>
                                                    {move || if retrieving.get().as_deref() == Some(uid.as_str()) { tr("调取中… / Retrieving…") } else { tr("调取 / Retrieve") }}
                                                </button>
                                            }.into_any()
                                        }
                                    };
                                    view! { <tr><td>{line}</td><td>{action}</td></tr> }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }}
                {move || said.get().map(|s| view! { <p class="pacs-said">{s}</p> })}
            </div>
        </Show>
    }
}

/// The prior study beside the current one: its images, following the current viewer's zoom and pan.
#[component]
fn PriorView(study_id: i64, placement: RwSignal<Placement>) -> impl IntoView {
    let study = LocalResource::new(move || api::get::<StudyDetail>(format!("/api/v1/studies/{study_id}")));
    view! {
        <div class="prior">
            <Transition fallback=|| view! { <p class="status-pending">{tr("加载中… / Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match study.await {
                        Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                        Ok(s) => {
                            let caption = format!("{}{} {}", tr("既往： / Prior: "), display_date(&s.summary.study_date), s.summary.modalities.join(","));
                            let images = images_of(&s);
                            view! {
                                <p class="prior-caption">{caption.clone()}</p>
                                <ImageView study_id images overlay=RwSignal::new(Overlay::default()) placement caption prior=true/>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </div>
    }
}
