//! The HTTP surface: health probes, the JSON API and the Leptos pages, in one router.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::data_dir::DataDir;
use crate::db::{self, Pool};
use crate::images::Images;
use crate::model::ModelSetup;
use app::status::{DatabaseStatus, ModelStatus, Readiness};

/// Everything a handler may need. Cheap to clone (pool and options are reference counted).
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Pool,
    /// "sqlite" or "postgres", for status pages.
    pub db_backend: String,
    pub model: ModelSetup,
    pub started: Instant,
    /// Cancelled when shutdown begins: long-lived responses (SSE streams) watch it and end cleanly.
    pub shutdown: CancellationToken,
    pub data_dir: DataDir,
    /// Stored images, the limits every file is held to, decoded-frame cache.
    pub images: Arc<Images>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The model's worker; None when no usable model is configured.
    pub inference: Option<crate::inference::Inference>,
    pub chat: crate::config::ChatSettings,
    /// Pseudonyms (audit trail, logs) and device cookies.
    pub site_key: crate::pseudonym::SiteKey,
    pub audit: Arc<crate::audit::AuditLog>,
    pub throttle: Arc<crate::auth::throttle::Throttle>,
    pub sessions: crate::auth::guard::SessionSettings,
    /// Where signed reports go, and the bell that wakes the delivery worker after a signature.
    pub deliveries: crate::deliveries::DeliverySettings,
    pub delivery_wake: Arc<tokio::sync::Notify>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    // Sessions live in the database (table tower_sessions, migration 0004): they survive a restart, and
    // the cookie carries only a random id. Strict SameSite: no other site's page can send it.
    let sessions = SessionManagerLayer::new(SqliteStore::new(state.db.clone()))
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
        .route("/metrics", get(crate::metrics::endpoint))
        .nest("/api/v1", crate::api::router(state.images.max_upload_bytes))
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        // Inside the metrics layer, so refused requests are counted too; the session layer wraps it.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::guard::guard))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
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
    Json(Health { status: "ok", version: VERSION, uptime_s: state.started.elapsed().as_secs() })
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
    let readiness =
        Readiness { ready: database.ok, version: VERSION.to_string(), database, model: model_status(&state) };
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}

fn model_status(state: &AppState) -> ModelStatus {
    use crate::inference::EngineState;
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
    match inference.state() {
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
            state: if info.test_model {
                format!(
                    "已加载随机测试模型 {}（回答无医学意义） / random test model loaded: answers mean nothing",
                    info.name
                )
            } else {
                format!("已加载模型 {} / model loaded", info.name)
            },
            device: info.device.clone(),
            name: Some(info.name),
            test_model: info.test_model,
            queue_waiting: waiting,
            queue_active: active,
        },
    }
}
