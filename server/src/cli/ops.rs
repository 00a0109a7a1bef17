//! `medgemma-x stop` and `medgemma-x status` (the nurse's stop and check buttons).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use server::startup::ops::{self, Stopped};

#[derive(clap::Args, Debug)]
pub struct DataDirArgs {
    /// The data dir of the server (as given to `serve`).
    #[arg(long, env = "MEDGEMMA_X_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    dir: DataDirArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when no server runs afterwards, 1 when it did not stop in time.
pub fn stop(args: DataDirArgs) -> anyhow::Result<ExitCode> {
    match ops::stop(&args.data_dir, Duration::from_secs(12))? {
        Stopped::Graceful { pid, after } => {
            println!("已停止（PID {pid}，用时 {:.1} 秒） / stopped", after.as_secs_f64())
        }
        Stopped::NotRunning => println!("服务未运行 / not running"),
        Stopped::StaleCleaned { pid } => {
            println!("服务未运行，已清理过期PID文件（PID {pid}） / stale PID file removed")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit codes: 0 running, 1 stale PID file, 2 unhealthy, 3 stopped.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let s = ops::status(&args.dir.data_dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::from(s.exit_code));
    }
    println!("{}", s.verdict);
    if let Some(run) = &s.run {
        println!("  PID {}  地址 {}  版本 {}  启动于 {}", run.pid, run.addr, run.version, run.started_at);
    }
    if let Some(uptime) = s.uptime_s {
        println!("  已运行 {} 小时 {} 分", uptime / 3600, uptime % 3600 / 60);
    }
    if let Some(r) = &s.readiness {
        println!("  数据库：{}", if r["database"]["ok"] == true { "正常" } else { "异常" });
        println!("  模型：{}", r["model"]["state"].as_str().unwrap_or("?"));
        println!("  计算设备：{}", r["model"]["device"].as_str().unwrap_or("?"));
        if let (Some(active), Some(waiting)) =
            (r["model"]["queue_active"].as_u64(), r["model"]["queue_waiting"].as_u64())
        {
            println!("  对话队列：进行中 {active}，排队 {waiting}");
        }
        for w in r["model"]["workers"].as_array().into_iter().flatten() {
            println!(
                "  推理进程 {}：{}，设备 {}，模型 {}，进行中 {}，重启 {} 次{}",
                w["place"].as_str().unwrap_or("?"),
                match w["state"].as_str() {
                    Some("ready") => "就绪",
                    Some("loading") => "加载中",
                    _ => "失败",
                },
                w["device"].as_str().unwrap_or("-"),
                w["model"].as_str().unwrap_or("-"),
                w["active"].as_u64().unwrap_or(0),
                w["restarts"].as_u64().unwrap_or(0),
                w["pid"].as_u64().map_or(String::new(), |pid| format!("，PID {pid}")),
            );
        }
    }
    for line in s.gpus.lines_zh() {
        println!("  {line}");
    }
    if let Some(free) = s.disk_free_bytes {
        println!("  数据盘剩余：{:.1} GB", free as f64 / 1e9);
    }
    if let Some(m) = &s.last_maintenance {
        println!(
            "  最近自动维护：{} {}：{} → {}（{}）",
            m["ts"].as_str().unwrap_or(""),
            m["event"].as_str().unwrap_or(""),
            m["seen"].as_str().unwrap_or(""),
            m["action"].as_str().unwrap_or(""),
            m["outcome"].as_str().unwrap_or("")
        );
    }
    if !s.recent_dicom.is_empty() {
        println!("  最近 DICOM 连接：");
        for line in &s.recent_dicom {
            println!("    {line}");
        }
    }
    if s.recent_errors.is_empty() {
        println!("  最近错误：无");
    } else {
        println!("  最近错误：");
        for e in &s.recent_errors {
            println!("    {e}");
        }
    }
    Ok(ExitCode::from(s.exit_code))
}
