//! What the viewer's parts share: the image on screen and its values, how it is shown, and the tool and
//! measurements in hand. Signals are `Copy`, so [`Viewer`] is too, and each part takes it whole.

use std::sync::Arc;

use leptos::prelude::*;
use measure::shape::Shape;
use measure::window::Window;
use measure::{Point, Spacing};

use super::measurements::{Done, Saved};
use super::pixels::Pixels;
use super::tools::Tool;
use super::view::{Placement, View};
use super::{ImageRef, browser};
use crate::api::{self, ApiError, InstanceDetail, SpacingInfo, WindowChoice};

#[derive(Clone, Copy)]
pub struct Viewer {
    pub study_id: i64,
    images: StoredValue<Vec<ImageRef>>,
    /// How many images there are (a CT series: one per slice), and which is on screen.
    pub count: usize,
    pub current: RwSignal<usize>,
    /// The instance's spacing, modality and window presets.
    detail: LocalResource<Result<InstanceDetail, ApiError>>,
    /// The frame's values once loaded, or why they are not.
    pub pixels: RwSignal<Option<Arc<Pixels>>>,
    pub load_error: RwSignal<Option<String>>,

    /// The window the values are drawn through; None until the first image brings its own.
    pub window: RwSignal<Option<Window>>,
    pub invert: RwSignal<bool>,
    /// The image fitted to this viewport (with the viewport's centre), and the zoom and pan on top of
    /// it, which a prior study's viewer shares; `view` is the two together.
    pub fitted: RwSignal<(View, (f64, f64))>,
    pub placement: RwSignal<Placement>,
    pub view: Memo<View>,
    pub viewport: NodeRef<leptos::html::Div>,

    pub tool: RwSignal<Tool>,
    /// The shape being drawn, measured live.
    pub draft: RwSignal<Option<Shape>>,
    /// The first stroke of a two-stroke tool (bidirectional long axis, angle's first arm), waiting.
    pub first_stroke: RwSignal<Option<[Point; 2]>>,
    /// The outline of the last automatic nodule measurement.
    pub outline: RwSignal<Option<Vec<Point>>>,
    /// The image point under the pointer, with its value.
    pub probe: RwSignal<Option<(Point, Option<f32>)>>,
    /// The study's saved measurements (of every image; each image shows its own).
    pub saved: RwSignal<Vec<Saved>>,
    pub undo_stack: StoredValue<Vec<Done>>,
    /// What the last action has to say: an error, or that the automatic measurement is at work.
    pub message: RwSignal<Option<String>>,
}

impl Viewer {
    pub fn new(study_id: i64, images: Vec<ImageRef>, placement: RwSignal<Placement>) -> Viewer {
        let count = images.len();
        let images = StoredValue::new(images);
        let current = RwSignal::new(0usize);
        let detail = LocalResource::new(move || {
            let id = images.with_value(|v| v[current.get().min(v.len() - 1)]).instance_id;
            api::get::<InstanceDetail>(format!("/api/v1/instances/{id}"))
        });
        let fitted = RwSignal::new((View::default(), (0.0, 0.0)));
        let view = Memo::new(move |_| {
            let (fit_view, center) = fitted.get();
            placement.get().apply(fit_view, center)
        });
        Viewer {
            study_id,
            images,
            count,
            current,
            detail,
            pixels: RwSignal::new(None),
            load_error: RwSignal::new(None),
            window: RwSignal::new(None),
            invert: RwSignal::new(false),
            fitted,
            placement,
            view,
            viewport: NodeRef::new(),
            tool: RwSignal::new(Tool::Window),
            draft: RwSignal::new(None),
            first_stroke: RwSignal::new(None),
            outline: RwSignal::new(None),
            probe: RwSignal::new(None),
            saved: RwSignal::new(Vec::new()),
            undo_stack: StoredValue::new(Vec::new()),
            message: RwSignal::new(None),
        }
    }

    /// The image on screen (tracked).
    pub fn image(self) -> ImageRef {
        self.images.with_value(|v| v[self.current.get().min(v.len() - 1)])
    }

    /// The image on screen, for event handlers and tasks that must not subscribe.
    pub fn image_untracked(self) -> ImageRef {
        self.images.with_value(|v| v[self.current.get_untracked().min(v.len() - 1)])
    }

    pub fn go_to(self, index: usize) {
        if index < self.count && index != self.current.get_untracked() {
            self.current.set(index);
        }
    }

    pub fn spacing(self) -> Option<Spacing> {
        self.detail.get().and_then(|d| d.ok()).and_then(|d| d.spacing.as_ref().map(SpacingInfo::spacing))
    }

    /// "HU" on CT, else "raw".
    pub fn units(self) -> &'static str {
        self.detail.get().and_then(|d| d.ok()).map_or("raw", |d| if d.modality() == Some("CT") { "HU" } else { "raw" })
    }

    /// The window presets for this image.
    pub fn window_presets(self) -> Vec<WindowChoice> {
        self.detail.get().and_then(|d| d.ok()).map(|d| d.windows).unwrap_or_default()
    }

    /// The window the image came with.
    pub fn initial_window(self) -> Option<Window> {
        self.pixels.get_untracked().and_then(|p| p.initial_window())
    }

    pub fn is_on_screen(self, m: &Saved) -> bool {
        let i = self.image();
        m.instance_id == i.instance_id && m.frame == i.frame
    }

    /// Fits the image to the viewport; until the page is laid out (no size yet), tries again each frame.
    pub fn fit(self) {
        fn attempt(
            viewport: NodeRef<leptos::html::Div>,
            fitted: RwSignal<(View, (f64, f64))>,
            image: (f64, f64),
            tries: u32,
        ) {
            let size = browser::viewport_size(&viewport);
            if size.0 > 0.0 && size.1 > 0.0 {
                fitted.set((View::fit(size, image), (size.0 / 2.0, size.1 / 2.0)));
            } else if tries > 0 {
                request_animation_frame(move || attempt(viewport, fitted, image, tries - 1));
            }
        }
        let i = self.image_untracked();
        attempt(self.viewport, self.fitted, (i.columns as f64, i.rows as f64), 120);
    }

    /// Back to the fitted image in its own window, not inverted.
    pub fn reset(self) {
        self.fit();
        self.placement.set(Placement::default());
        self.window.set(self.initial_window());
        self.invert.set(false);
    }

    /// Drops whatever is half drawn, and the last automatic outline.
    pub fn cancel_strokes(self) {
        self.draft.set(None);
        self.first_stroke.set(None);
        self.outline.set(None);
    }
}
