//! `medgemma-x stop` and `medgemma-x status`: what a nurse (or a script) needs to stop the server and to
//! see whether it is well. Exit codes follow the LSB init-script convention where it has one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::support::runfile::{self, RunInfo};

/// Exit codes of `status` (and, for 3, of `stop` when nothing ran).
pub mod exit {
    /// Running and ready.
    pub const RUNNING: u8 = 0;
    /// Not running, but a PID file was left behind (cleaned by `stop`).
    pub const STALE: u8 = 1;
    /// Running but not answering, or answering "not ready".
    pub const UNHEALTHY: u8 = 2;
    /// Not running.
    pub const STOPPED: u8 = 3;
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub state: &'static str,
    pub exit_code: u8,
    /// One line for the nurse, in Chinese.
    pub verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<i64>,
    /// The /readyz answer, when the server answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<serde_json::Value>,
    pub disk_free_bytes: Option<u64>,
    /// The machine's GPUs and their memory in use (by any process), from NVML.
    pub gpus: crate::support::gpu::Gpus,
    /// The last errors in the log (timestamp and message; no patient data is logged).
    pub recent_errors: Vec<String>,
    /// The last DICOM associations in the log: time, calling AE, address, what was stored or why refused.
    pub recent_dicom: Vec<String>,
    /// The last line of logs/maintenance.log (a restart, a repair), as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_maintenance: Option<serde_json::Value>,
}

pub fn status(data_dir: &Path) -> Status {
    let recent_errors = recent_errors(&data_dir.join("logs"), 5);
    let recent_dicom = recent_associations(&data_dir.join("logs"), 5);
    let last_maintenance = std::fs::read_to_string(data_dir.join("logs/maintenance.log"))
        .ok()
        .and_then(|text| text.lines().last().and_then(|l| serde_json::from_str(l).ok()));
    let disk_free_bytes = crate::support::data_dir::free_bytes(data_dir);
    let gpus = crate::support::gpu::Gpus::query();
    let base = |state, exit_code, verdict: String| Status {
        state,
        exit_code,
        verdict,
        run: None,
        uptime_s: None,
        readiness: None,
        disk_free_bytes,
        gpus: gpus.clone(),
        recent_errors: recent_errors.clone(),
        recent_dicom: recent_dicom.clone(),
        last_maintenance: last_maintenance.clone(),
    };
    if !runfile::locked(data_dir) {
        return match runfile::read_pid(data_dir) {
            Some(pid) => {
                base("stale", exit::STALE, format!("服务未运行，但留有过期的PID文件（PID {pid}），运行 stop 可清理"))
            }
            None => base("stopped", exit::STOPPED, "服务未运行".into()),
        };
    }
    let run = runfile::read_info(data_dir);
    let Some(info) = run.clone() else {
        return base("starting", exit::UNHEALTHY, "服务正在启动，尚未开始监听".into());
    };
    let uptime_s = time::OffsetDateTime::parse(&info.started_at, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds());
    let readiness = get_json(info.addr, "/readyz");
    let (state, exit_code, verdict) = match &readiness {
        None => (
            "unhealthy",
            exit::UNHEALTHY,
            format!("服务进程在运行（PID {}），但端口 {} 无响应", info.pid, info.addr.port()),
        ),
        Some(r) if r["ready"] == true => (
            "running",
            exit::RUNNING,
            format!(
                "服务运行正常：PID {}，端口 {}；{}{}{}",
                info.pid,
                info.addr.port(),
                r["model"]["state"].as_str().unwrap_or("").split(" / ").next().unwrap_or(""),
                match (r["model"]["queue_active"].as_u64(), r["model"]["queue_waiting"].as_u64()) {
                    (Some(active), Some(waiting)) => format!("；对话：进行中 {active}，排队 {waiting}"),
                    _ => String::new(),
                },
                match (r["dicom"]["listening"].as_str(), r["dicom"]["error"].as_str()) {
                    (Some(at), _) => format!("；DICOM：{} 监听 {at}", r["dicom"]["ae_title"].as_str().unwrap_or("")),
                    (None, Some(error)) => format!("；DICOM 未能监听：{error}"),
                    (None, None) => "；DICOM 未开启".into(),
                }
            ),
        ),
        Some(_) => ("unhealthy", exit::UNHEALTHY, "服务在运行，但数据库不可用，请查看日志".into()),
    };
    Status {
        state,
        exit_code,
        verdict,
        run,
        uptime_s,
        readiness,
        disk_free_bytes,
        gpus,
        recent_errors,
        recent_dicom,
        last_maintenance,
    }
}

