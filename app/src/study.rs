//! The worklist and a study's page: its first image with the last answer's heatmap and boxes laid over
//! it, and the chat panel beside it. (Viewer tools — window drag, measurements — come with the viewer.)

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{self, InstanceDetail, StudyDetail, StudyList, display_date};
use crate::chat::{ChatPanel, Overlay};

#[component]
pub fn WorklistPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let studies = LocalResource::new(|| api::get::<StudyList>("/api/v1/studies?limit=100".into()));
    view! {
        <main class="worklist" data-hydrated=move || hydrated.get().to_string()>
            <header class="page-header">
                <h1>"工作列表 / Worklist"</h1>
                <a href="/">"服务状态 / Status"</a>
                <crate::login::UserBar/>
            </header>
            <Transition fallback=|| view! { <p class="status-pending">"加载中… / Loading…"</p> }>
                {move || Suspend::new(async move {
                    match studies.await {
                        Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                        Ok(list) if list.studies.is_empty() => view! {
                            <p class="empty">"还没有检查，请先上传图像 / No studies yet: upload images first"</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="studies">
                                <thead><tr>
                                    <th>"患者 / Patient"</th><th>"患者ID"</th><th>"检查日期 / Date"</th>
                                    <th>"模态"</th><th>"图像"</th><th>"状态 / Status"</th>
                                </tr></thead>
                                <tbody>
                                    {list.studies.into_iter().map(|s| view! {
                                        <tr>
                                            <td><a class="study-link" href=format!("/studies/{}", s.id)>
                                                {s.patient_name.clone().unwrap_or_else(|| "（无姓名）".into())}
                                            </a></td>
                                            <td>{s.patient_id.clone().unwrap_or_default()}</td>
                                            <td>{display_date(&s.study_date)}</td>
                                            <td>{s.modalities.join(", ")}</td>
                                            <td>{s.instance_count}</td>
                                            <td>{status_label(&s.status)}</td>
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

fn status_label(status: &str) -> &'static str {
    match status {
        "new" => "新检查 / new",
        "ai_draft" => "AI草稿 / AI draft",
        "draft" => "草稿 / draft",
        "returned" => "退回修改 / returned",
        "signed" => "已签发 / signed",
        "reviewed" => "已审核 / reviewed",
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
        <Transition fallback=|| view! { <p class="status-pending">"加载中… / Loading…"</p> }>
            {move || Suspend::new(async move {
                match study.await {
                    Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                    Ok(s) => view! { <StudyView study=s overlay/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StudyView(study: StudyDetail, overlay: RwSignal<Overlay>) -> impl IntoView {
    let s = &study.summary;
    let title = format!(
        "{} · {} · {} · {}",
        s.patient_name.clone().unwrap_or_else(|| "（无姓名）".into()),
        s.patient_id.clone().unwrap_or_default(),
        display_date(&s.study_date),
        s.modalities.join(", ")
    );
    let image = study.first_instance().cloned();
    view! {
        <header class="page-header">
            <h1 class="study-title">{title}</h1>
            <a href="/studies">"返回工作列表 / Worklist"</a>
            <crate::login::UserBar/>
        </header>
        <div class="study-layout">
            {match image {
                Some(i) => view! { <ImageView instance_id=i.id columns=i.columns rows=i.rows overlay/> }.into_any(),
                None => view! { <p class="empty">"该检查没有图像 / No images"</p> }.into_any(),
            }}
            <div class="study-side">
                <ChatPanel study_id=study.summary.id overlay/>
                <crate::report::ReportPanel study_id=study.summary.id/>
            </div>
        </div>
    }
}

/// The image as the server renders it, through the window chosen (the file's default, the file's own
/// windows, on CT 肺窗/纵隔窗/骨窗/软组织窗), optionally inverted, with the heatmap and boxes of the last
/// answer in an SVG laid over it in the image's own pixel coordinates.
#[component]
fn ImageView(instance_id: i64, columns: i64, rows: i64, overlay: RwSignal<Overlay>) -> impl IntoView {
    let detail = LocalResource::new(move || api::get::<InstanceDetail>(format!("/api/v1/instances/{instance_id}")));
    // None: the server's default (the file's first window, else the full range).
    let window = RwSignal::new(None::<(String, f64, f64)>);
    let invert = RwSignal::new(false);
    let src = move || {
        let mut url = format!("/api/v1/instances/{instance_id}/frames/1/image.png?max_side=1024");
        if let Some((_, center, width)) = window.get() {
            url.push_str(&format!("&window_center={center}&window_width={width}"));
        }
        if invert.get() {
            url.push_str("&invert=true");
        }
        url
    };
    let show_heatmap = RwSignal::new(true);
    let opacity = RwSignal::new(0.5f64);
    let heatmap = move || overlay.get().heatmaps.into_iter().find(|h| h.instance_id == instance_id);
    let boxes = move || overlay.get().boxes.into_iter().filter(|b| b.instance_id == instance_id).collect::<Vec<_>>();
    view! {
        <section class="image-panel">
            <div class="image-frame">
                <img class="study-image" alt="检查图像 / study image" src=src/>
                <svg class="image-overlay" viewBox=format!("0 0 {columns} {rows}") preserveAspectRatio="none">
                    <Show when=move || show_heatmap.get()>
                        {move || heatmap().map(|h| {
                            let max = h.grid.iter().copied().fold(0.0f32, f32::max).max(f32::EPSILON);
                            h.cells.iter().zip(&h.grid).filter_map(|(cell, v)| cell.map(|c| (c, *v))).map(|(c, v)| view! {
                                <rect class="heat-cell" x=c[0] y=c[1] width=c[2] - c[0] height=c[3] - c[1]
                                    fill="red" fill-opacity=move || (opacity.get() * f64::from(v / max)).to_string()/>
                            }).collect_view()
                        })}
                    </Show>
                    {move || boxes().into_iter().map(|b| view! {
                        <g class="located-box">
                            <rect x=b.x0 y=b.y0 width=b.x1 - b.x0 height=b.y1 - b.y0 fill="none" stroke="#3fa7ff"
                                stroke-width=(columns.max(rows) as f64 / 300.0).to_string()/>
                            <text x=b.x0 y=b.y0 fill="#3fa7ff" font-size=(columns.max(rows) as f64 / 30.0).to_string()>{b.label}</text>
                        </g>
                    }).collect_view()}
                </svg>
            </div>
            <div class="window-controls" role="group" aria-label="窗宽窗位 / Window">
                <button class="window-preset" aria-pressed=move || window.get().is_none().to_string()
                    on:click=move |_| window.set(None)>"默认 / Default"</button>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        detail.await.map(|d| d.windows).unwrap_or_default().into_iter().map(|w| {
                            let key = w.key.clone();
                            let chosen = (w.key.clone(), w.center, w.width);
                            view! {
                                <button class="window-preset" data-key=w.key.clone()
                                    aria-pressed=move || (window.get().map(|c| c.0) == Some(key.clone())).to_string()
                                    title=format!("W {} / L {}", w.width, w.center)
                                    on:click=move |_| window.set(Some(chosen.clone()))>{w.name_zh}</button>
                            }
                        }).collect_view()
                    })}
                </Transition>
                <label>
                    <input type="checkbox" class="invert-toggle" prop:checked=move || invert.get()
                        on:change=move |ev| invert.set(event_target_checked(&ev))/>
                    "反色 / Invert"
                </label>
            </div>
            <div class="overlay-controls">
                <label>
                    <input type="checkbox" class="heatmap-toggle" prop:checked=move || show_heatmap.get()
                        on:change=move |ev| show_heatmap.set(event_target_checked(&ev))/>
                    "热力图 / Heatmap"
                </label>
                <label>
                    "透明度 / Opacity"
                    <input type="range" class="heatmap-opacity" min="0" max="1" step="0.05"
                        prop:value=move || opacity.get().to_string()
                        on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(0.5))/>
                </label>
                <span class="heatmap-state">{move || if heatmap().is_some() { "已有热力图 / heatmap ready" } else { "" }}</span>
            </div>
        </section>
    }
}
