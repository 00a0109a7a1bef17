//! The measurement tools and how the pointer and keyboard drive them: the toolbar; in the viewport a
//! drag windows, pans or draws the tool's shape (strokes.rs: two drags for the bidirectional and angle
//! tools), a click measures a nodule, the wheel zooms about the pointer and the probe follows it; and the
//! keyboard shortcuts.

use leptos::prelude::*;
use measure::Point;
use measure::shape::Shape;
use measure::window::Window;

use super::browser;
use super::state::Viewer;
use super::strokes::{self, Release};
use super::view::{Placement, to_image};
use crate::i18n::tr;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tool {
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
    pub const ALL: [Tool; 8] = [
        Tool::Window,
        Tool::Pan,
        Tool::Length,
        Tool::Bidirectional,
        Tool::Ellipse,
        Tool::Angle,
        Tool::Arrow,
        Tool::Nodule,
    ];

    pub fn label(self) -> &'static str {
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
    pub fn key(self) -> &'static str {
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

    pub fn class(self) -> &'static str {
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
    pub fn two_strokes(self) -> bool {
        matches!(self, Tool::Bidirectional | Tool::Angle)
    }
}

/// A drag in progress: where it started, and the window and placement it started from.
#[derive(Clone, Copy, Debug)]
struct Drag {
    at: (f64, f64),
    point: Point,
    window: Option<Window>,
    placement: Placement,
}

/// The tools, undo, reset, and the previous/next image buttons of a series.
#[component]
pub fn Toolbar(viewer: Viewer) -> impl IntoView {
    let (count, current) = (viewer.count, viewer.current);
    view! {
        <div class="viewer-toolbar" role="toolbar" aria-label=tr("工具 / Tools")>
            {Tool::ALL.into_iter().map(|t| view! {
                <button class=format!("viewer-tool {}", t.class())
                    aria-pressed=move || (viewer.tool.get() == t).to_string()
                    title=format!("{}{}", t.label(), crate::i18n::parenthesized(&format!("{} {}", tr("快捷键 / key"), t.key().to_uppercase())))
                    on:click=move |_| choose_tool(viewer, t)>{t.label()}</button>
            }).collect_view()}
            <button class="viewer-undo" title=tr("撤销（Ctrl+Z） / Undo (Ctrl+Z)") on:click=move |_| viewer.undo()>{tr("撤销 / Undo")}</button>
            <button class="viewer-reset" title=tr("复位：适应窗口、默认窗（R） / Reset: fit and default window (R)") on:click=move |_| viewer.reset()>{tr("复位 / Reset")}</button>
            <Show when=move || { count > 1 }>
                <span class="image-nav">
                    <button class="image-prev" title=tr("上一张（↑、PageUp） / Previous (↑, PageUp)") disabled=move || { current.get() == 0 }
                        on:click=move |_| viewer.go_to(current.get_untracked().saturating_sub(1))>"◀"</button>
                    <span class="image-position">{move || format!("{} / {count}", current.get() + 1)}</span>
                    <button class="image-next" title=tr("下一张（↓、PageDown） / Next (↓, PageDown)") disabled=move || { current.get() + 1 >= count }
                        on:click=move |_| viewer.go_to(current.get_untracked() + 1)>"▶"</button>
                </span>
            </Show>
        </div>
    }
}

fn choose_tool(viewer: Viewer, tool: Tool) {
    viewer.tool.set(tool);
    viewer.cancel_strokes();
}

