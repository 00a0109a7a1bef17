//! The image itself: the frame's values, loaded when the image changes, windowed into the canvas at the
//! image's own pixel size; the stage that zoom and pan move; and the window presets and invert.

use std::sync::Arc;

use leptos::prelude::*;
use measure::window::Window;

use super::pixels::Pixels;
use super::state::Viewer;
use super::{ImageRef, browser};
use crate::api::ApiError;
use crate::i18n::tr;

/// The canvas, and `children` (the overlay) over it in the same image coordinates. One CSS transform
/// places both in the viewport, so zoom and pan never redraw pixels.
#[component]
pub fn ImageStage(viewer: Viewer, children: Children) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    // Told on the canvas, for the tests and benchmarks: how often it was drawn, and how long the last took.
    let renders = RwSignal::new(0u32);
    let last_render_ms = RwSignal::new(0.0f64);
    let rgba = StoredValue::new(Vec::<u8>::new());

    load_on_image_change(viewer);
    // Redraw when the window, the invert box or the pixels change.
    Effect::new(move |_| {
        let (Some(p), w, inv) = (viewer.pixels.get(), viewer.window.get(), viewer.invert.get()) else { return };
        let started = browser::now_ms();
        rgba.update_value(|buffer| {
            p.render(w.unwrap_or(Window { center: 0.0, width: 1.0 }), inv, buffer);
            browser::draw(&canvas, p.columns, p.rows, buffer);
        });
        last_render_ms.set(browser::now_ms() - started);
        renders.update(|n| *n += 1);
    });

    let columns = move || viewer.image().columns;
    let rows = move || viewer.image().rows;
    view! {
        <div class="stage"
            style:width=move || format!("{}px", columns()) style:height=move || format!("{}px", rows())
            style:transform=move || { let v = viewer.view.get(); format!("translate({}px, {}px) scale({})", v.tx, v.ty, v.scale) }>
            <canvas class="study-canvas" node_ref=canvas width=columns height=rows
                data-renders=move || renders.get().to_string()
                data-render-ms=move || format!("{:.2}", last_render_ms.get())
                aria-label=tr("检查图像 / study image")></canvas>
            {children()}
        </div>
    }
}

/// Loads the image's values whenever the image changes. The window is kept while scrolling a series
/// (images of one size); an image of another size gets its own window and a new fit.
fn load_on_image_change(viewer: Viewer) {
    Effect::new(move |previous: Option<ImageRef>| {
        let wanted = viewer.image();
        let same_size = previous.is_some_and(|p| (p.columns, p.rows) == (wanted.columns, wanted.rows));
        viewer.cancel_strokes();
        leptos::task::spawn_local(async move {
            let loaded = load_pixels(wanted.instance_id, wanted.frame).await;
            if viewer.image_untracked() != wanted {
                return; // scrolled on meanwhile
            }
            match loaded {
                Ok(p) => {
                    if viewer.window.get_untracked().is_none() || !same_size {
                        viewer.window.set(p.initial_window());
                    }
                    viewer.pixels.set(Some(Arc::new(p)));
                    viewer.load_error.set(None);
                    // Fitted now, not at mount: the viewport has its size once the page is laid out.
                    if !same_size {
                        viewer.fit();
                    }
                }
                Err(e) => viewer.load_error.set(Some(e.text())),
            }
        });
        wanted
    });
}

/// The image's own window, the presets for its modality, and invert.
#[component]
pub fn WindowControls(viewer: Viewer) -> impl IntoView {
    let window = viewer.window;
    view! {
        <div class="window-controls" role="group" aria-label=tr("窗宽窗位 / Window")>
            <button class="window-preset" data-key="default"
                aria-pressed=move || {
                    let pixels = viewer.pixels;
                    (pixels.get().is_some() && window.get() == pixels.get().and_then(|p| p.initial_window())).to_string()
                }
                on:click=move |_| window.set(viewer.initial_window())>{tr("默认 / Default")}</button>
            {move || viewer.window_presets().into_iter().map(|w| {
                let chosen = Window { center: w.center, width: w.width };
                view! {
                    <button class="window-preset" data-key=w.key.clone()
                        aria-pressed=move || (window.get() == Some(chosen)).to_string()
                        title=format!("W {} / L {}", w.width, w.center)
                        on:click=move |_| window.set(Some(chosen))>{crate::i18n::choose(w.name_zh, w.name_en)}</button>
                }
            }).collect_view()}
            <label>
                <input type="checkbox" class="invert-toggle" prop:checked=move || viewer.invert.get()
                    on:change=move |ev| viewer.invert.set(event_target_checked(&ev))/>
                {tr("反色 / Invert")}
            </label>
        </div>
    }
}

/// The frame's values from the server, with the window it renders with.
#[cfg(feature = "hydrate")]
async fn load_pixels(instance_id: i64, frame: i64) -> Result<Pixels, ApiError> {
    let response = gloo_net::http::Request::get(&format!("/api/v1/instances/{instance_id}/frames/{frame}/values"))
        .send()
        .await
        .map_err(ApiError::from)?;
    if !response.ok() {
        return Err(crate::api::error_of(response).await);
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

/// On the server the page renders without pixels: the browser loads them after hydration.
#[cfg(not(feature = "hydrate"))]
async fn load_pixels(_instance_id: i64, _frame: i64) -> Result<Pixels, ApiError> {
    std::future::pending().await
}
