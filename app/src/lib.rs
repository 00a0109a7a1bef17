//! The MedGemma-X web app, rendered on the server (feature `ssr`) and hydrated in the browser
//! (feature `hydrate`). Types both sides exchange live in [`status`], [`studies`] and [`templates`].

// Leptos views are nested types; the study page (image, chat and report panels) is deeper than the
// default limit lets rustc compute layouts for.
#![recursion_limit = "256"]

pub mod api;
pub mod i18n;
pub mod sse;
pub mod status;
pub mod studies;
pub mod templates;

mod admin;
mod chat;
mod home;
mod login;
mod markdown;
mod report;
mod study;
mod upload;
mod viewer;

use crate::i18n::tr;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{Route, Router, Routes},
};

/// Product name as shown to users and in the page title.
pub const PRODUCT_NAME: &str = "MedGemma-X";

/// The label every AI output carries (DESIGN.md, rules of the house).
pub const AI_ADVISORY_LABEL: &str = "【AI辅助分析】结论仅供参考，须由执业医师复核确认";

/// The HTML document around the app; the server renders it for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang=i18n::lang().tag()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // In the shell (server-rendered only), not in App: there is nothing to hydrate.
                <link rel="stylesheet" href=concat!("/pkg/", env!("LEPTOS_OUTPUT_NAME"), ".css")/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Read from the request's cookie once per page on the server; the browser reads its own cookie.
    #[cfg(feature = "ssr")]
    provide_context(i18n::request_lang());
    view! {
        <Title text=PRODUCT_NAME/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">{tr("页面不存在 / Page not found")}</p> }>
                <Route path=StaticSegment("") view=home::HomePage/>
                <Route path=StaticSegment("login") view=login::LoginPage/>
                <Route path=StaticSegment("account") view=admin::AccountPage/>
                <Route path=StaticSegment("admin") view=admin::AdminPage/>
                <Route path=StaticSegment("studies") view=study::WorklistPage/>
                <Route path=(StaticSegment("studies"), ParamSegment("id")) view=study::StudyPage/>
            </Routes>
        </Router>
    }
}