/// The viewport around the image (`children`): the pointer windows, pans, zooms, probes and draws there.
#[component]
pub fn Viewport(viewer: Viewer, children: Children) -> impl IntoView {
    let Viewer { pixels, window, placement, view, tool, draft, first_stroke, outline, probe, .. } = viewer;
    let drag = StoredValue::new(None::<Drag>);
    let pointer_at = move |client: (f64, f64)| {
        let (left, top) = browser::viewport_origin(&viewer.viewport);
        (client.0 - left, client.1 - top)
    };
    let on_down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() != 0 || pixels.get_untracked().is_none() {
            return;
        }
        ev.prevent_default();
        browser::capture_pointer(&ev);
        let at = pointer_at(browser::client_xy(&ev));
        let point = to_image(view.get_untracked(), at);
        drag.set_value(Some(Drag { at, point, window: window.get_untracked(), placement: placement.get_untracked() }));
        outline.set(None);
        match tool.get_untracked() {
            Tool::Nodule => viewer.measure_nodule(point),
            t => {
                if let Some(shape) = strokes::pressed(t, point, first_stroke.get_untracked()) {
                    draft.set(Some(shape));
                }
            }
        }
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        let at = pointer_at(browser::client_xy(&ev));
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
            t => {
                let first = first_stroke.get_untracked();
                if let Some(shape) = strokes::dragged(t, d.point, point, first, viewer.spacing().as_ref()) {
                    draft.set(Some(shape));
                }
            }
        }
    };
    let on_up = move |_ev: leptos::ev::PointerEvent| {
        if drag.get_value().is_none() {
            return;
        }
        drag.set_value(None);
        let t = tool.get_untracked();
        match strokes::released(t, draft.get_untracked(), first_stroke.get_untracked()) {
            Release::Nothing => {}
            Release::Wait(stroke) => first_stroke.set(Some(stroke)),
            Release::Discard => draft.set(None),
            // An arrow is saved with its text, or not at all.
            Release::Finished(shape @ Shape::Arrow { .. }) => {
                let text = browser::ask_text(tr("箭头标注文字 / Arrow text"));
                match text {
                    Some(text) => viewer.save(shape, Some(text)),
                    None => draft.set(None),
                }
            }
            Release::Finished(shape) => {
                if t.two_strokes() {
                    first_stroke.set(None);
                }
                viewer.save(shape, None);
            }
        }
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let at = pointer_at(browser::client_xy(&ev));
        let factor = if ev.delta_y() < 0.0 { 1.15 } else { 1.0 / 1.15 };
        let (fit_view, center) = viewer.fitted.get_untracked();
        placement.set(Placement::of(view.get_untracked().zoomed(factor, at), fit_view, center));
    };
    view! {
        <div class="viewport" node_ref=viewer.viewport
            data-tool=move || tool.get().key()
            on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up
            on:pointerleave=move |_| probe.set(None)
            on:wheel=on_wheel
            on:contextmenu=move |ev| ev.prevent_default()>
            {children()}
        </div>
    }
}

/// The keyboard shortcuts, unless the user is typing (chat box, report fields): a tool's letter, R reset,
/// I invert, Esc cancel, Ctrl+Z undo, ↑/↓ and PageUp/PageDown through a series.
pub fn listen_for_shortcuts(viewer: Viewer) {
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if browser::typing(&ev) {
            return;
        }
        let key = ev.key().to_lowercase();
        if (ev.ctrl_key() || ev.meta_key()) && key == "z" {
            ev.prevent_default();
            viewer.undo();
            return;
        }
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match key.as_str() {
            "r" => viewer.reset(),
            "i" => viewer.invert.update(|i| *i = !*i),
            "escape" => viewer.cancel_strokes(),
            "arrowdown" | "pagedown" => {
                ev.prevent_default();
                viewer.go_to(viewer.current.get_untracked() + 1);
            }
            "arrowup" | "pageup" => {
                ev.prevent_default();
                viewer.go_to(viewer.current.get_untracked().saturating_sub(1));
            }
            k => {
                if let Some(t) = Tool::ALL.into_iter().find(|t| t.key() == k) {
                    choose_tool(viewer, t);
                }
            }
        }
    });
    on_cleanup(move || keys.remove());
}

/// What the last action said, and what the second stroke of a two-stroke tool waits for.
#[component]
pub fn ToolStatus(viewer: Viewer) -> impl IntoView {
    view! {
        {move || viewer.message.get().map(|m| view! { <p class="viewer-message status-error">{m}</p> })}
        {move || viewer.first_stroke.get().map(|_| view! {
            <p class="viewer-hint">{match viewer.tool.get() {
                Tool::Angle => tr("已画第一条边，请从顶点画第二条边（Esc 取消） / First arm drawn: now draw the second"),
                _ => tr("已画长径，请垂直于它画短径（Esc 取消） / Long axis drawn: now draw the short axis"),
            }}</p>
        })}
    }
}
