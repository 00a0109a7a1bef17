//! Which server runs on a data dir: an exclusive lock held for the life of the process (released by the
//! kernel even on kill -9, so a crash never blocks the next start), and the files `stop` and `status` read:
//!
//! ```text
//! <data-dir>/medgemma-x.lock      locked while a server runs
//! <data-dir>/medgemma-x.pid       the PID, one line (for scripts and kill)
//! <data-dir>/medgemma-x.run.json  {"pid", "addr", "started_at", "version"}
//! ```
//! Both files are written atomically (temporary file, then rename) and removed at a clean exit.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::support::files::write_atomically;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub pid: u32,
    pub addr: SocketAddr,
    /// RFC 3339.
    pub started_at: String,
    pub version: String,
    /// Whether session cookies are HTTPS-only (`--secure-cookies`), for the security self-check.
    #[serde(default)]
    pub secure_cookies: bool,
}

pub fn pid_path(data_dir: &Path) -> PathBuf {
    data_dir.join("medgemma-x.pid")
}

pub fn info_path(data_dir: &Path) -> PathBuf {
    data_dir.join("medgemma-x.run.json")
}

/// Held by `serve` until it exits.
pub struct RunLock {
    _lock: File,
    data_dir: PathBuf,
}

impl RunLock {
    /// Takes the data dir, or explains who has it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("medgemma-x.lock"))
            .context("cannot open the lock file")?;
        if lock.try_lock().is_err() {
            let holder = read_pid(data_dir).map_or_else(|| "?".to_string(), |p| p.to_string());
            bail!(
                "此数据目录已有服务在运行（PID {holder}），请勿重复启动 / another medgemma-x (PID {holder}) already \
                 serves {}",
                data_dir.display()
            );
        }
        Ok(Self { _lock: lock, data_dir: data_dir.to_path_buf() })
    }

    /// Publishes the PID and address once the server listens.
    pub fn publish(&self, info: &RunInfo) -> anyhow::Result<()> {
        write_atomically(&pid_path(&self.data_dir), format!("{}\n", info.pid).as_bytes())?;
        write_atomically(&info_path(&self.data_dir), serde_json::to_string_pretty(info)?.as_bytes())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(pid_path(&self.data_dir));
        let _ = std::fs::remove_file(info_path(&self.data_dir));
    }
}

pub fn read_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_path(data_dir)).ok()?.trim().parse().ok()
}

pub fn read_info(data_dir: &Path) -> Option<RunInfo> {
    serde_json::from_str(&std::fs::read_to_string(info_path(data_dir)).ok()?).ok()
}

/// Whether a process with this PID exists (kill -0).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Sends SIGTERM.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("PID out of range"))?;
    // SAFETY: sending SIGTERM to a PID read from our own PID file.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Removes the PID and run files of a server that is gone.
pub fn clean_stale(data_dir: &Path) {
    let _ = std::fs::remove_file(pid_path(data_dir));
    let _ = std::fs::remove_file(info_path(data_dir));
}

/// Whether a server holds the data dir's lock right now. Unlike `kill -0` on a PID file, this cannot
/// mistake an unrelated process that reused the PID for our server.
pub fn locked(data_dir: &Path) -> bool {
    let Ok(file) = File::options().create(true).truncate(false).write(true).open(data_dir.join("medgemma-x.lock"))
    else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}
