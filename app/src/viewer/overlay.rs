//! What lies over the image, in its pixel coordinates: the last chat answer's heatmap and localization
//! boxes, the automatic nodule outline, the saved measurements and the one being drawn; and the heatmap's
//! switch and opacity below the image.

use leptos::prelude::*;
use measure::Point;
use measure::shape::{Shape, measure_shape};

use super::measurements::{outcome_text, saved_text};
use super::state::Viewer;
use crate::chat::{Heatmap, Overlay};
use crate::i18n::tr;

/// How the heatmap is shown: set below the image, read by the overlay on it.
#[derive(Clone, Copy)]
pub struct HeatmapLook {
    pub shown: RwSignal<bool>,
    pub opacity: RwSignal<f64>,
}

impl Default for HeatmapLook {
    fn default() -> HeatmapLook {
        HeatmapLook { shown: RwSignal::new(true), opacity: RwSignal::new(0.5) }
    }
}

/// The answer's heatmap for the image on screen: it belongs to the frame it was asked about.
fn heatmap_on_screen(viewer: Viewer, overlay: RwSignal<Overlay>) -> Option<Heatmap> {
    let i = viewer.image();
    overlay.get().heatmaps.into_iter().find(|h| h.instance_id == i.instance_id && h.frame == i.frame)
}

#[component]
pub fn ImageOverlay(viewer: Viewer, overlay: RwSignal<Overlay>, look: HeatmapLook) -> impl IntoView {
    // Lines and letters keep their size on screen whatever the zoom.
    let stroke = move || 1.5 / viewer.view.get().scale;
    let font = move || 13.0 / viewer.view.get().scale;
    let boxes = move || {
        let i = viewer.image();
        overlay
            .get()
            .boxes
            .into_iter()
            .filter(|b| b.instance_id == i.instance_id && b.frame == i.frame)
            .collect::<Vec<_>>()
    };
    let opacity = look.opacity;
    view! {
        <svg class="image-overlay" viewBox=move || { let i = viewer.image(); format!("0 0 {} {}", i.columns, i.rows) } preserveAspectRatio="none">
            <Show when=move || look.shown.get()>
                {move || heatmap_on_screen(viewer, overlay).map(|h| {
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
            {move || viewer.outline.get().map(|points| {
                let points = points.iter().map(|p| format!("{},{}", p.x + 0.5, p.y + 0.5)).collect::<Vec<_>>().join(" ");
                view! { <polygon class="nodule-outline" fill="none" stroke-width=move || stroke().to_string() points=points/> }
            })}
            {move || viewer.saved.get().into_iter().filter(|m| viewer.is_on_screen(m)).map(|m| {
                let text = saved_text(&m);
                view! { <ShapeMark shape=m.shape text class="measurement" stroke font/> }
            }).collect_view()}
            {move || viewer.draft.get().map(|shape| {
                let text = viewer.pixels.get_untracked()
                    .and_then(|p| measure_shape(&shape, viewer.spacing().as_ref(), p.columns, p.rows, p.frame().as_ref()).ok())
                    .map(|o| outcome_text(&o, viewer.units()))
                    .unwrap_or_default();
                view! { <ShapeMark shape text class="measurement-draft" stroke font/> }
            })}
        </svg>
    }
}

/// The heatmap's switch and opacity, and whether the answer brought one for this image.
#[component]
pub fn OverlayControls(viewer: Viewer, overlay: RwSignal<Overlay>, look: HeatmapLook) -> impl IntoView {
    let HeatmapLook { shown, opacity } = look;
    view! {
        <div class="overlay-controls">
            <label>
                <input type="checkbox" class="heatmap-toggle" prop:checked=move || shown.get()
                    on:change=move |ev| shown.set(event_target_checked(&ev))/>
                {tr("热力图 / Heatmap")}
            </label>
            <label>
                {tr("透明度 / Opacity")}
                <input type="range" class="heatmap-opacity" min="0" max="1" step="0.05"
                    prop:value=move || opacity.get().to_string()
                    on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(0.5))/>
            </label>
            <span class="heatmap-state">{move || if heatmap_on_screen(viewer, overlay).is_some() { tr("已有热力图 / heatmap ready") } else { "" }}</span>
        </div>
    }
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
