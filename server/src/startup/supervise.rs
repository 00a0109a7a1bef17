//! `medgemma-x serve --supervise`: runs the server as a child process and brings it back when it crashes or
//! stops answering, with backoff, writing each event to the maintenance log. A clean exit of the child (after
//! `medgemma-x stop`) ends the supervisor too; SIGTERM to the supervisor is passed on to the child.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::support::maintenance;

/// Health probe interval, and how many failed probes in a row mean "hung".
const PROBE_EVERY: Duration = Duration::from_secs(5);
const PROBES_TO_RESTART: u32 = 3;
/// A server that has not started listening by then (loading libtorch and a model from a cold disk takes
/// a while) counts as hung.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// Restart delays double from 1 s up to a minute; a child that ran this long resets them.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const STABLE_AFTER: Duration = Duration::from_secs(300);

/// Runs until the server is stopped on purpose; returns the exit code for the supervisor.
pub async fn run(serve_args: Vec<OsString>, data_dir: PathBuf, grace: Duration) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let logs = data_dir.join("logs");
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut command = Command::new(&exe);
        command.arg("serve").args(&serve_args).kill_on_drop(true);
        // SAFETY: prctl(2) is async-signal-safe. If the supervisor itself is killed (even with SIGKILL), the
        // server gets SIGTERM and shuts down cleanly instead of running on unsupervised.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let started = Instant::now();
        let mut failed_probes = 0;
        let mut probe = tokio::time::interval(PROBE_EVERY);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                _ = terminate.recv() => return stop_child(&mut child, grace).await,
                _ = interrupt.recv() => return stop_child(&mut child, grace).await,
                _ = probe.tick() => {
                    let ok = match probe_child(&data_dir, child.id()).await {
                        Probe::Healthy => true,
                        Probe::NotListeningYet => started.elapsed() < START_TIMEOUT,
                        Probe::NoAnswer => false,
                    };
                    if ok {
                        failed_probes = 0;
                    } else {
                        failed_probes += 1;
                        if failed_probes == PROBES_TO_RESTART {
                            maintenance::record(&logs, "server_hung", &format!(
                                "/healthz did not answer {PROBES_TO_RESTART} times in a row"), "kill -9 and restart", "pending");
                            let _ = child.start_kill();
                        }
                    }
                }
            }
        };
        if status.success() {
            maintenance::record(
                &logs,
                "server_stopped",
                "the server exited cleanly (stopped on purpose)",
                "supervisor exits",
                "ok",
            );
            return Ok(0);
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff = Duration::from_secs(1);
        }
        maintenance::record(
            &logs,
            "server_exited",
            &format!("the server exited: {status}, after {} s", started.elapsed().as_secs()),
            &format!("restart in {} s", backoff.as_secs()),
            "pending",
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = terminate.recv() => return Ok(0),
            _ = interrupt.recv() => return Ok(0),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// SIGTERM to the child, wait out its grace period (plus a margin), then SIGKILL.
async fn stop_child(child: &mut Child, grace: Duration) -> anyhow::Result<i32> {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a PID we own.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    match tokio::time::timeout(grace + Duration::from_secs(5), child.wait()).await {
        Ok(status) => Ok(status?.code().unwrap_or(1)),
        Err(_) => {
            child.kill().await?;
            Ok(1)
        }
    }
}

enum Probe {
    Healthy,
    /// The child has not published its address yet (the run file is absent or a dead predecessor's).
    NotListeningYet,
    NoAnswer,
}

/// /healthz of the child, at the address it published in its run file.
async fn probe_child(data_dir: &Path, child_pid: Option<u32>) -> Probe {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || match crate::support::runfile::read_info(&data_dir) {
        Some(info) if Some(info.pid) == child_pid => {
            if crate::startup::ops::get_json(info.addr, "/healthz").is_some_and(|v| v["status"] == "ok") {
                Probe::Healthy
            } else {
                Probe::NoAnswer
            }
        }
        _ => Probe::NotListeningYet,
    })
    .await
    .unwrap_or(Probe::NoAnswer)
}
