//! The image viewer: the frame's raw values windowed in the browser (drag, presets, invert), zoom and
//! pan, a live value probe, and the measurement tools — length, bidirectional long/short axis, ellipse
//! ROI — saved with the study. The last chat answer's heatmap and boxes lie over the image.
//!
//! The canvas holds the image at its own pixel size; one CSS transform places it (and the SVG overlay in
//! the same coordinates) in the viewport, so zoom and pan never redraw pixels, and a window change
//! redraws only the canvas. Numbers come from the `measure` crate, as on the server, which measures every
//! saved shape again.

// The server renders the page around the image; only the browser loads and windows pixels.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod pixels;
mod view;

use std::sync::Arc;

use leptos::prelude::*;
use measure::shape::{Outcome, Shape, ShapeError, measure_shape, perpendicular_axis};
use measure::window::Window;
use measure::{Point, Spacing, SpacingSource};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, InstanceDetail, SpacingInfo};
use crate::chat::Overlay;
use pixels::Pixels;
use view::{View, scale_bar, to_image};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    Window,
    Pan,
    Length,
    Bidirectional,
    Ellipse,
}

impl Tool {
    const ALL: [Tool; 5] = [Tool::Window, Tool::Pan, Tool::Length, Tool::Bidirectional, Tool::Ellipse];

    fn label(self) -> &'static str {
        match self {
            Tool::Window => "调窗 W/L",
            Tool::Pan => "平移 Pan",
            Tool::Length => "长度 Length",
            Tool::Bidirectional => "双径 Bidirectional",
            Tool::Ellipse => "椭圆 ROI",
        }
    }

    /// The keyboard shortcut.
    fn key(self) -> &'static str {
        match self {
            Tool::Window => "w",
            Tool::Pan => "p",
            Tool::Length => "l",
            Tool::Bidirectional => "b",
            Tool::Ellipse => "e",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Tool::Window => "tool-window",
            Tool::Pan => "tool-pan",
            Tool::Length => "tool-length",
            Tool::Bidirectional => "tool-bidirectional",
            Tool::Ellipse => "tool-ellipse",
        }
    }
}

/// A measurement as the server saved it (GET/POST /api/v1/studies/{id}/measurements).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Saved {
    pub id: i64,
    pub instance_id: i64,
    pub frame: i64,
    pub shape: Shape,
    pub outcome: Outcome,
    pub basis: SavedBasis,
    pub label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SavedBasis {
    pub spacing: Option<SpacingInfo>,
    pub window: Option<Window>,
    pub units: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
struct SavedList {
    measurements: Vec<Saved>,
}

/// What POST /api/v1/studies/{id}/measurements takes; kept for undoing a delete.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct NewMeasurement {
    instance_id: i64,
    frame: i64,
    shape: Shape,
    window: Option<Window>,
    label: Option<String>,
}

/// One step the undo button takes back.
#[derive(Clone, Debug, PartialEq)]
enum Done {
    Saved(i64),
    Deleted(NewMeasurement),
}

/// A drag in progress: where it started, and the window and view it started from.
#[derive(Clone, Copy, Debug)]
struct Drag {
    at: (f64, f64),
    point: Point,
    window: Option<Window>,
    view: View,
}

fn spacing_of(info: &Option<SpacingInfo>) -> Option<Spacing> {
    info.as_ref().map(|s| Spacing {
        row_mm: s.row_mm,
        col_mm: s.col_mm,
        source: match s.source.as_str() {
            "pixel_spacing" => SpacingSource::PixelSpacing,
            "imager_pixel_spacing" => SpacingSource::ImagerPixelSpacing,
            _ => SpacingSource::Uploader,
        },
    })
}

