//! `medgemma-x backup --out FILE` and `medgemma-x restore --from FILE` (数据备份与恢复).

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The data dir to back up (the server may be running).
    #[arg(long, env = "MEDGEMMA_X_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// The backup file to write (a zip; written whole or not at all).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// An empty (or new) data dir to restore into.
    #[arg(long, env = "MEDGEMMA_X_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// The backup file.
    #[arg(long)]
    from: PathBuf,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let summary = runtime.block_on(server::domain::backup::backup(&args.data_dir, &args.out))?;
    println!(
        "备份完成 / backup written: {} — {} image objects, {} reports, database {} KB, {} MB in all",
        args.out.display(),
        summary.objects,
        summary.reports,
        summary.database_bytes >> 10,
        summary.total_bytes >> 20
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let summary = server::domain::backup::restore(&args.from, &args.data_dir)?;
    println!(
        "恢复完成 / restored into {}: {} image objects, {} reports, database {} KB (every file checked)",
        args.data_dir.display(),
        summary.objects,
        summary.reports,
        summary.database_bytes >> 10
    );
    Ok(())
}