/// What `stop` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM, within the wait.
    Graceful {
        pid: u32,
        after: Duration,
    },
    NotRunning,
    /// Nothing ran; a left-over PID file was removed.
    StaleCleaned {
        pid: u32,
    },
}

/// SIGTERM to the server of `data_dir`, then wait up to `wait` for it to exit.
pub fn stop(data_dir: &Path, wait: Duration) -> anyhow::Result<Stopped> {
    if !runfile::locked(data_dir) {
        return Ok(match runfile::read_pid(data_dir) {
            Some(pid) => {
                runfile::clean_stale(data_dir);
                Stopped::StaleCleaned { pid }
            }
            None => Stopped::NotRunning,
        });
    }
    let pid = runfile::read_pid(data_dir).ok_or_else(|| {
        anyhow::anyhow!("服务在运行但没有PID文件 / a server holds the lock but wrote no PID file yet")
    })?;
    let sent = Instant::now();
    runfile::terminate(pid)?;
    while sent.elapsed() < wait {
        if !runfile::locked(data_dir) {
            return Ok(Stopped::Graceful { pid, after: sent.elapsed() });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("服务（PID {pid}）在 {} 秒内未退出 / server did not exit within {} s", wait.as_secs(), wait.as_secs())
}

/// GET over plain HTTP/1.0 on loopback (the status command has no HTTP client dependency).
pub(crate) fn get_json(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let target = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// The newest JSON log file (medgemma-x.YYYY-MM-DD.log, so the newest sorts last; console.log of start.sh
/// is not JSON and is skipped), its events parsed.
fn newest_log_events(logs: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(logs) else { return vec![] };
    let is_daily_log = |name: &str| name.starts_with("medgemma-x.") && name.ends_with(".log");
    let newest = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_daily_log))
        .map(|e| e.path())
        .max();
    let Some(text) = newest.and_then(|file| std::fs::read_to_string(file).ok()) else { return vec![] };
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The last `n` DICOM associations (ended or refused) of the newest JSON log file.
fn recent_associations(logs: &Path, n: usize) -> Vec<String> {
    let lines: Vec<String> = newest_log_events(logs)
        .iter()
        .filter(|e| e["fields"]["message"].as_str().is_some_and(|m| m.starts_with("DICOM association")))
        .map(|e| {
            let f = &e["fields"];
            let field = |name: &str| match &f[name] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            let time = e["timestamp"].as_str().unwrap_or("");
            if field("message").ends_with("refused") {
                format!("{time} refused from {}: {}", field("peer"), field("error"))
            } else {
                let error = field("error");
                let ending = if error.is_empty() { String::new() } else { format!(" ({error})") };
                let (ae, peer, stored, failed) = (field("calling_ae"), field("peer"), field("stored"), field("failed"));
                format!("{time} {ae} from {peer}: stored {stored}, failed {failed}{ending}")
            }
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The last `n` ERROR events of the newest JSON log file, as "timestamp message".
fn recent_errors(logs: &Path, n: usize) -> Vec<String> {
    let errors: Vec<String> = newest_log_events(logs)
        .iter()
        .filter(|e| e["level"] == "ERROR")
        .map(|e| {
            let detail = e["fields"]["error"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
            format!(
                "{} {}{detail}",
                e["timestamp"].as_str().unwrap_or(""),
                e["fields"]["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    errors[errors.len().saturating_sub(n)..].to_vec()
}
