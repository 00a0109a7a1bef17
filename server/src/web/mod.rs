//! The HTTP surface: health probes, the JSON API and the Leptos pages, in one router. Handlers extract,
//! call the domain and map the result; SQL and the product's rules live below (tests/layering.rs).

pub mod api;
pub mod error;
pub mod extract;
pub mod guard;
pub mod metrics;
mod state;

pub use state::{AppState, Opened, WebSettings};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use leptos_axum::{LeptosRoutes, generate_route_list};
use serde::Serialize;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::store::db;
use app::status::{DatabaseStatus, ModelStatus, Readiness};

pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    // Sessions live in the database (table tower_sessions, migration 0004): they survive a restart, and
    // the cookie carries only a random id. Strict SameSite: no other site's page can send it.
    let sessions = SessionManagerLayer::new(db::session_store(&state.db))
        .with_name("mgx_session")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.sessions.secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(state.sessions.idle).unwrap_or(time::Duration::minutes(30)),
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::web::metrics::endpoint))
        .nest("/api/v1", crate::web::api::router(state.images.max_upload_bytes))
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        // Inside the metrics layer, so refused requests are counted too; the session layer wraps it.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::web::guard::guard))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::web::metrics::track))
        // gzip for clients that ask: the wasm bundle (765 → ~320 KiB) and JSON. Never for server-sent
        // events (tokens must not wait in a compressor) or images (PNG is compressed already): tower-http's
        // default predicate skips both. Nor for raw pixel values (octet-stream): a 3000×3000 frame would
        // cost more compressing than it saves on a gigabit LAN.
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream"))),
        )
        // Method and path only: query strings (a worklist search by patient name) never reach the log.
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
}

/// Liveness: the process answers. Touches nothing that can block.
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok", version: crate::VERSION, uptime_s: state.started.elapsed().as_secs() })
}

/// Readiness: the database answers. The model is reported but does not decide it (the server is
/// useful without one).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match tokio::time::timeout(std::time::Duration::from_secs(2), db::ping(&state.db)).await {
        Ok(Ok(())) => DatabaseStatus { ok: true, backend: state.db_backend.clone(), error: None },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database error");
            DatabaseStatus {
                ok: false,
                backend: state.db_backend.clone(),
                error: Some("数据库错误 / database error".into()),
            }
        }
        Err(_) => DatabaseStatus {
            ok: false,
            backend: state.db_backend.clone(),
            error: Some("数据库无响应（2 秒） / database did not answer within 2 s".into()),
        },
    };
    let readiness = Readiness {
        ready: database.ok,
        version: crate::VERSION.to_string(),
        database,
        model: model_status(&state),
        dicom: state.dicom.snapshot(),
    };
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}

fn model_status(state: &AppState) -> ModelStatus {
    use crate::domain::inference::EngineState;
    let Some(inference) = &state.inference else {
        return ModelStatus {
            loaded: false,
            state: state.model.describe(),
            device: state.model.device_label(),
            ..ModelStatus::default()
        };
    };
    let queue = inference.queue();
    let (waiting, active) = (Some(queue.waiting), Some(queue.active));
    let workers: Vec<app::status::InferenceWorker> = queue
        .workers
        .into_iter()
        .map(|w| app::status::InferenceWorker {
            place: w.place,
            state: w.state.into(),
            device: w.device,
            model: w.model,
            active: w.active,
            restarts: w.restarts,
            pid: w.pid,
        })
        .collect();
    let status = match inference.state() {
        EngineState::Loading => ModelStatus {
            loaded: false,
            state: "模型加载中 / model loading".into(),
            device: state.model.device_label(),
            ..ModelStatus::default()
        },
        EngineState::Failed(reason) => ModelStatus {
            loaded: false,
            state: format!("模型加载失败，对话不可用 / model failed to load: {reason}"),
            device: state.model.device_label(),
            ..ModelStatus::default()
        },
        EngineState::Ready(info) => ModelStatus {
            loaded: true,
            state: match (info.test_model, info.reads_images) {
                (true, _) => format!(
                    "已加载随机测试模型 {}（回答无医学意义）{} / random test model loaded: answers mean nothing{}",
                    info.name,
                    if info.reads_images { "" } else { "，纯文本模型，不读图像" },
                    if info.reads_images { "" } else { "; text-only, reads no images" },
                ),
                (false, true) => format!("已加载模型 {} / model loaded", info.name),
                (false, false) => format!(
                    "已加载纯文本模型 {}：只读问题、测量和报告，不读图像 / text-only model loaded: it reads the \
                     question, measurements and report, not the images",
                    info.name
                ),
            },
            device: info.device.clone(),
            name: Some(info.name),
            test_model: info.test_model,
            text_only: !info.reads_images,
            queue_waiting: waiting,
            queue_active: active,
            ..ModelStatus::default()
        },
    };
    ModelStatus { workers, ..status }
}
