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

use crate::i18n::{Lang, tr};
use leptos::prelude::*;
use measure::shape::{Outcome, Shape, ShapeError, measure_shape, perpendicular_axis};
use measure::window::Window;
use measure::{Point, SpacingSource};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, InstanceDetail, SpacingInfo};
use crate::chat::Overlay;
use pixels::Pixels;
pub use view::Placement;
use view::{View, scale_bar, to_image};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    Window,
    Pan,
    Length,
    Bidirectional,
    Ellipse,
    Angle,
    Arrow,
    /// Automatic nodule measurement from a click (the server segments it).
    Nodule,
}

impl Tool {
    const ALL: [Tool; 8] = [
        Tool::Window,
        Tool::Pan,
        Tool::Length,
        Tool::Bidirectional,
        Tool::Ellipse,
        Tool::Angle,
        Tool::Arrow,
        Tool::Nodule,
    ];

    fn label(self) -> &'static str {
        match self {
            Tool::Window => tr("调窗 / Window"),
            Tool::Pan => tr("平移 / Pan"),
            Tool::Length => tr("长度 / Length"),
            Tool::Bidirectional => tr("双径 / Bidirectional"),
            Tool::Ellipse => tr("椭圆 ROI / Ellipse ROI"),
            Tool::Angle => tr("角度 / Angle"),
            Tool::Arrow => tr("箭头 / Arrow"),
            Tool::Nodule => tr("自动结节 / Auto nodule"),
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
            Tool::Angle => "a",
            Tool::Arrow => "t",
            Tool::Nodule => "n",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Tool::Window => "tool-window",
            Tool::Pan => "tool-pan",
            Tool::Length => "tool-length",
            Tool::Bidirectional => "tool-bidirectional",
            Tool::Ellipse => "tool-ellipse",
            Tool::Angle => "tool-angle",
            Tool::Arrow => "tool-arrow",
            Tool::Nodule => "tool-nodule",
        }
    }

    /// Tools drawn in two drags: the first arm or axis waits for the second.
    fn two_strokes(self) -> bool {
        matches!(self, Tool::Bidirectional | Tool::Angle)
    }
}

/// One image the viewer can show: a frame of an instance (a CT series is many).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageRef {
    pub instance_id: i64,
    /// 1-based.
    pub frame: i64,
    pub columns: i64,
    pub rows: i64,
}

/// The image on screen and its place among the study's images: what the chat asks about.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shown {
    pub image: ImageRef,
    /// 1-based.
    pub position: usize,
    pub count: usize,
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

/// A drag in progress: where it started, and the window and placement it started from.
#[derive(Clone, Copy, Debug)]
struct Drag {
    at: (f64, f64),
    point: Point,
    window: Option<Window>,
    placement: Placement,
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
fn saved_text(m: &Saved) -> String {
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
            let source = match s.source {
                SpacingSource::PixelSpacing => "PixelSpacing",
                SpacingSource::ImagerPixelSpacing => "ImagerPixelSpacing",
                SpacingSource::Uploader => tr("上传者提供 / uploader"),
            };
            let (spacing, mm) = (tr("像素间距 / pixel spacing"), tr("毫米 / mm"));
            let numbers = format!("{spacing} {:.3} × {:.3} {mm}", s.row_mm, s.col_mm);
            match lang {
                Lang::Zh => match s.source.caveat_zh() {
                    Some(caveat) => format!("{numbers}（{source}，{caveat}）"),
                    None => format!("{numbers}（{source}）"),
                },
                Lang::En => match s.source.caveat_en() {
                    Some(caveat) => format!("{numbers} ({source}: {caveat})"),
                    None => format!("{numbers} ({source})"),
                },
            }
        }
        None => tr("无像素间距，单位为像素 / no pixel spacing: pixels").into(),
    };
    window.into_iter().chain([spacing]).collect::<Vec<_>>().join(" · ")
}