/// "70.0 毫米", "14.0 × 7.0 毫米（平均 10.5 毫米）", "面积 30.8 平方毫米 · 均值 40.0 HU · 标准差 0.0 HU".
pub fn outcome_text(o: &Outcome, units: &str) -> String {
    let (len, area) = if o.calibrated { ("毫米", "平方毫米") } else { ("像素", "平方像素") };
    let units = if units == "raw" { "" } else { units };
    if let Some(l) = o.length {
        format!("{l:.1} {len}")
    } else if let (Some(a), Some(b), Some(m)) = (o.long_axis, o.short_axis, o.mean_diameter) {
        format!("{a:.1} × {b:.1} {len}（平均 {m:.1} {len}）")
    } else if let Some(r) = o.roi {
        format!("面积 {:.1} {area} · 均值 {:.1} {units} · 标准差 {:.1} {units}", r.area_mm2, r.mean, r.sd)
    } else {
        String::new()
    }
}

fn kind_label(shape: &Shape) -> &'static str {
    match shape {
        Shape::Length { .. } => "长度",
        Shape::Bidirectional { .. } => "长径 × 短径",
        Shape::Ellipse { .. } => "椭圆 ROI",
    }
}

/// The basis printed beside a measurement: the window shown and where the millimetres come from.
fn basis_text(b: &SavedBasis) -> String {
    let window = b.window.map(|w| format!("窗宽 {:.0} / 窗位 {:.0}", w.width, w.center));
    let spacing = match &b.spacing {
        Some(s) => {
            let source = match s.source.as_str() {
                "pixel_spacing" => "PixelSpacing",
                "imager_pixel_spacing" => "ImagerPixelSpacing",
                _ => "上传者提供",
            };
            let caveat = s.caveat_zh.as_deref().map(|c| format!("，{c}")).unwrap_or_default();
            format!("像素间距 {:.3} × {:.3} 毫米（{source}{caveat}）", s.row_mm, s.col_mm)
        }
        None => "无像素间距，单位为像素".into(),
    };
    window.into_iter().chain([spacing]).collect::<Vec<_>>().join(" · ")
}

