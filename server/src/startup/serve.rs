//! `medgemma-x serve`: resolve the configuration, open storage, and serve until told to stop.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use leptos::prelude::LeptosOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::domain::inference::{Inference, WorkerPlan};
use crate::domain::model::{ModelSetup, ModelState};
use crate::startup::config::{ServeArgs, ServeConfig};
use crate::startup::listener::{self, Drain};
use crate::startup::shutdown;
use crate::store::db;
use crate::support::clock::now_rfc3339;
use crate::support::pseudonym::SiteKey;
use crate::support::runfile::{RunInfo, RunLock};
use crate::support::{logging, sd_notify};
use crate::web::{self, AppState, Opened};

/// Name cargo-leptos gives the wasm, js and css bundles (`name` in the workspace metadata, passed to
/// every build through .cargo/config.toml).
pub const SITE_OUTPUT_NAME: &str = env!("LEPTOS_OUTPUT_NAME");

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = ServeConfig::resolve(args)?;
    // Before logging to the data dir's files: a second server must not even open them.
    let run_lock = RunLock::acquire(config.data_dir.root())?;
    let _log_guard = logging::init(config.log_format, &config.log, &config.data_dir.logs())?;
    let served = serve(config, run_lock, started).await;
    // Into the log file as well as onto the terminal: `medgemma-x status` lists it after a failed start
    // (a taken port, a database that cannot be opened) when the nurse asks why it is not running.
    if let Err(err) = &served {
        tracing::error!(error = format!("{err:#}"), "服务启动或运行失败 / the server failed");
    }
    served
}

