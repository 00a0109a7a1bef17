//! The application state every handler receives, and the two ways to build it: [`AppState::new`] from
//! what `startup::serve` opened and resolved, [`AppState::for_tests`] on a temp dir for in-process tests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::domain::ask::Asking;
use crate::domain::audit::AuditLog;
use crate::domain::auth::password::HashPermits;
use crate::domain::auth::throttle::Throttle;
use crate::domain::chat::ChatSettings;
use crate::domain::deliveries::DeliverySettings;
use crate::domain::images::{ImageSettings, Images};
use crate::domain::inference::Inference;
use crate::domain::metrics::Metrics;
use crate::domain::model::ModelSetup;
use crate::domain::pre_read::PreReads;
use crate::store::db::{self, DatabaseLocation, Pool};
use crate::store::objects::ObjectStore;
use crate::support::data_dir::{DataDir, DiskGuard};
use crate::support::pseudonym::SiteKey;
use crate::web::guard::SessionSettings;

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
    /// Refuses new data while the data dir's disk is nearly full.
    pub disk: Arc<DiskGuard>,
    /// Stored images, the limits every file is held to, decoded-frame cache.
    pub images: Arc<Images>,
    pub metrics: Arc<Metrics>,
    /// The model's worker; None when no usable model is configured.
    pub inference: Option<Inference>,
    pub chat: ChatSettings,
    /// Pseudonyms (audit trail, logs) and device cookies.
    pub site_key: SiteKey,
    pub audit: Arc<AuditLog>,
    pub throttle: Arc<Throttle>,
    /// Caps the password checks running at once (sign-in, password change).
    pub password_hashes: Arc<HashPermits>,
    pub sessions: SessionSettings,
    /// Where signed reports go, and the bell that wakes the delivery worker after a signature.
    pub deliveries: DeliverySettings,
    pub delivery_wake: Arc<tokio::sync::Notify>,
    /// The drafts written in the background when studies arrive.
    pub pre_reads: Arc<PreReads>,
    /// The DICOM listener's state, for /readyz.
    pub dicom: Arc<crate::domain::dicom::NodeStatus>,
}

/// What the web layer takes from the configuration (startup::config resolves it).
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub limits: imaging::Limits,
    pub max_upload_bytes: u64,
    /// What one upload may extract from its zip archives, bytes.
    pub max_upload_inflated_bytes: u64,
    /// Uploads decoded and automatic measurements run at once.
    pub image_workers: usize,
    /// Memory the uploads being decoded may take together, bytes.
    pub decode_memory_bytes: u64,
    /// New data (uploads, reports, measurements, questions) is refused below this much free disk.
    pub min_free_disk_bytes: u64,
    pub image_cache_bytes: u64,
    pub chat: ChatSettings,
    pub sessions: SessionSettings,
    pub deliveries: DeliverySettings,
    /// Password checks (argon2id, 19 MiB each) that may run at once.
    pub max_concurrent_password_hashes: usize,
    /// Draft every arriving study's report in the background.
    pub pre_read: bool,
}

/// What `serve` has opened before the web layer starts.
pub struct Opened {
    pub db: Pool,
    pub db_backend: String,
    pub data_dir: DataDir,
    pub site_key: SiteKey,
    pub model: ModelSetup,
    pub inference: Option<Inference>,
    pub leptos_options: LeptosOptions,
    pub shutdown: CancellationToken,
    pub started: Instant,
}

impl AppState {
    pub fn new(opened: Opened, settings: WebSettings) -> AppState {
        let Opened { db, db_backend, data_dir, site_key, model, inference, leptos_options, shutdown, started } = opened;
        let images = Images::new(
            ObjectStore::new(data_dir.objects()),
            ImageSettings {
                limits: settings.limits,
                max_upload_bytes: settings.max_upload_bytes,
                max_upload_inflated_bytes: settings.max_upload_inflated_bytes,
                image_workers: settings.image_workers,
                decode_memory_bytes: settings.decode_memory_bytes,
                cache_budget_bytes: usize::try_from(settings.image_cache_bytes).unwrap_or(usize::MAX),
            },
        );
        let mut state = AppState {
            leptos_options,
            pre_reads: Arc::new(PreReads::off()),
            dicom: Arc::default(),
            audit: Arc::new(AuditLog::new(db.clone())),
            db,
            db_backend,
            model,
            started,
            shutdown,
            disk: Arc::new(DiskGuard::new(&data_dir, settings.min_free_disk_bytes)),
            data_dir,
            images: Arc::new(images),
            metrics: Arc::default(),
            inference,
            chat: settings.chat,
            site_key,
            throttle: Arc::default(),
            password_hashes: Arc::new(HashPermits::new(settings.max_concurrent_password_hashes)),
            sessions: settings.sessions,
            deliveries: settings.deliveries,
            delivery_wake: Arc::default(),
        };
        if settings.pre_read {
            state.pre_reads = Arc::new(PreReads::new(state.asking()));
        }
        state
    }

    /// A state on a fresh SQLite database and data dir under `dir`, with no model and no deliveries: for
    /// handler tests through `tower::ServiceExt::oneshot`, no socket and no process.
    pub async fn for_tests(dir: &Path) -> anyhow::Result<AppState> {
        let location = DatabaseLocation::SqliteFile(dir.join("test.sqlite3"));
        let opened = Opened {
            db: db::connect(&location).await?,
            db_backend: db::backend_name(&location),
            data_dir: DataDir::create(&dir.join("data"))?,
            site_key: SiteKey::from_bytes([9; 32]),
            model: ModelSetup::inspect(None),
            inference: None,
            leptos_options: LeptosOptions::builder().output_name("medgemma-x").build(),
            shutdown: CancellationToken::new(),
            started: Instant::now(),
        };
        let settings = WebSettings {
            limits: imaging::Limits::default(),
            max_upload_bytes: 1 << 30,
            max_upload_inflated_bytes: 4 << 30,
            image_workers: 2,
            decode_memory_bytes: 1 << 30,
            min_free_disk_bytes: 0,
            image_cache_bytes: 1 << 26,
            chat: ChatSettings { max_new_tokens: 64, max_ct_slices: 85 },
            sessions: SessionSettings {
                idle: Duration::from_secs(1800),
                absolute: Duration::from_secs(12 * 3600),
                secure_cookies: false,
            },
            deliveries: DeliverySettings::default(),
            max_concurrent_password_hashes: 4,
            pre_read: false,
        };
        Ok(AppState::new(opened, settings))
    }
}

impl AppState {
    /// What answering a question needs, lent from the state.
    pub fn asking(&self) -> Asking {
        Asking {
            db: self.db.clone(),
            images: Arc::clone(&self.images),
            inference: self.inference.clone(),
            model: self.model.clone(),
            chat: self.chat,
            metrics: Arc::clone(&self.metrics),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
