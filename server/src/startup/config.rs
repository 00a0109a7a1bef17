//! Configuration of `medgemma-x serve`: flags > environment (`MEDGEMMA_X_*`) > defaults.
//! clap applies that precedence; this module resolves what the flags leave relative or unset.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::chat::ChatSettings;
use crate::domain::inference::{Endpoint, WeightsChoice, WorkerDevice};
use crate::startup::listener::ConnectionLimits;
use crate::store::db::DatabaseLocation;
use crate::support::data_dir::DataDir;
use crate::support::logging::LogFormat;
use crate::web::WebSettings;

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Folder for the database, images, reports and logs; created on first start.
    #[arg(long, env = "MEDGEMMA_X_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Address and port to listen on. Port 0 picks a free port (it is logged).
    #[arg(long, env = "MEDGEMMA_X_BIND", default_value = "0.0.0.0:7860")]
    pub bind: SocketAddr,

    /// A Hugging Face MedGemma / Gemma 3 checkpoint folder (config.json, tokenizer.json, *.safetensors), a
    /// Gemma 3 `.gguf` file, or a folder holding one (text only: the mmproj vision file is not read yet).
    /// Without it the server runs for viewing, measuring and reporting; chat is unavailable.
    #[arg(long, env = "MEDGEMMA_X_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// How the model is held: auto (bf16 on a GPU, f32 on the CPU), f32, bf16, or int8 (the decoder layers'
    /// projections as int8 per output channel, for CPUs and small cards).
    #[arg(long, env = "MEDGEMMA_X_WEIGHTS", value_enum, default_value_t = WeightsChoice::Auto)]
    pub weights: WeightsChoice,

    /// Inference worker processes this server starts, one per entry: `auto` (the first GPU, else the
    /// CPU), `cpu`, or GPU numbers (`0,1`: one worker on each of two GPUs; `0,cpu`: a GPU and the CPU).
    /// `none`: no local worker. Default: auto, or none when --inference-worker names workers elsewhere.
    #[arg(long, env = "MEDGEMMA_X_INFERENCE_DEVICES")]
    pub inference_devices: Option<String>,

    /// An inference worker on another machine (`medgemma-x inference --listen host:port` there),
    /// comma-separated or repeated; needs --inference-secret-file.
    #[arg(long = "inference-worker", env = "MEDGEMMA_X_INFERENCE_WORKERS", value_delimiter = ',')]
    pub inference_workers: Vec<Endpoint>,

    /// The secret shared with the workers on other machines (the same file as their --secret-file).
    #[arg(long, env = "MEDGEMMA_X_INFERENCE_SECRET_FILE")]
    pub inference_secret_file: Option<PathBuf>,

    /// Database URL. Default: an SQLite file at <data-dir>/db/medgemma-x.sqlite3.
    #[arg(long, env = "MEDGEMMA_X_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Folder with the built web assets (pkg/medgemma-x.js, .wasm, .css).
    /// Default: `site` beside the binary's folder, which is target/site for a cargo build.
    #[arg(long, env = "MEDGEMMA_X_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// Log format on standard output; the file under <data-dir>/logs is always JSON.
    #[arg(long, env = "MEDGEMMA_X_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter, tracing-subscriber syntax (e.g. `info` or `info,server=debug`).
    #[arg(long, env = "MEDGEMMA_X_LOG", default_value = "info")]
    pub log: String,

    /// Largest upload request (all files together), MiB.
    #[arg(long, env = "MEDGEMMA_X_MAX_UPLOAD_MB", default_value_t = 2048)]
    pub max_upload_mb: u64,

    /// Largest single file (or zip entry), MiB.
    #[arg(long, env = "MEDGEMMA_X_MAX_FILE_MB", default_value_t = 512)]
    pub max_file_mb: u64,

    /// What one upload request may extract from its zip archives, all entries together, MiB.
    #[arg(long, env = "MEDGEMMA_X_MAX_UPLOAD_INFLATED_MB", default_value_t = 8192)]
    pub max_upload_inflated_mb: u64,

    /// Uploads decoded and automatic nodule measurements that run at once (each takes a core); more wait
    /// their turn. Default: the number of cores.
    #[arg(long, env = "MEDGEMMA_X_IMAGE_WORKERS")]
    pub image_workers: Option<usize>,

    /// Memory the uploads being decoded may take together, MiB; a file whose decoding needs more is refused.
    #[arg(long, env = "MEDGEMMA_X_DECODE_MEMORY_MB", default_value_t = 1024)]
    pub decode_memory_mb: u64,

    /// Memory for decoded images kept for the viewer (most recently used first out), MiB.
    #[arg(long, env = "MEDGEMMA_X_IMAGE_CACHE_MB", default_value_t = 512)]
    pub image_cache_mb: u64,

    /// Uploads are refused while the data dir's disk has less than this free, MiB, so that the database,
    /// logs and reports never run out of room.
    #[arg(long, env = "MEDGEMMA_X_MIN_FREE_DISK_MB", default_value_t = 2048)]
    pub min_free_disk_mb: u64,

    /// Seconds that in-flight requests and streams get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "MEDGEMMA_X_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Open HTTP connections in all; more wait until one closes (lowered to fit the open-file limit).
    #[arg(long, env = "MEDGEMMA_X_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Open HTTP connections from one client address; more get 503 and are closed. Behind a proxy that
    /// every ward shares, raise it to near --max-connections.
    #[arg(long, env = "MEDGEMMA_X_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 256)]
    pub max_connections_per_client: usize,

    /// Seconds a client has to send a request's head (also how long an idle keep-alive connection stays
    /// open); then the connection is closed.
    #[arg(long, env = "MEDGEMMA_X_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub header_timeout_secs: u64,

    /// Longest pause between two pieces of a request's body, seconds; then the request fails.
    #[arg(long, env = "MEDGEMMA_X_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,

    /// Answers the model decodes together (continuous batching); more wait in the queue.
    #[arg(long, env = "MEDGEMMA_X_CHAT_MAX_ACTIVE", default_value_t = 8)]
    pub chat_max_active: usize,

    /// Questions that may wait for the model; one more gets 503 with Retry-After.
    #[arg(long, env = "MEDGEMMA_X_CHAT_MAX_WAITING", default_value_t = 32)]
    pub chat_max_waiting: usize,

    /// Questions one account (or one API token) may have waiting or being answered at once; one more gets
    /// 429 with Retry-After.
    #[arg(long, env = "MEDGEMMA_X_CHAT_MAX_PER_CLIENT", default_value_t = 4)]
    pub chat_max_per_client: usize,

    /// Longest an answer may take from the question to its last token, seconds (then it stops, marked so).
    #[arg(long, env = "MEDGEMMA_X_CHAT_TIMEOUT_SECS", default_value_t = 300)]
    pub chat_timeout_secs: u64,

    /// Longest one model call (a prompt, or one decoding step) may run before the watchdog takes the
    /// inference worker for hung, fails its answers and starts a fresh one, seconds. A prompt with many
    /// CT slices on a CPU is the slowest honest call; keep this well above it.
    #[arg(long, env = "MEDGEMMA_X_CHAT_STALL_SECS", default_value_t = 180)]
    pub chat_stall_secs: u64,

    /// Default answer length limit, tokens (a request may ask for up to 4096).
    #[arg(long, env = "MEDGEMMA_X_CHAT_MAX_NEW_TOKENS", default_value_t = 512)]
    pub chat_max_new_tokens: usize,

    /// Most CT slices shown to the model for one question (Google's CT recipe uses 85).
    #[arg(long, env = "MEDGEMMA_X_CHAT_MAX_CT_SLICES", default_value_t = 85)]
    pub chat_max_ct_slices: usize,

    /// A signed-in session ends after this many minutes without a request.
    #[arg(long, env = "MEDGEMMA_X_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u64,

    /// ... and this many hours after sign-in, however busy (a shift).
    #[arg(long, env = "MEDGEMMA_X_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u64,

    /// Send cookies over HTTPS only: set it when a TLS proxy (nginx) fronts the server.
    #[arg(long, env = "MEDGEMMA_X_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Draft the structured report of every study that arrives, in the background (interactive questions
    /// always go first), so that it is there when the radiologist opens the study. `false` turns it off.
    #[arg(long, env = "MEDGEMMA_X_PRE_READ", default_value_t = true, action = clap::ArgAction::Set)]
    pub pre_read: bool,

    /// Password checks (argon2id, 19 MiB and ~50 ms of a core each) that may run at once; more sign-ins
    /// wait their turn.
    #[arg(long, env = "MEDGEMMA_X_MAX_CONCURRENT_PASSWORD_HASHES", default_value_t = 4)]
    pub max_concurrent_password_hashes: usize,

    /// The HIS endpoint signed reports are POSTed to (http://…); none: no HTTP delivery.
    #[arg(long, env = "MEDGEMMA_X_HIS_URL")]
    pub his_url: Option<String>,

    /// What is POSTed to the HIS: hl7 (HL7 v2.5 ORU^R01) or fhir (FHIR R4 Bundle).
    #[arg(long, env = "MEDGEMMA_X_HIS_FORMAT", value_enum)]
    pub his_format: Option<crate::domain::exports::Format>,

    /// A folder the HIS reads: each signed report is written there (HL7 or FHIR, and PDF), atomically.
    #[arg(long, env = "MEDGEMMA_X_HIS_FOLDER")]
    pub his_folder: Option<PathBuf>,

    /// A delivery still failing this long after signing is marked failed (an admin can retry it).
    #[arg(long, env = "MEDGEMMA_X_HIS_GIVE_UP_HOURS", default_value_t = 72)]
    pub his_give_up_hours: u64,

    /// Address and port of the DICOM listener (C-ECHO, C-STORE from the modalities and the PACS); `off`: none.
    #[arg(long, env = "MEDGEMMA_X_DICOM_BIND", default_value = "0.0.0.0:11112")]
    pub dicom_bind: String,

    /// This node's AE title: what the modalities and the PACS call it.
    #[arg(long, env = "MEDGEMMA_X_DICOM_AE", default_value = "MEDGEMMAX")]
    pub dicom_ae: String,

    /// Accept associations from any AE title, not only the known peers (`medgemma-x dicom peer add`): for a
    /// first install, before the peers are entered.
    #[arg(long, env = "MEDGEMMA_X_DICOM_ACCEPT_ANY")]
    pub dicom_accept_any: bool,

    /// Largest PDU received, bytes (4096–1048576; told to the peer at association).
    #[arg(long, env = "MEDGEMMA_X_DICOM_MAX_PDU", default_value_t = 65536)]
    pub dicom_max_pdu: u32,

    /// DICOM associations at once; more are refused until one ends.
    #[arg(long, env = "MEDGEMMA_X_DICOM_MAX_ASSOCIATIONS", default_value_t = 32)]
    pub dicom_max_associations: usize,

    /// An association that sends nothing for this long is closed, seconds.
    #[arg(long, env = "MEDGEMMA_X_DICOM_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub dicom_idle_timeout_secs: u64,

    /// The PACS signed reports are sent to, as Encapsulated PDF instances of their study (C-STORE): the AE
    /// title of a peer (`medgemma-x dicom peer add`). From the same outbox, with the same retries, as the
    /// HIS delivery.
    #[arg(long, env = "MEDGEMMA_X_DICOM_REPORTS_TO")]
    pub dicom_reports_to: Option<String>,

    /// Run the server as a child process and restart it (with backoff) when it crashes or stops answering
    /// /healthz; events go to <data-dir>/logs/maintenance.log.
    #[arg(long)]
    pub supervise: bool,
}

