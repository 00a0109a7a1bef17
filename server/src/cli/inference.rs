//! `medgemma-x inference`: one worker process, owning one device and one loaded model. `serve` starts its
//! own (one per `--inference-devices` entry) over a Unix socket; a worker on another machine listens on
//! TCP under its own systemd unit, and the web servers name it with `--inference-worker host:port`.

use std::path::PathBuf;

use anyhow::Context;
use server::domain::inference::WeightsChoice;
use server::domain::inference::protocol::Endpoint;
use server::domain::inference::worker::{self, WorkerDevice};

#[derive(clap::Args, Debug)]
pub struct InferenceArgs {
    /// The checkpoint folder or GGUF file to load.
    #[arg(long, env = "MEDGEMMA_X_MODEL_DIR")]
    pub model_dir: PathBuf,
    /// auto (the first GPU, else the CPU), cpu, or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: WorkerDevice,
    #[arg(long, value_enum, default_value_t = WeightsChoice::Auto)]
    pub weights: WeightsChoice,
    /// unix:/path/to.sock, or host:port for web servers on other machines (then keep the port to the
    /// hospital network: the shared secret authenticates, it does not encrypt).
    #[arg(long)]
    pub listen: Endpoint,
    /// A file holding the secret the web servers prove (`--inference-secret-file` on their side). The
    /// server that starts its own workers passes a fresh one in MEDGEMMA_X_INFERENCE_SECRET instead.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// libtorch's CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Log filter (tracing's syntax); the lines go to standard error.
    #[arg(long, env = "MEDGEMMA_X_LOG", default_value = "info")]
    pub log: String,
    /// Also log, as JSON, into this folder's daily file (`serve` passes its data dir's logs/).
    #[arg(long)]
    pub logs_dir: Option<PathBuf>,
}

pub fn run(args: InferenceArgs) -> anyhow::Result<()> {
    // Kept to the end: dropping it flushes the log file.
    let _log_guard = match &args.logs_dir {
        Some(dir) => Some(server::support::logging::init_worker(&args.log, dir)?),
        None => {
            tracing_subscriber::fmt()
                .compact()
                .with_writer(std::io::stderr)
                .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid log filter")?)
                .init();
            None
        }
    };
    let secret = match &args.secret_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the secret file {}", file.display()))?
            .trim()
            .to_string(),
        None => std::env::var("MEDGEMMA_X_INFERENCE_SECRET")
            .context("no secret: give --secret-file (or MEDGEMMA_X_INFERENCE_SECRET)")?,
    };
    anyhow::ensure!(
        secret.len() >= 16,
        "the secret is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)"
    );
    worker::run(worker::WorkerSettings {
        model_dir: args.model_dir,
        device: args.device,
        weights: args.weights,
        listen: args.listen,
        secret: secret.into_bytes(),
        threads: args.threads,
    })
}
