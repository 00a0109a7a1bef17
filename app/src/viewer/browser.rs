//! The browser calls the viewer (and the report panel's keys) make, each with the stand-in the server
//! compiles: the server renders the page around the image, and only the browser has a canvas, a pointer
//! and a keyboard.

use leptos::prelude::*;

#[cfg(feature = "hydrate")]
pub fn draw(canvas: &NodeRef<leptos::html::Canvas>, columns: usize, rows: usize, rgba: &[u8]) {
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
pub fn draw(_canvas: &NodeRef<leptos::html::Canvas>, _columns: usize, _rows: usize, _rgba: &[u8]) {}

#[cfg(feature = "hydrate")]
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

#[cfg(not(feature = "hydrate"))]
pub fn now_ms() -> f64 {
    0.0
}

#[cfg(feature = "hydrate")]
pub fn viewport_size(viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    viewport.get_untracked().map_or((0.0, 0.0), |v| (f64::from(v.client_width()), f64::from(v.client_height())))
}

#[cfg(not(feature = "hydrate"))]
pub fn viewport_size(_viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    (0.0, 0.0)
}

#[cfg(feature = "hydrate")]
pub fn viewport_origin(viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    viewport.get_untracked().map_or((0.0, 0.0), |v| {
        let r = v.get_bounding_client_rect();
        (r.left(), r.top())
    })
}

#[cfg(not(feature = "hydrate"))]
pub fn viewport_origin(_viewport: &NodeRef<leptos::html::Div>) -> (f64, f64) {
    (0.0, 0.0)
}

/// The pointer's position in CSS pixels, with the fraction Chrome gives pointer events (web-sys reads
/// `clientX` as a whole number, which would cost a third of a pixel on a fitted chest film).
#[cfg(feature = "hydrate")]
pub fn client_xy(ev: &leptos::ev::MouseEvent) -> (f64, f64) {
    let read = |name: &str| js_sys::Reflect::get(ev, &name.into()).ok().and_then(|v| v.as_f64());
    (read("clientX").unwrap_or(f64::from(ev.client_x())), read("clientY").unwrap_or(f64::from(ev.client_y())))
}

#[cfg(not(feature = "hydrate"))]
pub fn client_xy(ev: &leptos::ev::MouseEvent) -> (f64, f64) {
    (f64::from(ev.client_x()), f64::from(ev.client_y()))
}

/// Keeps the pointer's moves coming to the viewport while a button is held, even outside it.
#[cfg(feature = "hydrate")]
pub fn capture_pointer(ev: &leptos::ev::PointerEvent) {
    use wasm_bindgen::JsCast;
    if let Some(target) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
        let _ = target.set_pointer_capture(ev.pointer_id());
    }
}

#[cfg(not(feature = "hydrate"))]
pub fn capture_pointer(_ev: &leptos::ev::PointerEvent) {}

/// A line of text from the user (an arrow's label); None when cancelled.
#[cfg(feature = "hydrate")]
pub fn ask_text(question: &str) -> Option<String> {
    let answer = web_sys::window()?.prompt_with_message(question).ok()??;
    Some(answer.trim().to_string()).filter(|a| !a.is_empty())
}

#[cfg(not(feature = "hydrate"))]
pub fn ask_text(_question: &str) -> Option<String> {
    None
}

/// Whether a key press goes to a text field (then it is not a shortcut).
#[cfg(feature = "hydrate")]
pub fn typing(ev: &leptos::ev::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).is_some_and(|e| {
        matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") || e.get_attribute("contenteditable").is_some()
    })
}

#[cfg(not(feature = "hydrate"))]
pub fn typing(_ev: &leptos::ev::KeyboardEvent) -> bool {
    false
}

/// Whether a key press goes to a text field outside the element `selector` names (the report panel's
/// Ctrl+Enter signs from its own fields, not from the chat box).
#[cfg(feature = "hydrate")]
pub fn typing_outside(ev: &leptos::ev::KeyboardEvent, selector: &str) -> bool {
    use wasm_bindgen::JsCast;
    typing(ev)
        && ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| e.closest(selector).ok().flatten().is_none())
}

#[cfg(not(feature = "hydrate"))]
pub fn typing_outside(_ev: &leptos::ev::KeyboardEvent, _selector: &str) -> bool {
    false
}
