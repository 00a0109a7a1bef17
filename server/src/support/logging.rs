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
    let (file_layer, guard) = file_layer(filter, logs_dir)?;
    let stdout_layer = match format {
        LogFormat::Pretty => fmt::layer().compact().with_filter(env_filter(filter)?).boxed(),
        LogFormat::Json => fmt::layer().json().with_filter(env_filter(filter)?).boxed(),
    };
    tracing_subscriber::registry().with(file_layer).with(stdout_layer).try_init().context("logging already set up")?;
    log_panics();
    Ok(guard)
}

/// For an inference worker: the same JSON file as its server (so `status` sees a worker's errors and
/// caught libtorch panics too), and compact lines on standard error (standard output stays the
/// server's, which may be JSON).
pub fn init_worker(filter: &str, logs_dir: &Path) -> anyhow::Result<WorkerGuard> {
    let (file_layer, guard) = file_layer(filter, logs_dir)?;
    let stderr_layer = fmt::layer().compact().with_writer(std::io::stderr).with_filter(env_filter(filter)?);
    tracing_subscriber::registry().with(file_layer).with(stderr_layer).try_init().context("logging already set up")?;
    log_panics();
    Ok(guard)
}

fn env_filter(spec: &str) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(spec).with_context(|| format!("invalid log filter {spec:?}"))
}

/// The daily JSON file under logs/ (appended to, a whole line at a time, by every process of the data dir).
fn file_layer<S>(filter: &str, logs_dir: &Path) -> anyhow::Result<(impl Layer<S> + use<S>, WorkerGuard)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("medgemma-x")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(logs_dir)
        .with_context(|| format!("cannot open log file in {}", logs_dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    Ok((fmt::layer().json().with_writer(file_writer).with_filter(env_filter(filter)?), guard))
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