/// `ServeArgs` with every default resolved against the data dir and the binary's location.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: DataDir,
    pub bind: SocketAddr,
    pub model_dir: Option<PathBuf>,
    pub weights: WeightsChoice,
    /// Local worker devices, and workers elsewhere with their secret.
    pub local_workers: Vec<WorkerDevice>,
    pub remote_workers: Vec<Endpoint>,
    pub remote_secret: Option<Vec<u8>>,
    pub database: DatabaseLocation,
    pub site_root: PathBuf,
    pub log_format: LogFormat,
    pub log: String,
    pub shutdown_grace: Duration,
    pub connections: ConnectionLimits,
    pub max_upload_bytes: u64,
    pub max_upload_inflated_bytes: u64,
    pub image_workers: usize,
    pub decode_memory_bytes: u64,
    pub min_free_disk_bytes: u64,
    pub image_cache_bytes: u64,
    pub limits: imaging::Limits,
    pub inference: crate::domain::inference::InferenceLimits,
    pub chat: ChatSettings,
    pub sessions: crate::web::guard::SessionSettings,
    pub deliveries: crate::domain::deliveries::DeliverySettings,
    pub max_concurrent_password_hashes: usize,
    pub pre_read: bool,
    pub dicom: crate::dimse::DicomSettings,
}