#[component]
pub fn ImageView(
    study_id: i64,
    instance_id: i64,
    columns: i64,
    rows: i64,
    overlay: RwSignal<Overlay>,
) -> impl IntoView {
    let (columns_f, rows_f) = (columns as f64, rows as f64);
    let detail = LocalResource::new(move || api::get::<InstanceDetail>(format!("/api/v1/instances/{instance_id}")));
    let pixels = RwSignal::new(None::<Arc<Pixels>>);
    let load_error = RwSignal::new(None::<String>);
    let window = RwSignal::new(None::<Window>);
    let invert = RwSignal::new(false);
    let view = RwSignal::new(View { scale: 1.0, tx: 0.0, ty: 0.0 });
    let tool = RwSignal::new(Tool::Window);
    let saved = RwSignal::new(Vec::<Saved>::new());
    let draft = RwSignal::new(None::<Shape>);
    // The long axis of a bidirectional measurement, waiting for its short axis.
    let pending_long = RwSignal::new(None::<[Point; 2]>);
    let probe = RwSignal::new(None::<(Point, Option<f32>)>);
    let message = RwSignal::new(None::<String>);
    let undo_stack = StoredValue::new(Vec::<Done>::new());
    let drag = StoredValue::new(None::<Drag>);
    let rgba = StoredValue::new(Vec::<u8>::new());
    let renders = RwSignal::new(0u32);
    let last_render_ms = RwSignal::new(0.0f64);
    let viewport = NodeRef::<leptos::html::Div>::new();
    let canvas = NodeRef::<leptos::html::Canvas>::new();

    let spacing = move || detail.get().and_then(|d| d.ok()).and_then(|d| spacing_of(&d.spacing));
    let units = move || {
        detail.get().and_then(|d| d.ok()).map_or("raw", |d| if d.modality() == Some("CT") { "HU" } else { "raw" })
    };
    let windows = move || detail.get().and_then(|d| d.ok()).map(|d| d.windows).unwrap_or_default();

    let fit = move || {
        let size = viewport_size(&viewport);
        view.set(View::fit(size, (columns_f, rows_f)));
    };
    let reset = move || {
        fit();
        window.set(pixels.get_untracked().and_then(|p| p.initial_window()));
        invert.set(false);
    };

    // Load the values and the saved measurements once the page runs in the browser.
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            match load_pixels(instance_id).await {
                Ok(p) => {
                    window.set(p.initial_window());
                    pixels.set(Some(Arc::new(p)));
                    // Fitted now, not at mount: the viewport has its size once the page is laid out.
                    fit();
                }
                Err(e) => load_error.set(Some(e.text())),
            }
        });
        leptos::task::spawn_local(async move {
            match api::get::<SavedList>(format!("/api/v1/studies/{study_id}/measurements")).await {
                Ok(list) => saved.set(list.measurements.into_iter().filter(|m| m.instance_id == instance_id).collect()),
                Err(e) => message.set(Some(e.text())),
            }
        });
    });

    // Redraw the canvas when the window, the invert button or the pixels change.
    Effect::new(move |_| {
        let (Some(p), w, inv) = (pixels.get(), window.get(), invert.get()) else { return };
        let started = now_ms();
        rgba.update_value(|buffer| {
            p.render(w.unwrap_or(Window { center: 0.0, width: 1.0 }), inv, buffer);
            draw(&canvas, p.columns, p.rows, buffer);
        });
        last_render_ms.set(now_ms() - started);
        renders.update(|n| *n += 1);
    });

    let save = move |shape: Shape| {
        let Some(p) = pixels.get_untracked() else { return };
        // Measured here first: a shape the server would refuse is not sent.
        if let Err(e) = measure_shape(&shape, spacing().as_ref(), p.columns, p.rows, p.frame().as_ref()) {
            message.set(Some(shape_error_text(e)));
            draft.set(None);
            return;
        }
        let body = NewMeasurement { instance_id, frame: 1, shape, window: window.get_untracked(), label: None };
        leptos::task::spawn_local(async move {
            match post_measurement(study_id, &body).await {
                Ok(m) => {
                    undo_stack.update_value(|u| u.push(Done::Saved(m.id)));
                    saved.update(|s| s.push(m));
                    message.set(None);
                }
                Err(e) => message.set(Some(e.text())),
            }
            draft.set(None);
        });
    };
    let remove = move |m: Saved| {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/v1/measurements/{}", m.id)).await {
                Ok(()) => {
                    saved.update(|s| s.retain(|x| x.id != m.id));
                    undo_stack.update_value(|u| {
                        u.push(Done::Deleted(NewMeasurement {
                            instance_id: m.instance_id,
                            frame: m.frame,
                            shape: m.shape,
                            window: m.basis.window,
                            label: m.label.clone(),
                        }))
                    });
                }
                Err(e) => message.set(Some(e.text())),
            }
        });
    };
    let undo = move || {
        let Some(step) = undo_stack.try_update_value(|u| u.pop()).flatten() else { return };
        leptos::task::spawn_local(async move {
            let result = match step {
                Done::Saved(id) => api::delete(&format!("/api/v1/measurements/{id}"))
                    .await
                    .map(|()| saved.update(|s| s.retain(|x| x.id != id))),
                Done::Deleted(body) => post_measurement(study_id, &body).await.map(|m| saved.update(|s| s.push(m))),
            };
            if let Err(e) = result {
                message.set(Some(e.text()));
            }
        });
    };

    let pointer_at = move |client: (f64, f64)| {
        let (left, top) = viewport_origin(&viewport);
        (client.0 - left, client.1 - top)
    };
    let on_down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() != 0 || pixels.get_untracked().is_none() {
            return;
        }
        ev.prevent_default();
        capture_pointer(&ev);
        let at = pointer_at(client_xy(&ev));
        let point = to_image(view.get_untracked(), at);
        drag.set_value(Some(Drag { at, point, window: window.get_untracked(), view: view.get_untracked() }));
        match tool.get_untracked() {
            Tool::Length => draft.set(Some(Shape::Length { a: point, b: point })),
            Tool::Ellipse => draft.set(Some(Shape::Ellipse { center: point, radius_x: 0.0, radius_y: 0.0 })),
            Tool::Bidirectional => {
                let long = pending_long.get_untracked().unwrap_or([point, point]);
                draft.set(Some(Shape::Bidirectional { long, short: [point, point] }));
            }
            Tool::Window | Tool::Pan => {}
        }
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        let at = pointer_at(client_xy(&ev));
        let point = to_image(view.get_untracked(), at);
        if let Some(p) = pixels.get_untracked() {
            probe.set(Some((point, p.frame().and_then(|f| f.probe(point)))));
        }
        let Some(d) = drag.get_value() else { return };
        let (dx, dy) = (at.0 - d.at.0, at.1 - d.at.1);
        match tool.get_untracked() {
            Tool::Window => {
                let span = pixels.get_untracked().map_or(1.0, |p| p.value_span());
                if let Some(w) = d.window {
                    // Right widens, down raises the level: half the value range per 500 screen pixels.
                    let k = span / 1000.0;
                    window.set(Some(Window { center: w.center + dy * k, width: (w.width + dx * k).max(1.0) }));
                }
            }
            Tool::Pan => view.set(View { tx: d.view.tx + dx, ty: d.view.ty + dy, ..d.view }),
            Tool::Length => draft.set(Some(Shape::Length { a: d.point, b: point })),
            Tool::Ellipse => draft.set(Some(Shape::Ellipse {
                center: Point::new((d.point.x + point.x) / 2.0, (d.point.y + point.y) / 2.0),
                radius_x: (point.x - d.point.x).abs() / 2.0,
                radius_y: (point.y - d.point.y).abs() / 2.0,
            })),
            Tool::Bidirectional => match pending_long.get_untracked() {
                None => draft.set(Some(Shape::Bidirectional { long: [d.point, point], short: [d.point, d.point] })),
                Some(long) => draft.set(Some(Shape::Bidirectional {
                    long,
                    short: perpendicular_axis(long, d.point, point, spacing().as_ref()),
                })),
            },
        }
    };
    let on_up = move |_ev: leptos::ev::PointerEvent| {
        if drag.get_value().is_none() {
            return;
        }
        drag.set_value(None);
        match (tool.get_untracked(), draft.get_untracked()) {
            (Tool::Bidirectional, Some(Shape::Bidirectional { long, short })) => {
                if pending_long.get_untracked().is_none() {
                    // The first drag drew the long axis; the next one draws the short axis across it.
                    if long[0] != long[1] {
                        pending_long.set(Some(long));
                    } else {
                        draft.set(None);
                    }
                } else {
                    pending_long.set(None);
                    save(Shape::Bidirectional { long, short });
                }
            }
            (Tool::Length | Tool::Ellipse, Some(shape)) => save(shape),
            _ => {}
        }
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let at = pointer_at(client_xy(&ev));
        let factor = if ev.delta_y() < 0.0 { 1.15 } else { 1.0 / 1.15 };
        view.update(|v| *v = v.zoomed(factor, at));
    };
    let choose_tool = move |t: Tool| {
        tool.set(t);
        pending_long.set(None);
        draft.set(None);
    };

    // Shortcuts, unless the user is typing (chat box, report fields).
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if typing(&ev) {
            return;
        }
        let key = ev.key().to_lowercase();
        if (ev.ctrl_key() || ev.meta_key()) && key == "z" {
            ev.prevent_default();
            undo();
            return;
        }
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match key.as_str() {
            "r" => reset(),
            "i" => invert.update(|i| *i = !*i),
            "escape" => {
                draft.set(None);
                pending_long.set(None);
            }
            k => {
                if let Some(t) = Tool::ALL.into_iter().find(|t| t.key() == k) {
                    choose_tool(t);
                }
            }
        }
    });
    on_cleanup(move || keys.remove());

    let stroke = move || 1.5 / view.get().scale;
    let font = move || 13.0 / view.get().scale;
    let heatmap = move || overlay.get().heatmaps.into_iter().find(|h| h.instance_id == instance_id);
    let boxes = move || overlay.get().boxes.into_iter().filter(|b| b.instance_id == instance_id).collect::<Vec<_>>();
    let show_heatmap = RwSignal::new(true);
    let opacity = RwSignal::new(0.5f64);

    view! {
        <section class="image-panel">
            <div class="viewer-toolbar" role="toolbar" aria-label="工具 / Tools">
                {Tool::ALL.into_iter().map(|t| view! {
                    <button class=format!("viewer-tool {}", t.class())
                        aria-pressed=move || (tool.get() == t).to_string()
                        title=format!("{}（快捷键 {}）", t.label(), t.key().to_uppercase())
                        on:click=move |_| choose_tool(t)>{t.label()}</button>
                }).collect_view()}
                <button class="viewer-undo" title="撤销（Ctrl+Z）" on:click=move |_| undo()>"撤销 Undo"</button>
                <button class="viewer-reset" title="复位：适应窗口、默认窗（R）" on:click=move |_| reset()>"复位 Reset"</button>
            </div>
            <div class="viewport" node_ref=viewport
                data-tool=move || tool.get().key()
                on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up
                on:pointerleave=move |_| probe.set(None)
                on:wheel=on_wheel
                on:contextmenu=move |ev| ev.prevent_default()>
                <div class="stage"
                    style:width=format!("{columns}px") style:height=format!("{rows}px")
                    style:transform=move || { let v = view.get(); format!("translate({}px, {}px) scale({})", v.tx, v.ty, v.scale) }>
                    <canvas class="study-canvas" node_ref=canvas width=columns height=rows
                        data-renders=move || renders.get().to_string()
                        data-render-ms=move || format!("{:.2}", last_render_ms.get())
                        aria-label="检查图像 / study image"></canvas>
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
                                    stroke-width=move || (2.0 * stroke()).to_string()/>
                                <text x=b.x0 y=b.y0 fill="#3fa7ff" font-size=move || font().to_string()>{b.label}</text>
                            </g>
                        }).collect_view()}
                        {move || saved.get().into_iter().map(|m| {
                            let text = outcome_text(&m.outcome, &m.basis.units);
                            view! { <ShapeMark shape=m.shape text class="measurement" stroke font/> }
                        }).collect_view()}
                        {move || draft.get().map(|shape| {
                            let text = pixels.get_untracked()
                                .and_then(|p| measure_shape(&shape, spacing().as_ref(), p.columns, p.rows, p.frame().as_ref()).ok())
                                .map(|o| outcome_text(&o, units()))
                                .unwrap_or_default();
                            view! { <ShapeMark shape text class="measurement-draft" stroke font/> }
                        })}
                    </svg>
                </div>
                <div class="viewer-info">
                    {move || window.get().map(|w| format!("窗宽 {:.0} 窗位 {:.0}", w.width, w.center))}
                    " · "{move || format!("缩放 {:.0}%", view.get().scale * 100.0)}
                    <span class="probe-readout">{move || probe.get().map(|(p, v)| {
                        let value = v.map(|v| format!("{v:.0} {}", if units() == "HU" { "HU" } else { "" })).unwrap_or_else(|| "—".into());
                        format!(" · ({:.0}, {:.0}) {value}", p.x, p.y)
                    })}</span>
                </div>
                {move || {
                    let s = spacing()?;
                    let (mm, px) = scale_bar(s.col_mm, view.get().scale, 60.0)?;
                    Some(view! {
                        <div class="scale-bar" style:width=format!("{px:.1}px")><span>{format!("{mm:.0} 毫米")}</span></div>
                    })
                }}
                {move || load_error.get().map(|e| view! { <p class="viewer-error status-error">{e}</p> })}
                {move || pixels.get().is_none().then(|| load_error.get().is_none().then(|| view! {
                    <p class="viewer-loading status-pending">"图像加载中… / Loading image…"</p>
                }))}
            </div>
            <div class="window-controls" role="group" aria-label="窗宽窗位 / Window">
                <button class="window-preset" data-key="default"
                    aria-pressed=move || (pixels.get().is_some() && window.get() == pixels.get().and_then(|p| p.initial_window())).to_string()
                    on:click=move |_| window.set(pixels.get_untracked().and_then(|p| p.initial_window()))>"默认 / Default"</button>
                {move || windows().into_iter().map(|w| {
                    let chosen = Window { center: w.center, width: w.width };
                    view! {
                        <button class="window-preset" data-key=w.key.clone()
                            aria-pressed=move || (window.get() == Some(chosen)).to_string()
                            title=format!("W {} / L {}", w.width, w.center)
                            on:click=move |_| window.set(Some(chosen))>{w.name_zh}</button>
                    }
                }).collect_view()}
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
            {move || message.get().map(|m| view! { <p class="viewer-message status-error">{m}</p> })}
            {move || pending_long.get().map(|_| view! {
                <p class="viewer-hint">"已画长径，请垂直于它画短径（Esc 取消） / Long axis drawn: now draw the short axis"</p>
            })}
            <ol class="measurement-list" aria-label="测量 / Measurements">
                {move || saved.get().into_iter().map(|m| {
                    let text = outcome_text(&m.outcome, &m.basis.units);
                    let basis = basis_text(&m.basis);
                    let kind = kind_label(&m.shape);
                    let item = m.clone();
                    view! {
                        <li class="measurement-item" data-id=m.id.to_string()>
                            <span class="measurement-kind">{kind}</span>" "
                            <span class="measurement-value">{text}</span>
                            <span class="measurement-basis">{basis}</span>
                            <button class="measurement-delete" title="删除 / Delete"
                                on:click=move |_| remove(item.clone())>"删除"</button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}

/// One shape on the overlay with its number beside it. Coordinates are pixel centres; the SVG's are
/// pixel edges, hence the half pixel.
#[component]
fn ShapeMark(
    shape: Shape,
    text: String,
    class: &'static str,
    stroke: impl Fn() -> f64 + Copy + Send + Sync + 'static,
    font: impl Fn() -> f64 + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let e = |p: Point| (p.x + 0.5, p.y + 0.5);
    let line = move |a: Point, b: Point| {
        let ((x1, y1), (x2, y2)) = (e(a), e(b));
        view! { <line x1=x1 y1=y1 x2=x2 y2=y2 stroke-width=move || stroke().to_string()/> }
    };
    let (lines, anchor) = match shape {
        Shape::Length { a, b } => (vec![line(a, b)], e(b)),
        Shape::Bidirectional { long, short } => (vec![line(long[0], long[1]), line(short[0], short[1])], e(long[1])),
        Shape::Ellipse { .. } => (Vec::new(), (0.0, 0.0)),
    };
    let ellipse = match shape {
        Shape::Ellipse { center, radius_x, radius_y } => {
            let (cx, cy) = e(center);
            Some(
                view! { <ellipse cx=cx cy=cy rx=radius_x ry=radius_y fill="none" stroke-width=move || stroke().to_string()/> },
            )
        }
        _ => None,
    };
    let anchor = match shape {
        Shape::Ellipse { center, radius_x, radius_y } => (center.x + 0.5 + radius_x, center.y + 0.5 - radius_y),
        _ => anchor,
    };
    view! {
        <g class=class>
            {lines}
            {ellipse}
            // A dark halo under the letters keeps the number readable on bright lung or bone.
            <text x=anchor.0 + 4.0 * stroke() y=anchor.1 font-size=move || font().to_string()
                stroke="#000" stroke-width=move || (2.0 * stroke()).to_string() paint-order="stroke">{text}</text>
        </g>
    }
}

fn shape_error_text(e: ShapeError) -> String {
    format!("{} / {}", e.message_zh(), e.message_en())
}

async fn post_measurement(study_id: i64, body: &NewMeasurement) -> Result<Saved, ApiError> {
    api::post_json(&format!("/api/v1/studies/{study_id}/measurements"), body).await
}

/// The frame's values from the server, with the window it renders with.
#[cfg(feature = "hydrate")]
async fn load_pixels(instance_id: i64) -> Result<Pixels, ApiError> {
    let response = gloo_net::http::Request::get(&format!("/api/v1/instances/{instance_id}/frames/1/values"))
        .send()
        .await
        .map_err(ApiError::from)?;
    if !response.ok() {
        return Err(api::error_of(response).await);
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name);
    let number = |name: &str| header(name).and_then(|v| v.parse::<f64>().ok());
    let (columns, rows) = (number("x-columns").unwrap_or(0.0) as usize, number("x-rows").unwrap_or(0.0) as usize);
    let format = header("x-sample-format").unwrap_or_default();
    let default_window =
        number("x-window-center").zip(number("x-window-width")).map(|(center, width)| Window { center, width });
    let inverted = header("x-inverted").as_deref() == Some("true");
    let bytes = response.binary().await.map_err(ApiError::from)?;
    let samples = Pixels::parse(&format, columns, rows, &bytes).map_err(|e| ApiError {
        code: "bad_values".into(),
        message_zh: "图像数据无法读取".into(),
        message_en: e,
    })?;
    Ok(Pixels { columns, rows, samples, default_window, inverted })
}

#[cfg(not(feature = "hydrate"))]
async fn load_pixels(_instance_id: i64) -> Result<Pixels, ApiError> {
    std::future::pending().await
}

#[cfg(feature = "hydrate")]
fn draw(canvas: &NodeRef<leptos::html::Canvas>, columns: usize, rows: usize, rgba: &[u8]) {
    use wasm_bindgen::JsCast;
    let Some(canvas) = canvas.get_untracked() else { return };
    let Ok(Some(context)) = canvas.get_context("2d") else { return };
    let Ok(context) = context.dyn_into::<web_sys::CanvasRenderingContext2d>() else { return };
    if let Ok(image) =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(rgba), columns as u32, rows as u32)
    {
        let _ = context.put_image_data(&image, 0.0, 0.0);
    }
}

#[cfg(not(feature = "hydrate"))]
fn draw(_canvas: &NodeRef<leptos::html::Canvas>, _columns: usize, _rows: usize, _rgba: &[u8]) {}

#[cfg(feature = "hydrate")]
fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

#[cfg(not(feature = "hydrate"))]
fn now_ms() -> f64 {
    0.0
}

#[cfg(feature = "hydrate")]
fn viewport_size(viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    viewport.get_untracked().map_or((0.0, 0.0), |v| (f64::from(v.client_width()), f64::from(v.client_height())))
}

#[cfg(not(feature = "hydrate"))]
fn viewport_size(_viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    (0.0, 0.0)
}

#[cfg(feature = "hydrate")]
fn viewport_origin(viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    viewport.get_untracked().map_or((0.0, 0.0), |v| {
        let r = v.get_bounding_client_rect();
        (r.left(), r.top())
    })
}

#[cfg(not(feature = "hydrate"))]
fn viewport_origin(_viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    (0.0, 0.0)
}

/// The pointer's position in CSS pixels, with the fraction Chrome gives pointer events (web-sys reads
/// `clientX` as a whole number, which would cost a third of a pixel on a fitted chest film).
#[cfg(feature = "hydrate")]
fn client_xy(ev: &leptos::ev::MouseEvent) -> (f64, f64) {
    let read = |name: &str| js_sys::Reflect::get(ev, &name.into()).ok().and_then(|v| v.as_f64());
    (read("clientX").unwrap_or(f64::from(ev.client_x())), read("clientY").unwrap_or(f64::from(ev.client_y())))
}

#[cfg(not(feature = "hydrate"))]
fn client_xy(ev: &leptos::ev::MouseEvent) -> (f64, f64) {
    (f64::from(ev.client_x()), f64::from(ev.client_y()))
}

/// Keeps the pointer's moves coming to the viewport while a button is held, even outside it.
#[cfg(feature = "hydrate")]
fn capture_pointer(ev: &leptos::ev::PointerEvent) {
    use wasm_bindgen::JsCast;
    if let Some(target) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
        let _ = target.set_pointer_capture(ev.pointer_id());
    }
}

#[cfg(not(feature = "hydrate"))]
fn capture_pointer(_ev: &leptos::ev::PointerEvent) {}

/// Whether a key press goes to a text field (then it is not a shortcut).
#[cfg(feature = "hydrate")]
fn typing(ev: &leptos::ev::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).is_some_and(|e| {
        matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") || e.get_attribute("contenteditable").is_some()
    })
}

#[cfg(not(feature = "hydrate"))]
fn typing(_ev: &leptos::ev::KeyboardEvent) -> bool {
    false
}