/// `placement`: the zoom and pan over the fitted image, shared with a second viewer while comparing with
/// a prior study. `prior`: this is that second viewer — it leaves the keyboard to the current study's.
#[component]
pub fn ImageView(
    study_id: i64,
    images: Vec<ImageRef>,
    overlay: RwSignal<Overlay>,
    placement: RwSignal<Placement>,
    /// Patient and study, written over the image's top-right corner.
    caption: String,
    #[prop(optional)] prior: bool,
    /// Told which image is on screen as the reader scrolls.
    #[prop(optional)]
    shown: Option<RwSignal<Option<Shown>>>,
) -> impl IntoView {
    let count = images.len();
    let images = StoredValue::new(images);
    let current = RwSignal::new(0usize);
    let image = move || images.with_value(|v| v[current.get().min(v.len() - 1)]);
    if let Some(shown) = shown {
        Effect::new(move |_| shown.set(Some(Shown { image: image(), position: current.get() + 1, count })));
    }
    let image_now = move || images.with_value(|v| v[current.get_untracked().min(v.len() - 1)]);
    let detail = LocalResource::new(move || {
        let id = image().instance_id;
        api::get::<InstanceDetail>(format!("/api/v1/instances/{id}"))
    });
    let pixels = RwSignal::new(None::<Arc<Pixels>>);
    let load_error = RwSignal::new(None::<String>);
    let window = RwSignal::new(None::<Window>);
    let invert = RwSignal::new(false);
    // The image fitted to this viewport (with the viewport's centre), and the zoom and pan on top of it,
    // which a prior study's viewer shares.
    let fitted = RwSignal::new((View::default(), (0.0, 0.0)));
    let view = Memo::new(move |_| {
        let (fit_view, center) = fitted.get();
        placement.get().apply(fit_view, center)
    });
    let tool = RwSignal::new(Tool::Window);
    let saved = RwSignal::new(Vec::<Saved>::new());
    let draft = RwSignal::new(None::<Shape>);
    // The first stroke of a two-stroke tool (bidirectional long axis, angle's first arm), waiting.
    let first_stroke = RwSignal::new(None::<[Point; 2]>);
    // The outline of the last automatic nodule measurement.
    let outline = RwSignal::new(None::<Vec<Point>>);
    let probe = RwSignal::new(None::<(Point, Option<f32>)>);
    let message = RwSignal::new(None::<String>);
    let undo_stack = StoredValue::new(Vec::<Done>::new());
    let drag = StoredValue::new(None::<Drag>);
    let rgba = StoredValue::new(Vec::<u8>::new());
    let renders = RwSignal::new(0u32);
    let last_render_ms = RwSignal::new(0.0f64);
    let viewport = NodeRef::<leptos::html::Div>::new();
    let canvas = NodeRef::<leptos::html::Canvas>::new();

    let spacing = move || detail.get().and_then(|d| d.ok()).and_then(|d| d.spacing.as_ref().map(SpacingInfo::spacing));
    let units = move || {
        detail.get().and_then(|d| d.ok()).map_or("raw", |d| if d.modality() == Some("CT") { "HU" } else { "raw" })
    };
    let windows = move || detail.get().and_then(|d| d.ok()).map(|d| d.windows).unwrap_or_default();
    let on_image = move |m: &Saved| {
        let i = image();
        m.instance_id == i.instance_id && m.frame == i.frame
    };

    // Fits the image to the viewport; until the page is laid out (no size yet), tries again each frame.
    let fit = move || {
        fn attempt(
            viewport: NodeRef<leptos::html::Div>,
            fitted: RwSignal<(View, (f64, f64))>,
            image: (f64, f64),
            tries: u32,
        ) {
            let size = viewport_size(&viewport);
            if size.0 > 0.0 && size.1 > 0.0 {
                fitted.set((View::fit(size, image), (size.0 / 2.0, size.1 / 2.0)));
            } else if tries > 0 {
                request_animation_frame(move || attempt(viewport, fitted, image, tries - 1));
            }
        }
        let i = image_now();
        attempt(viewport, fitted, (i.columns as f64, i.rows as f64), 120);
    };
    let reset = move || {
        fit();
        placement.set(Placement::default());
        window.set(pixels.get_untracked().and_then(|p| p.initial_window()));
        invert.set(false);
    };
    let cancel_strokes = move || {
        draft.set(None);
        first_stroke.set(None);
        outline.set(None);
    };

    // The image's values, whenever the image changes (the window is kept while scrolling a series).
    Effect::new(move |previous: Option<ImageRef>| {
        let wanted = image();
        let same_size = previous.is_some_and(|p| (p.columns, p.rows) == (wanted.columns, wanted.rows));
        cancel_strokes();
        leptos::task::spawn_local(async move {
            let loaded = load_pixels(wanted.instance_id, wanted.frame).await;
            if image_now() != wanted {
                return; // scrolled on meanwhile
            }
            match loaded {
                Ok(p) => {
                    if window.get_untracked().is_none() || !same_size {
                        window.set(p.initial_window());
                    }
                    pixels.set(Some(Arc::new(p)));
                    load_error.set(None);
                    // Fitted now, not at mount: the viewport has its size once the page is laid out.
                    if !same_size {
                        fit();
                    }
                }
                Err(e) => load_error.set(Some(e.text())),
            }
        });
        wanted
    });
    // The study's saved measurements, once.
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            match api::get::<SavedList>(format!("/api/v1/studies/{study_id}/measurements")).await {
                Ok(list) => saved.set(list.measurements),
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

    let save = move |shape: Shape, label: Option<String>| {
        let Some(p) = pixels.get_untracked() else { return };
        // Measured here first: a shape the server would refuse is not sent.
        if let Err(e) = measure_shape(&shape, spacing().as_ref(), p.columns, p.rows, p.frame().as_ref()) {
            message.set(Some(shape_error_text(e)));
            draft.set(None);
            return;
        }
        let i = image_now();
        let body =
            NewMeasurement { instance_id: i.instance_id, frame: i.frame, shape, window: window.get_untracked(), label };
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
    // Automatic measurement: the server segments the nodule around the click; its axes are saved as a
    // bidirectional measurement, its outline shown until the next action.
    let measure_nodule = move |at: Point| {
        let i = image_now();
        message.set(Some(tr("自动测量中… / Measuring…").into()));
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/instances/{}/frames/{}/nodule", i.instance_id, i.frame);
            match api::post_json::<AutoNodule>(&path, &serde_json::json!({"x": at.x, "y": at.y})).await {
                Ok(n) if n.reached_search_limit => {
                    outline.set(Some(n.outline));
                    message.set(Some(
                        "区域连到了血管、胸膜或胸壁，自动测量不可靠，请手动测量 / The region ran into a vessel or the \
                         pleura: measure by hand"
                            .into(),
                    ));
                }
                Ok(n) => {
                    outline.set(Some(n.outline));
                    message.set(None);
                    let label = format!("（自动：{}）", n.basis.method_zh);
                    save(Shape::Bidirectional { long: n.axes.long_axis, short: n.axes.short_axis }, Some(label));
                }
                Err(e) => message.set(Some(e.text())),
            }
        });
    };
    let go_to = move |index: usize| {
        if index < count && index != current.get_untracked() {
            current.set(index);
        }
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
        drag.set_value(Some(Drag { at, point, window: window.get_untracked(), placement: placement.get_untracked() }));
        outline.set(None);
        match tool.get_untracked() {
            Tool::Length => draft.set(Some(Shape::Length { a: point, b: point })),
            Tool::Arrow => draft.set(Some(Shape::Arrow { from: point, to: point })),
            Tool::Ellipse => draft.set(Some(Shape::Ellipse { center: point, radius_x: 0.0, radius_y: 0.0 })),
            Tool::Bidirectional => {
                let long = first_stroke.get_untracked().unwrap_or([point, point]);
                draft.set(Some(Shape::Bidirectional { long, short: [point, point] }));
            }
            Tool::Angle => {
                let [a, vertex] = first_stroke.get_untracked().unwrap_or([point, point]);
                draft.set(Some(Shape::Angle { a, vertex, b: vertex }));
            }
            Tool::Nodule => measure_nodule(point),
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
                    // Right widens, down raises the level: the whole value range per 1000 screen pixels.
                    let k = span / 1000.0;
                    window.set(Some(Window { center: w.center + dy * k, width: (w.width + dx * k).max(1.0) }));
                }
            }
            Tool::Pan => placement.set(Placement { dx: d.placement.dx + dx, dy: d.placement.dy + dy, ..d.placement }),
            Tool::Length => draft.set(Some(Shape::Length { a: d.point, b: point })),
            Tool::Arrow => draft.set(Some(Shape::Arrow { from: d.point, to: point })),
            Tool::Ellipse => draft.set(Some(Shape::Ellipse {
                center: Point::new((d.point.x + point.x) / 2.0, (d.point.y + point.y) / 2.0),
                radius_x: (point.x - d.point.x).abs() / 2.0,
                radius_y: (point.y - d.point.y).abs() / 2.0,
            })),
            Tool::Bidirectional => match first_stroke.get_untracked() {
                None => draft.set(Some(Shape::Bidirectional { long: [d.point, point], short: [d.point, d.point] })),
                Some(long) => draft.set(Some(Shape::Bidirectional {
                    long,
                    short: perpendicular_axis(long, d.point, point, spacing().as_ref()),
                })),
            },
            // The first drag draws an arm ending at the vertex; the second the other arm from the vertex.
            Tool::Angle => match first_stroke.get_untracked() {
                None => draft.set(Some(Shape::Angle { a: d.point, vertex: point, b: point })),
                Some([a, vertex]) => draft.set(Some(Shape::Angle { a, vertex, b: point })),
            },
            Tool::Nodule => {}
        }
    };
    let on_up = move |_ev: leptos::ev::PointerEvent| {
        if drag.get_value().is_none() {
            return;
        }
        drag.set_value(None);
        let t = tool.get_untracked();
        match draft.get_untracked() {
            Some(shape) if t.two_strokes() && first_stroke.get_untracked().is_none() => {
                let stroke = match shape {
                    Shape::Bidirectional { long, .. } => long,
                    Shape::Angle { a, vertex, .. } => [a, vertex],
                    _ => return,
                };
                // The first stroke waits for the second (a click without a drag draws nothing).
                if stroke[0] != stroke[1] {
                    first_stroke.set(Some(stroke));
                } else {
                    draft.set(None);
                }
            }
            Some(shape) if t.two_strokes() => {
                first_stroke.set(None);
                save(shape, None);
            }
            Some(shape @ Shape::Arrow { .. }) => match ask_text(tr("箭头标注文字 / Arrow text")) {
                Some(text) => save(shape, Some(text)),
                None => draft.set(None),
            },
            Some(shape) => save(shape, None),
            None => {}
        }
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let at = pointer_at(client_xy(&ev));
        let factor = if ev.delta_y() < 0.0 { 1.15 } else { 1.0 / 1.15 };
        let (fit_view, center) = fitted.get_untracked();
        placement.set(Placement::of(view.get_untracked().zoomed(factor, at), fit_view, center));
    };
    let choose_tool = move |t: Tool| {
        tool.set(t);
        cancel_strokes();
    };

    // Shortcuts, unless the user is typing (chat box, report fields).
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if prior || typing(&ev) {
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
            "escape" => cancel_strokes(),
            "arrowdown" | "pagedown" => {
                ev.prevent_default();
                go_to(current.get_untracked() + 1);
            }
            "arrowup" | "pageup" => {
                ev.prevent_default();
                go_to(current.get_untracked().saturating_sub(1));
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
    // The answer's heatmap and boxes belong to the frames it was asked about.
    let heatmap = move || {
        let i = image();
        overlay.get().heatmaps.into_iter().find(|h| h.instance_id == i.instance_id && h.frame == i.frame)
    };
    let boxes = move || {
        let i = image();
        overlay
            .get()
            .boxes
            .into_iter()
            .filter(|b| b.instance_id == i.instance_id && b.frame == i.frame)
            .collect::<Vec<_>>()
    };
    let show_heatmap = RwSignal::new(true);
    let opacity = RwSignal::new(0.5f64);
    let columns = move || image().columns;
    let rows = move || image().rows;

    view! {
        <section class="image-panel">
            <div class="viewer-toolbar" role="toolbar" aria-label=tr("工具 / Tools")>
                {Tool::ALL.into_iter().map(|t| view! {
                    <button class=format!("viewer-tool {}", t.class())
                        aria-pressed=move || (tool.get() == t).to_string()
                        title=format!("{}{}", t.label(), crate::i18n::parenthesized(&format!("{} {}", tr("快捷键 / key"), t.key().to_uppercase())))
                        on:click=move |_| choose_tool(t)>{t.label()}</button>
                }).collect_view()}
                <button class="viewer-undo" title=tr("撤销（Ctrl+Z） / Undo (Ctrl+Z)") on:click=move |_| undo()>{tr("撤销 / Undo")}</button>
                <button class="viewer-reset" title=tr("复位：适应窗口、默认窗（R） / Reset: fit and default window (R)") on:click=move |_| reset()>{tr("复位 / Reset")}</button>
                <Show when=move || { count > 1 }>
                    <span class="image-nav">
                        <button class="image-prev" title=tr("上一张（↑、PageUp） / Previous (↑, PageUp)") disabled=move || { current.get() == 0 }
                            on:click=move |_| go_to(current.get_untracked().saturating_sub(1))>"◀"</button>
                        <span class="image-position">{move || format!("{} / {count}", current.get() + 1)}</span>
                        <button class="image-next" title=tr("下一张（↓、PageDown） / Next (↓, PageDown)") disabled=move || { current.get() + 1 >= count }
                            on:click=move |_| go_to(current.get_untracked() + 1)>"▶"</button>
                    </span>
                </Show>
            </div>
            <div class="viewport" node_ref=viewport
                data-tool=move || tool.get().key()
                on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up
                on:pointerleave=move |_| probe.set(None)
                on:wheel=on_wheel
                on:contextmenu=move |ev| ev.prevent_default()>
                <div class="stage"
                    style:width=move || format!("{}px", columns()) style:height=move || format!("{}px", rows())
                    style:transform=move || { let v = view.get(); format!("translate({}px, {}px) scale({})", v.tx, v.ty, v.scale) }>
                    <canvas class="study-canvas" node_ref=canvas width=columns height=rows
                        data-renders=move || renders.get().to_string()
                        data-render-ms=move || format!("{:.2}", last_render_ms.get())
                        aria-label=tr("检查图像 / study image")></canvas>
                    <svg class="image-overlay" viewBox=move || format!("0 0 {} {}", columns(), rows()) preserveAspectRatio="none">
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
                        {move || outline.get().map(|points| {
                            let points = points.iter().map(|p| format!("{},{}", p.x + 0.5, p.y + 0.5)).collect::<Vec<_>>().join(" ");
                            view! { <polygon class="nodule-outline" fill="none" stroke-width=move || stroke().to_string() points=points/> }
                        })}
                        {move || saved.get().into_iter().filter(|m| on_image(m)).map(|m| {
                            let text = saved_text(&m);
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
                <div class="viewer-caption">{caption}</div>
                <div class="viewer-info">
                    {move || window.get().map(|w| format!("{} {:.0} {} {:.0}", tr("窗宽 / W"), w.width, tr("窗位 / L"), w.center))}
                    " · "{move || format!("{} {:.0}%", tr("缩放 / zoom"), view.get().scale * 100.0)}
                    {move || (image().frame > 1 || count > 1).then(|| format!(" · {} {} / {count}", tr("图像 / image"), current.get() + 1))}
                    <span class="probe-readout">{move || probe.get().map(|(p, v)| {
                        let value = v.map(|v| format!("{v:.0} {}", if units() == "HU" { "HU" } else { "" })).unwrap_or_else(|| "—".into());
                        format!(" · ({:.0}, {:.0}) {value}", p.x, p.y)
                    })}</span>
                </div>
                {move || {
                    let s = spacing()?;
                    let (mm, px) = scale_bar(s.col_mm, view.get().scale, 60.0)?;
                    Some(view! {
                        <div class="scale-bar" style:width=format!("{px:.1}px")><span>{format!("{mm:.0} {}", tr("毫米 / mm"))}</span></div>
                    })
                }}
                {move || load_error.get().map(|e| view! { <p class="viewer-error status-error">{e}</p> })}
                {move || pixels.get().is_none().then(|| load_error.get().is_none().then(|| view! {
                    <p class="viewer-loading status-pending">{tr("图像加载中… / Loading image…")}</p>
                }))}
            </div>
            <div class="window-controls" role="group" aria-label=tr("窗宽窗位 / Window")>
                <button class="window-preset" data-key="default"
                    aria-pressed=move || (pixels.get().is_some() && window.get() == pixels.get().and_then(|p| p.initial_window())).to_string()
                    on:click=move |_| window.set(pixels.get_untracked().and_then(|p| p.initial_window()))>{tr("默认 / Default")}</button>
                {move || windows().into_iter().map(|w| {
                    let chosen = Window { center: w.center, width: w.width };
                    view! {
                        <button class="window-preset" data-key=w.key.clone()
                            aria-pressed=move || (window.get() == Some(chosen)).to_string()
                            title=format!("W {} / L {}", w.width, w.center)
                            on:click=move |_| window.set(Some(chosen))>{crate::i18n::choose(w.name_zh, w.name_en)}</button>
                    }
                }).collect_view()}
                <label>
                    <input type="checkbox" class="invert-toggle" prop:checked=move || invert.get()
                        on:change=move |ev| invert.set(event_target_checked(&ev))/>
                    {tr("反色 / Invert")}
                </label>
            </div>
            <div class="overlay-controls">
                <label>
                    <input type="checkbox" class="heatmap-toggle" prop:checked=move || show_heatmap.get()
                        on:change=move |ev| show_heatmap.set(event_target_checked(&ev))/>
                    {tr("热力图 / Heatmap")}
                </label>
                <label>
                    {tr("透明度 / Opacity")}
                    <input type="range" class="heatmap-opacity" min="0" max="1" step="0.05"
                        prop:value=move || opacity.get().to_string()
                        on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(0.5))/>
                </label>
                <span class="heatmap-state">{move || if heatmap().is_some() { tr("已有热力图 / heatmap ready") } else { "" }}</span>
            </div>
            {move || message.get().map(|m| view! { <p class="viewer-message status-error">{m}</p> })}
            {move || first_stroke.get().map(|_| view! {
                <p class="viewer-hint">{match tool.get() {
                    Tool::Angle => tr("已画第一条边，请从顶点画第二条边（Esc 取消） / First arm drawn: now draw the second"),
                    _ => tr("已画长径，请垂直于它画短径（Esc 取消） / Long axis drawn: now draw the short axis"),
                }}</p>
            })}
            <ol class="measurement-list" aria-label=tr("测量 / Measurements")>
                {move || saved.get().into_iter().filter(|m| on_image(m)).map(|m| {
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
                                on:click=move |_| remove(item.clone())>{tr("删除 / Delete")}</button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
    // Erased: a type this deep, nested in the study page's, overflows rustc's query depth in the wasm build.
    .into_any()
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

/// One shape on the overlay with its number beside it. Coordinates are pixel centres; the SVG's are
/// pixel edges, hence the half pixel. Lines, letters and the arrowhead keep their size on screen.
#[component]
fn ShapeMark(
    shape: Shape,
    text: String,
    class: &'static str,
    stroke: impl Fn() -> f64 + Copy + Send + Sync + 'static,
    font: impl Fn() -> f64 + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let e = |p: Point| (p.x + 0.5, p.y + 0.5);
    let line = move |a: (f64, f64), b: (f64, f64)| {
        view! { <line x1=a.0 y1=a.1 x2=b.0 y2=b.1 stroke-width=move || stroke().to_string()/> }
    };
    let segments: Vec<((f64, f64), (f64, f64))> = match shape {
        Shape::Length { a, b } | Shape::Arrow { from: a, to: b } => vec![(e(a), e(b))],
        Shape::Bidirectional { long, short } => vec![(e(long[0]), e(long[1])), (e(short[0]), e(short[1]))],
        Shape::Angle { a, vertex, b } => vec![(e(vertex), e(a)), (e(vertex), e(b))],
        Shape::Ellipse { .. } => Vec::new(),
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
    // The arrowhead: two strokes back from the tip at ±25°, ten screen pixels long.
    let head = match shape {
        Shape::Arrow { from, to } if from != to => Some(move || {
            let ((fx, fy), (tx, ty)) = (e(from), e(to));
            let back = (fy - ty).atan2(fx - tx);
            let len = 10.0 * stroke() / 1.5;
            [back - 0.44, back + 0.44]
                .map(|a| line((tx, ty), (tx + len * a.cos(), ty + len * a.sin())))
                .into_iter()
                .collect_view()
        }),
        _ => None,
    };
    let anchor = match shape {
        Shape::Length { b, .. } => e(b),
        Shape::Bidirectional { long, .. } => e(long[1]),
        Shape::Angle { vertex, .. } => e(vertex),
        Shape::Arrow { from, .. } => e(from),
        Shape::Ellipse { center, radius_x, radius_y } => (center.x + 0.5 + radius_x, center.y + 0.5 - radius_y),
    };
    view! {
        <g class=class>
            {segments.into_iter().map(|(a, b)| line(a, b)).collect_view()}
            {ellipse}
            {head}
            // A dark halo under the letters keeps the number readable on bright lung or bone.
            <text x=move || anchor.0 + 4.0 * stroke() y=anchor.1 font-size=move || font().to_string()
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
async fn load_pixels(instance_id: i64, frame: i64) -> Result<Pixels, ApiError> {
    let response = gloo_net::http::Request::get(&format!("/api/v1/instances/{instance_id}/frames/{frame}/values"))
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
async fn load_pixels(_instance_id: i64, _frame: i64) -> Result<Pixels, ApiError> {
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

/// A line of text from the user (an arrow's label); None when cancelled.
#[cfg(feature = "hydrate")]
fn ask_text(question: &str) -> Option<String> {
    let answer = web_sys::window()?.prompt_with_message(question).ok()??;
    Some(answer.trim().to_string()).filter(|a| !a.is_empty())
}

#[cfg(not(feature = "hydrate"))]
fn ask_text(_question: &str) -> Option<String> {
    None
}

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
