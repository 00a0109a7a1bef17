//! The image viewer: the frame's raw values windowed in the browser (drag, presets, invert), zoom and
//! pan, a live value probe, and the measurement tools — length, bidirectional long/short axis, ellipse
//! ROI — saved with the study. The last chat answer's heatmap and boxes lie over the image.
//!
//! The canvas holds the image at its own pixel size; one CSS transform places it (and the SVG overlay in
//! the same coordinates) in the viewport, so zoom and pan never redraw pixels, and a window change
//! redraws only the canvas. Numbers come from the `measure` crate, as on the server, which measures every
//! saved shape again.
//!
//! The parts: [`state`] holds the signals they share; [`canvas`] loads and windows the pixels (with
//! [`pixels`] and [`view`]); [`tools`] is the toolbar, the pointer and the keyboard, [`strokes`] what a
//! drag draws; [`measurements`] saves, deletes and lists them; [`overlay`] draws the heatmap, boxes and
//! shapes over the image; and [`readouts`] writes the window, zoom, probe value and scale bar on it.

pub(crate) mod browser;
mod canvas;
pub mod measurements;
mod overlay;
// The server renders the page around the image; only the browser loads and windows pixels.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod pixels;
mod readouts;
mod state;
mod strokes;
mod tools;
mod view;

use leptos::prelude::*;

use crate::chat::Overlay;
use canvas::{ImageStage, WindowControls};
use measurements::MeasurementList;
use overlay::{HeatmapLook, ImageOverlay, OverlayControls};
use readouts::Readouts;
use state::Viewer;
use tools::{ToolStatus, Toolbar, Viewport};
pub use view::Placement;

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
    let viewer = Viewer::new(study_id, images, placement);
    if let Some(shown) = shown {
        Effect::new(move |_| {
            shown.set(Some(Shown { image: viewer.image(), position: viewer.current.get() + 1, count: viewer.count }))
        });
    }
    viewer.load_measurements();
    if !prior {
        tools::listen_for_shortcuts(viewer);
    }
    let look = HeatmapLook::default();
    view! {
        <section class="image-panel">
            <Toolbar viewer/>
            <Viewport viewer>
                <ImageStage viewer>
                    <ImageOverlay viewer overlay look/>
                </ImageStage>
                <Readouts viewer caption/>
            </Viewport>
            <WindowControls viewer/>
            <OverlayControls viewer overlay look/>
            <ToolStatus viewer/>
            <MeasurementList viewer/>
        </section>
    }
    // Erased: a type this deep, nested in the study page's, overflows rustc's query depth in the wasm build.
    .into_any()
}