impl ServeConfig {
    /// The part of the configuration the web layer keeps in its state.
    pub fn web_settings(&self) -> WebSettings {
        WebSettings {
            limits: self.limits,
            max_upload_bytes: self.max_upload_bytes,
            max_upload_inflated_bytes: self.max_upload_inflated_bytes,
            image_workers: self.image_workers,
            decode_memory_bytes: self.decode_memory_bytes,
            min_free_disk_bytes: self.min_free_disk_bytes,
            image_cache_bytes: self.image_cache_bytes,
            chat: self.chat,
            sessions: self.sessions,
            deliveries: self.deliveries.clone(),
            max_concurrent_password_hashes: self.max_concurrent_password_hashes,
            pre_read: self.pre_read,
        }
    }

    /// Creates the data dir layout as a side effect: everything after this may rely on it.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let data_dir = DataDir::create(&args.data_dir)?;
        let database = match args.database_url {
            Some(url) => DatabaseLocation::Url(url),
            None => DatabaseLocation::SqliteFile(data_dir.default_sqlite_file()),
        };
        let site_root = match args.site_root {
            Some(dir) => dir,
            None => default_site_root()?,
        };
        let local_workers = match args.inference_devices.as_deref().map(str::trim) {
            Some("none") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|d| d.parse::<WorkerDevice>().map_err(|e| anyhow::anyhow!("--inference-devices: {e}")))
                .collect::<anyhow::Result<_>>()?,
            None if args.inference_workers.is_empty() => vec![WorkerDevice::Auto],
            None => Vec::new(),
        };
        let remote_secret = match &args.inference_secret_file {
            Some(file) => {
                let secret = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read --inference-secret-file {}", file.display()))?;
                Some(secret.trim().as_bytes().to_vec())
            }
            None if !args.inference_workers.is_empty() => {
                anyhow::bail!("--inference-worker needs --inference-secret-file (the workers' shared secret)")
            }
            None => None,
        };
        let dicom = crate::dimse::DicomSettings {
            bind: match args.dicom_bind.trim() {
                "off" | "none" => None,
                address => Some(address.parse().map_err(|_| {
                    anyhow::anyhow!("--dicom-bind `{address}`: expected host:port (0.0.0.0:11112) or off")
                })?),
            },
            ae_title: crate::domain::dicom::ae_title(&args.dicom_ae).map_err(|e| anyhow::anyhow!("--dicom-ae: {e}"))?,
            accept_any: args.dicom_accept_any,
            max_pdu: match args.dicom_max_pdu {
                pdu @ 4096..=1_048_576 => pdu,
                other => anyhow::bail!("--dicom-max-pdu {other}: expected 4096 to 1048576 bytes"),
            },
            max_associations: args.dicom_max_associations.clamp(1, 1024),
            idle_timeout: Duration::from_secs(args.dicom_idle_timeout_secs.max(1)),
        };
        let our_ae = dicom.ae_title.clone();
        Ok(Self {
            dicom,
            data_dir,
            bind: args.bind,
            model_dir: args.model_dir,
            weights: args.weights,
            local_workers,
            remote_workers: args.inference_workers,
            remote_secret,
            database,
            site_root,
            log_format: args.log_format,
            log: args.log,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            connections: ConnectionLimits {
                max_connections: args.max_connections.clamp(1, 1 << 20),
                max_per_client: args.max_connections_per_client.clamp(1, 1 << 20),
                header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
                body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            },
            max_upload_bytes: args.max_upload_mb.saturating_mul(1 << 20),
            max_upload_inflated_bytes: args.max_upload_inflated_mb.saturating_mul(1 << 20),
            image_workers: args
                .image_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .clamp(1, 256),
            decode_memory_bytes: args.decode_memory_mb.max(1).saturating_mul(1 << 20),
            min_free_disk_bytes: args.min_free_disk_mb.saturating_mul(1 << 20),
            image_cache_bytes: args.image_cache_mb.saturating_mul(1 << 20),
            limits: imaging::Limits {
                max_file_bytes: args.max_file_mb.saturating_mul(1 << 20),
                ..imaging::Limits::default()
            },
            inference: crate::domain::inference::InferenceLimits {
                max_active: args.chat_max_active.max(1),
                max_waiting: args.chat_max_waiting,
                max_per_client: args.chat_max_per_client.max(1),
                timeout: Duration::from_secs(args.chat_timeout_secs.max(1)),
                stall: Duration::from_secs(args.chat_stall_secs.max(1)),
            },
            chat: ChatSettings {
                max_new_tokens: args.chat_max_new_tokens.clamp(1, 4096),
                max_ct_slices: args.chat_max_ct_slices.max(1),
            },
            deliveries: {
                let settings = crate::domain::deliveries::DeliverySettings {
                    url: args.his_url,
                    format: args.his_format,
                    folder: args.his_folder,
                    pacs: match &args.dicom_reports_to {
                        Some(ae) => Some(crate::domain::deliveries::pacs::PacsSettings {
                            peer_ae: crate::domain::dicom::ae_title(ae)
                                .map_err(|e| anyhow::anyhow!("--dicom-reports-to: {e}"))?,
                            our_ae,
                        }),
                        None => None,
                    },
                    give_up: Duration::from_secs(args.his_give_up_hours.max(1) * 3600),
                };
                settings.check()?;
                settings
            },
            max_concurrent_password_hashes: args.max_concurrent_password_hashes.clamp(1, 256),
            pre_read: args.pre_read,
            sessions: crate::web::guard::SessionSettings {
                idle: Duration::from_secs(args.session_idle_minutes.clamp(1, 24 * 60) * 60),
                absolute: Duration::from_secs(args.session_max_hours.clamp(1, 7 * 24) * 3600),
                secure_cookies: args.secure_cookies,
            },
        })
    }

    /// Name/value pairs for the start-up log, secrets masked.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("data_dir", self.data_dir.root().display().to_string()),
            ("bind", self.bind.to_string()),
            ("model_dir", self.model_dir.as_deref().map_or("(none)".into(), |p| p.display().to_string())),
            ("weights", format!("{:?}", self.weights).to_lowercase()),
            ("inference_devices", self.local_workers.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")),
            ("inference_workers", self.remote_workers.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",")),
            ("database", self.database.display_masked()),
            ("site_root", self.site_root.display().to_string()),
            ("log_format", format!("{:?}", self.log_format).to_lowercase()),
            ("log", self.log.clone()),
            ("shutdown_grace_secs", self.shutdown_grace.as_secs().to_string()),
            ("max_connections", self.connections.max_connections.to_string()),
            ("max_connections_per_client", self.connections.max_per_client.to_string()),
            ("header_timeout_secs", self.connections.header_timeout.as_secs().to_string()),
            ("body_timeout_secs", self.connections.body_timeout.as_secs().to_string()),
            ("max_upload_mb", (self.max_upload_bytes >> 20).to_string()),
            ("max_upload_inflated_mb", (self.max_upload_inflated_bytes >> 20).to_string()),
            ("image_workers", self.image_workers.to_string()),
            ("decode_memory_mb", (self.decode_memory_bytes >> 20).to_string()),
            ("max_file_mb", (self.limits.max_file_bytes >> 20).to_string()),
            ("min_free_disk_mb", (self.min_free_disk_bytes >> 20).to_string()),
            ("image_cache_mb", (self.image_cache_bytes >> 20).to_string()),
            ("chat_max_active", self.inference.max_active.to_string()),
            ("chat_max_waiting", self.inference.max_waiting.to_string()),
            ("chat_max_per_client", self.inference.max_per_client.to_string()),
            ("chat_timeout_secs", self.inference.timeout.as_secs().to_string()),
            ("chat_stall_secs", self.inference.stall.as_secs().to_string()),
            ("chat_max_new_tokens", self.chat.max_new_tokens.to_string()),
            ("chat_max_ct_slices", self.chat.max_ct_slices.to_string()),
            ("session_idle_minutes", (self.sessions.idle.as_secs() / 60).to_string()),
            ("session_max_hours", (self.sessions.absolute.as_secs() / 3600).to_string()),
            ("secure_cookies", self.sessions.secure_cookies.to_string()),
            ("max_concurrent_password_hashes", self.max_concurrent_password_hashes.to_string()),
            ("pre_read", self.pre_read.to_string()),
            ("his_url", self.deliveries.url.clone().unwrap_or_else(|| "(none)".into())),
            ("his_folder", self.deliveries.folder.as_deref().map_or("(none)".into(), |p| p.display().to_string())),
        ]
    }
}

/// `<folder of the binary>/../site`: target/site for target/{debug,release}/medgemma-x, and
/// /opt/medgemma-x/site for /opt/medgemma-x/bin/medgemma-x in the Docker image.
fn default_site_root() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().unwrap_or(Path::new("."));
    Ok(bin_dir.join("..").join("site"))
}
