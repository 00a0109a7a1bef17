use crate::i18n::tr;
use leptos::prelude::*;

use crate::status::Readiness;
use crate::{AI_ADVISORY_LABEL, PRODUCT_NAME};

/// Landing page: what this is, and whether the server behind it is ready.
#[component]
pub fn HomePage() -> impl IntoView {
    // Effects run only in the browser, so this flips once the page is hydrated. End-to-end tests and
    // support staff read `data-hydrated` to tell a live page from a server-rendered one.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <main class="home" data-hydrated=move || hydrated.get().to_string()>
            <header class="home-header">
                <h1>{PRODUCT_NAME}</h1>
                <p class="tagline">{tr("基层胸部影像智能辅助系统 / Chest imaging assistant for county hospitals")}</p>
                <crate::login::UserBar/>
            </header>
            <p class="advisory">{AI_ADVISORY_LABEL}</p>
            <p><a class="worklist-link" href="/studies">{tr("进入工作列表 / Open the worklist")}</a></p>
            <section class="server-status" aria-live="polite">
                <h2>{tr("服务状态 / Server status")}</h2>
                <ServerStatus/>
            </section>
        </main>
    }
}

/// Fetched in the browser after hydration, so the page itself renders even when the database is down.
#[component]
fn ServerStatus() -> impl IntoView {
    let readiness = LocalResource::new(fetch_readiness);
    view! {
        <Transition fallback=|| view! { <p class="status-pending">{tr("正在检查… / Checking…")}</p> }>
            {move || Suspend::new(async move {
                match readiness.await {
                    Ok(r) => view! { <ReadinessView r/> }.into_any(),
                    Err(message) => view! {
                        <p class="status-error">{tr("无法连接服务 / Cannot reach the server: ")} {message}</p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReadinessView(r: Readiness) -> impl IntoView {
    let database = if r.database.ok {
        tr("正常 / OK").to_string()
    } else {
        r.database.error.clone().unwrap_or_else(|| tr("不可用 / unavailable").into())
    };
    view! {
        <dl class="status-list">
            <dt>{tr("版本 / Version")}</dt><dd class="status-version">{r.version}</dd>
            <dt>{tr("数据库 / Database")}</dt><dd class="status-database">{database}</dd>
            <dt>{tr("模型 / Model")}</dt><dd class="status-model">{tr(&r.model.state).to_string()}</dd>
            <dt>{tr("计算设备 / Device")}</dt><dd class="status-device">{r.model.device}</dd>
        </dl>
    }
}

#[cfg(feature = "hydrate")]
async fn fetch_readiness() -> Result<Readiness, String> {
    let response = gloo_net::http::Request::get("/readyz").send().await.map_err(|e| e.to_string())?;
    // /readyz answers 503 with the same body when not ready; the body says why.
    response.json::<Readiness>().await.map_err(|e| e.to_string())
}

/// On the server the resource never runs (it is a LocalResource); this keeps the ssr build whole.
#[cfg(not(feature = "hydrate"))]
async fn fetch_readiness() -> Result<Readiness, String> {
    std::future::pending().await
}
