use std::time::Duration;

pub fn run(args: server::config::ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(server::serve::run(args));
    // Do not wait on blocking tasks that are still running (e.g. CUDA detection on a stuck driver).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
