//! Logs: pretty or JSON on standard output, and always JSON in a daily-rolled file under the data
//! dir's logs/, which `status` and support staff read.

use std::path::Path;

use anyhow::Context;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// `--log-format`: what standard output gets (the file is always JSON).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Daily files kept: about a month, enough to look back at an incident a nurse reports late.
const LOG_FILES_KEPT: usize = 31;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the file.
pub fn init(format: LogFormat, filter: &str, logs_dir: &Path) -> anyhow::Result<WorkerGuard> {
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("medgemma-x")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(logs_dir)
        .with_context(|| format!("cannot open log file in {}", logs_dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);

    let env_filter = |spec: &str| EnvFilter::try_new(spec).with_context(|| format!("invalid log filter {spec:?}"));
    let file_layer = fmt::layer().json().with_writer(file_writer).with_filter(env_filter(filter)?);
    let stdout_layer = match format {
        LogFormat::Pretty => fmt::layer().compact().with_filter(env_filter(filter)?).boxed(),
        LogFormat::Json => fmt::layer().json().with_filter(env_filter(filter)?).boxed(),
    };
    tracing_subscriber::registry().with(file_layer).with(stdout_layer).try_init().context("logging already set up")?;
    log_panics();
    Ok(guard)
}

/// Panics go to the log file too (standard error alone is lost under systemd or `start.sh`): a request
/// handler that panicked, or a libtorch error the inference worker caught, shows in `status`.
fn log_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(error = %info, "panic");
        default_hook(info);
    }));
}