async fn serve(config: ServeConfig, run_lock: RunLock, started: Instant) -> anyhow::Result<()> {
    for (name, value) in config.describe() {
        tracing::info!(setting = name, value = %value, "configuration");
    }

    let stale = config.data_dir.clear_tmp().context("cannot clear the data dir's tmp folder")?;
    if stale > 0 {
        tracing::warn!(files = stale, "removed partial uploads left by an earlier crash");
        crate::support::maintenance::record(
            &config.data_dir.logs(),
            "partial_uploads_removed",
            &format!("{stale} partial upload(s) in tmp/ from an interrupted run"),
            "removed (they were never recorded; the uploader sees them as failed)",
            "ok",
        );
    }
    let pool = db::connect(&config.database).await?;
    db::record_start(&pool, &now_rfc3339()).await.context("cannot write to the database")?;
    let site_key = SiteKey::load_or_create(&config.data_dir.secrets())?;
    if let Some(file) = crate::domain::auth::users::bootstrap_admin(&pool, &config.data_dir.secrets()).await? {
        crate::domain::audit::AuditLog::new(pool.clone())
            .record(crate::domain::audit::AuditEvent {
                actor_kind: "system",
                action: "user.add".into(),
                outcome: "ok",
                detail: Some("admin role=admin (first start; password in secrets/initial-admin-password)".into()),
                ..Default::default()
            })
            .await?;
        // The password itself stays in the file (never in a log).
        tracing::warn!(
            file = %file.display(),
            "首次启动：已创建管理员账号 admin，初始密码见该文件，登录后请修改 / first start: created the administrator `admin`; its password is in this file"
        );
    }
    tokio::spawn(tower_sessions::session_store::ExpiredDeletion::continuously_delete_expired(
        db::session_store(&pool),
        std::time::Duration::from_secs(3600),
    ));

    let model = ModelSetup::inspect(config.model_dir.as_deref());
    tracing::info!(model = %model.describe(), "model");
    detect_device_in_background(&model);
    // Worker processes load the model: the server answers (and serves everything but chat) meanwhile.
    let local_model = match &model.state {
        ModelState::Checked(dir) => Some(dir.clone()),
        ModelState::NotConfigured | ModelState::Unreadable { .. } => None,
    };
    let plan = WorkerPlan {
        local: if local_model.is_some() { config.local_workers.clone() } else { Vec::new() },
        model_dir: local_model,
        weights: config.weights,
        socket_dir: config.data_dir.tmp(),
        remote: config.remote_workers.clone(),
        remote_secret: config.remote_secret.clone(),
        log_filter: config.log.clone(),
    };
    let inference = (!plan.local.is_empty() || !plan.remote.is_empty())
        .then(|| Inference::start(plan, config.data_dir.logs(), config.inference));

    check_site_assets(&config.site_root);
    let leptos_options = LeptosOptions::builder()
        .output_name(SITE_OUTPUT_NAME)
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .build();

    let shutdown_token = CancellationToken::new();
    let opened = Opened {
        db: pool.clone(),
        db_backend: db::backend_name(&config.database),
        data_dir: config.data_dir.clone(),
        site_key,
        model,
        inference,
        leptos_options,
        shutdown: shutdown_token.clone(),
        started,
    };
    let state = AppState::new(opened, config.web_settings());
    tokio::spawn(Arc::clone(&state.pre_reads).resume());
    Arc::new(crate::dimse::Node::new(
        config.dicom.clone(),
        pool.clone(),
        Arc::clone(&state.images),
        Arc::clone(&state.pre_reads),
        Arc::clone(&state.audit),
        Arc::clone(&state.disk),
        Arc::clone(&state.dicom),
        config.data_dir.tmp(),
        tokio::runtime::Handle::current(),
    ))
    .start();
    if config.deliveries.any() {
        tokio::spawn(crate::domain::deliveries::run(
            pool.clone(),
            Arc::clone(&state.images),
            config.deliveries.clone(),
            Arc::clone(&state.delivery_wake),
            shutdown_token.clone(),
        ));
    }

    let signals = shutdown::Signals::install().context("cannot install signal handlers")?;
    let listener = TcpListener::bind(config.bind).await.with_context(|| {
        format!("无法监听 {0}（端口可能已被占用） / cannot listen on {0} (port in use?)", config.bind)
    })?;
    let addr = listener.local_addr()?;
    run_lock.publish(&RunInfo {
        pid: std::process::id(),
        addr,
        started_at: now_rfc3339(),
        version: crate::VERSION.to_string(),
        secure_cookies: config.sessions.secure_cookies,
    })?;
    tracing::info!(addr = %addr, startup_ms = started.elapsed().as_millis() as u64, "listening");
    tracing::info!("服务已启动，请在浏览器打开 http://<服务器IP>:{} / server started", addr.port());
    sd_notify::notify("READY=1");
    if let Some(interval) = sd_notify::watchdog_interval() {
        // Pinged from the runtime itself: if it wedges, the pings stop and systemd restarts us.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                sd_notify::notify("WATCHDOG=1");
            }
        });
    }

    tokio::spawn({
        let token = shutdown_token.clone();
        async move {
            signals.recv().await;
            sd_notify::notify("STOPPING=1");
            token.cancel();
        }
    });
    let limits = config.connections.fitted_to_open_file_limit();
    match listener::serve_until(listener, web::app(state), limits, shutdown_token, config.shutdown_grace).await? {
        Drain::Complete => tracing::info!("all requests finished; exiting"),
        Drain::GraceExpired => tracing::warn!(
            grace_secs = config.shutdown_grace.as_secs(),
            "grace period over; cutting remaining connections"
        ),
    }
    pool.close().await;
    drop(run_lock);
    Ok(())
}

/// CUDA detection can take a second on a GPU machine; /healthz must not wait for it.
fn detect_device_in_background(model: &ModelSetup) {
    let slot = Arc::clone(&model.device);
    tokio::task::spawn_blocking(move || {
        let device = models::device::ComputeDevice::detect();
        tracing::info!(
            device = %device.label(),
            cuda_devices = device.cuda_devices,
            cuda_runtime_linked = device.cuda_runtime_linked,
            "compute device"
        );
        let _ = slot.set(device);
    });
}

/// The pages still render without the wasm bundle, but nothing on them responds; say so at start.
fn check_site_assets(site_root: &std::path::Path) {
    let js = site_root.join("pkg").join(format!("{SITE_OUTPUT_NAME}.js"));
    if !js.is_file() {
        tracing::warn!(
            expected = %js.display(),
            "网页资源缺失，页面将无法交互；请先运行 cargo leptos build / web assets missing: run `cargo leptos build` or pass --site-root"
        );
    }
}
