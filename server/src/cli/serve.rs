use std::time::Duration;

pub fn run(args: server::startup::config::ServeArgs) -> anyhow::Result<()> {
    if args.supervise {
        // The child gets the same arguments, without --supervise.
        let child_args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).filter(|a| a != "--supervise").collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let grace = Duration::from_secs(args.shutdown_grace_secs);
        let code = runtime.block_on(server::startup::supervise::run(child_args, args.data_dir, grace))?;
        std::process::exit(code);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(server::startup::serve::run(args));
    // Do not wait on blocking tasks that are still running (e.g. CUDA detection on a stuck driver).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
