//! The words and numbers written over the image: patient and study, the window, zoom and image position,
//! the value under the pointer, a scale bar in millimetres, and whether the image is loading or failed.

use leptos::prelude::*;

use super::state::Viewer;
use super::view::scale_bar;
use crate::i18n::tr;

/// `caption`: patient and study, for the image's top-right corner.
#[component]
pub fn Readouts(viewer: Viewer, caption: String) -> impl IntoView {
    let count = viewer.count;
    view! {
        <div class="viewer-caption">{caption}</div>
        <div class="viewer-info">
            {move || viewer.window.get().map(|w| format!("{} {:.0} {} {:.0}", tr("窗宽 / W"), w.width, tr("窗位 / L"), w.center))}
            " · "{move || format!("{} {:.0}%", tr("缩放 / zoom"), viewer.view.get().scale * 100.0)}
            {move || (viewer.image().frame > 1 || count > 1).then(|| format!(" · {} {} / {count}", tr("图像 / image"), viewer.current.get() + 1))}
            <span class="probe-readout">{move || viewer.probe.get().map(|(p, v)| {
                let value = v.map(|v| format!("{v:.0} {}", if viewer.units() == "HU" { "HU" } else { "" })).unwrap_or_else(|| "—".into());
                format!(" · ({:.0}, {:.0}) {value}", p.x, p.y)
            })}</span>
        </div>
        {move || {
            let s = viewer.spacing()?;
            let (mm, px) = scale_bar(s.col_mm, viewer.view.get().scale, 60.0)?;
            Some(view! {
                <div class="scale-bar" style:width=format!("{px:.1}px")><span>{format!("{mm:.0} {}", tr("毫米 / mm"))}</span></div>
            })
        }}
        {move || viewer.load_error.get().map(|e| view! { <p class="viewer-error status-error">{e}</p> })}
        {move || viewer.pixels.get().is_none().then(|| viewer.load_error.get().is_none().then(|| view! {
            <p class="viewer-loading status-pending">{tr("图像加载中… / Loading image…")}</p>
        }))}
    }
}
