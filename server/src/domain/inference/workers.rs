//! The web server's side of each worker: starts the process (a local worker) or connects to it (a
//! worker elsewhere), proves the shared secret, reads what it says, and replaces it when it hangs or
//! exits. One link thread per worker.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{self, Connection, Endpoint, FromWorker, ToWorker};
use super::{
    EngineState, Failure, ModelInfo, Outgoing, Shared, WeightsChoice, WorkerDevice, WorkerPlan, WorkerStatus, lock,
};

/// Longest a local worker may take from its start to accepting the server's connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(60);

/// Writes to a worker that take longer than this mean it is not reading: it is taken for gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Worker {
    pub index: usize,
    place: Place,
    secret: Vec<u8>,
    status: Mutex<Status>,
}

enum Place {
    Local {
        device: WorkerDevice,
        model_dir: PathBuf,
        weights: WeightsChoice,
        socket: PathBuf,
        threads: Option<usize>,
        log_filter: String,
    },
    Remote(Endpoint),
}

struct Status {
    state: EngineState,
    /// The connection's writing half, while connected.
    writer: Option<Connection>,
    pid: Option<u32>,
    /// The worker's last message (or the moment it was given work while idle).
    last_progress: Instant,
    /// What the worker is expected to be doing, for the maintenance log: "prompt" or "step".
    doing: &'static str,
    /// Set by the stall watch when it kills the worker: what hung, and for how long.
    stuck: Option<(&'static str, Duration)>,
    restarts: u64,
}

/// Why a worker's connection ended.
enum Ending {
    /// It exited or closed the connection (or the stall watch killed it).
    Closed,
    /// It said something that could not be read.
    Garbled(String),
}

impl Worker {
    /// One worker per local device, then one per remote address.
    pub fn plan(plan: &WorkerPlan) -> Vec<Arc<Worker>> {
        let local_secret = protocol::random_hex().into_bytes();
        let cpu_workers = plan.local.iter().filter(|d| **d == WorkerDevice::Cpu).count();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut workers = Vec::new();
        if let Some(model_dir) = &plan.model_dir {
            for device in &plan.local {
                let index = workers.len();
                workers.push(Place::Local {
                    device: *device,
                    model_dir: model_dir.clone(),
                    weights: plan.weights,
                    socket: socket_path(&plan.socket_dir, index),
                    // CPU workers side by side share the cores rather than each taking them all.
                    threads: (*device == WorkerDevice::Cpu && cpu_workers > 1).then(|| (cores / cpu_workers).max(1)),
                    log_filter: plan.log_filter.clone(),
                });
            }
        }
        workers.extend(plan.remote.iter().cloned().map(Place::Remote));
        workers
            .into_iter()
            .enumerate()
            .map(|(index, place)| {
                let secret = match (&place, &plan.remote_secret) {
                    (Place::Remote(_), Some(secret)) => secret.clone(),
                    _ => local_secret.clone(),
                };
                Arc::new(Worker {
                    index,
                    place,
                    secret,
                    status: Mutex::new(Status {
                        state: EngineState::Loading,
                        writer: None,
                        pid: None,
                        last_progress: Instant::now(),
                        doing: "prompt",
                        stuck: None,
                        restarts: 0,
                    }),
                })
            })
            .collect()
    }

    pub fn state(&self) -> EngineState {
        lock(&self.status).state.clone()
    }

    pub fn is_ready(&self) -> bool {
        let status = lock(&self.status);
        matches!(status.state, EngineState::Ready(_)) && status.stuck.is_none() && status.writer.is_some()
    }

    pub fn info(&self) -> Option<ModelInfo> {
        match &lock(&self.status).state {
            EngineState::Ready(info) => Some(info.clone()),
            _ => None,
        }
    }

    pub fn on_cpu(&self) -> bool {
        self.info().is_none_or(|info| info.device == "cpu")
    }

    /// "local cpu", "local cuda:1", or the address of a worker elsewhere.
    fn place_label(&self) -> String {
        match &self.place {
            Place::Local { device, .. } => format!("local {device}"),
            Place::Remote(endpoint) => endpoint.to_string(),
        }
    }

    pub fn status(&self, active: usize) -> WorkerStatus {
        let status = lock(&self.status);
        let (state, info) = match &status.state {
            EngineState::Loading => ("loading", None),
            EngineState::Ready(info) => ("ready", Some(info)),
            EngineState::Failed(_) => ("failed", None),
        };
        WorkerStatus {
            index: self.index,
            place: self.place_label(),
            state,
            device: info.map(|i| i.device.clone()),
            model: info.map(|i| i.name.clone()),
            active,
            restarts: status.restarts,
            pid: status.pid,
        }
    }

    /// The dispatcher gave it a question; an idle worker's stall clock starts now.
    pub fn dispatched(&self, was_idle: bool) {
        let mut status = lock(&self.status);
        if was_idle {
            status.last_progress = Instant::now();
            status.doing = "prompt";
        }
    }

    pub(super) fn send(&self, outgoing: Outgoing) -> Result<(), protocol::ProtocolError> {
        let mut status = lock(&self.status);
        let writer = status.writer.as_mut().ok_or_else(|| protocol::ProtocolError::Refused("not connected".into()))?;
        match outgoing {
            Outgoing::Submit { id, job, images } => protocol::send_job(writer, id, job, &images),
            Outgoing::Cancel { id } => {
                protocol::send(writer, &ToWorker::Cancel { id })?;
                Ok(std::io::Write::flush(writer)?)
            }
        }
    }

    /// Called by the dispatcher while the worker has answers in progress: past the stall limit without
    /// progress, the worker is killed (its link then fails the answers and starts a fresh one).
    pub fn watch(&self, stall: Duration) {
        let mut status = lock(&self.status);
        let quiet = status.last_progress.elapsed();
        if status.stuck.is_some() || status.writer.is_none() || quiet <= stall {
            return;
        }
        status.stuck = Some((status.doing, quiet));
        tracing::error!(
            worker = self.index,
            doing = status.doing,
            quiet_s = quiet.as_secs_f64(),
            "inference worker hung; killing it"
        );
        drop(status);
        self.kill();
    }

    /// Ends the worker: SIGKILL to a local process (its memory goes back to the machine), the
    /// connection closed for one elsewhere (which exits when its connection ends).
    pub fn kill(&self) {
        let status = lock(&self.status);
        if let Some(pid) = status.pid {
            // The link thread reaps the process, so the pid cannot have been reused yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        if let Some(writer) = &status.writer {
            writer.shutdown();
        }
    }

    /// The link thread: starts (or reaches) the worker, reads it until it ends, replaces it, forever.
    pub(super) fn supervise(self: Arc<Self>, shared: &Shared) {
        let mut generation: u64 = 0;
        let mut failures_in_a_row: u32 = 0;
        loop {
            let started = Instant::now();
            let (ending, exit) = match self.open(generation, &shared.logs_dir) {
                Ok((reader, child)) => {
                    let ending = self.read(reader, shared, generation);
                    // Forgotten before it is reaped: `kill` never signals a reused pid.
                    lock(&self.status).pid = None;
                    (Some(ending), child.map(reap))
                }
                Err(reason) => {
                    tracing::error!(worker = self.index, error = %reason, "inference worker could not be started or reached");
                    lock(&self.status).state = EngineState::Failed(reason);
                    (None, None)
                }
            };
            if let Some(ending) = ending {
                self.replace(shared, ending, exit);
            }
            generation += 1;
            // A worker that dies at once again and again (a broken install) is retried ever more slowly.
            failures_in_a_row = if started.elapsed() > Duration::from_secs(30) { 0 } else { failures_in_a_row + 1 };
            if failures_in_a_row > 1 {
                std::thread::sleep(Duration::from_secs(1 << failures_in_a_row.min(5)));
            }
        }
    }

    /// Starts a local worker process (or reaches a remote one) and proves the secret.
    fn open(&self, generation: u64, logs_dir: &std::path::Path) -> Result<(Connection, Option<Child>), String> {
        let (connection, child) = match &self.place {
            Place::Local { device, model_dir, weights, socket, threads, log_filter } => {
                let _ = std::fs::remove_file(socket);
                let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
                let mut command = Command::new(exe);
                command
                    .arg("inference")
                    .arg("--model-dir")
                    .arg(model_dir)
                    .arg("--device")
                    .arg(device.to_string())
                    .arg("--weights")
                    .arg(format!("{weights:?}").to_lowercase())
                    .arg("--listen")
                    .arg(format!("unix:{}", socket.display()))
                    .arg("--logs-dir")
                    .arg(logs_dir)
                    .arg("--log")
                    .arg(log_filter)
                    .env("MEDGEMMA_X_INFERENCE_SECRET", String::from_utf8_lossy(&self.secret).as_ref())
                    .stdin(Stdio::null());
                if let Some(threads) = threads {
                    command.arg("--threads").arg(threads.to_string());
                }
                if generation > 0 {
                    for variable in super::worker::FAULT_VARIABLES {
                        command.env_remove(variable);
                    }
                }
                // The worker dies with the server, however the server ends.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let mut child = command.spawn().map_err(|e| format!("cannot start the inference worker: {e}"))?;
                lock(&self.status).pid = Some(child.id());
                match connect_to_local(&mut child, socket) {
                    Ok(connection) => (connection, Some(child)),
                    Err(reason) => {
                        lock(&self.status).pid = None;
                        reap(child);
                        return Err(reason);
                    }
                }
            }
            Place::Remote(endpoint) => {
                let connection = Connection::connect(endpoint)
                    .map_err(|e| format!("cannot reach the inference worker at {endpoint}: {e}"))?;
                (connection, None)
            }
        };
        let mut reader = connection;
        let mut writer = reader.try_clone().map_err(|e| e.to_string())?;
        hello(&mut reader, &mut writer, &self.secret).map_err(|e| format!("the inference worker refused: {e}"))?;
        writer.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(|e| e.to_string())?;
        lock(&self.status).writer = Some(writer);
        Ok((reader, child))
    }

    /// Reads the worker's messages until its connection ends.
    fn read(&self, mut reader: Connection, shared: &Shared, generation: u64) -> Ending {
        loop {
            let message = match protocol::receive::<FromWorker>(&mut reader) {
                Ok(Some(message)) => message,
                Ok(None) => return Ending::Closed,
                Err(protocol::ProtocolError::Io(_)) => return Ending::Closed,
                Err(e) => return Ending::Garbled(e.to_string()),
            };
            {
                let mut status = lock(&self.status);
                status.last_progress = Instant::now();
                match &message {
                    FromWorker::Started { .. } | FromWorker::Step { .. } => status.doing = "step",
                    FromWorker::Done { .. } | FromWorker::Failed { .. } => status.doing = "prompt",
                    _ => {}
                }
            }
            match message {
                FromWorker::Loading | FromWorker::Challenge { .. } => {}
                FromWorker::Ready { info } => {
                    tracing::info!(worker = self.index, model = %info.name, device = %info.device, dtype = %info.dtype, test_model = info.test_model, "model loaded");
                    lock(&self.status).state = EngineState::Ready(info);
                    if generation > 0 {
                        self.record(
                            shared,
                            "inference_restarted",
                            "模型已重新加载 / model reloaded",
                            "推理进程重启完成 / inference worker restarted",
                            "ok",
                        );
                    }
                    lock(&shared.queue).dirty = true;
                    shared.wake.notify_one();
                }
                FromWorker::LoadFailed { reason } => {
                    tracing::error!(worker = self.index, error = %reason, "model failed to load; this worker takes no questions");
                    if generation > 0 {
                        let seen = format!("模型重新加载失败 / model reload failed: {reason}");
                        self.record(
                            shared,
                            "inference_restarted",
                            &seen,
                            "推理进程重启完成 / inference worker restarted",
                            "failed",
                        );
                    }
                    lock(&self.status).state = EngineState::Failed(reason);
                }
                answer => shared.answered(self, answer),
            }
        }
    }

    /// After the connection ended: fails the answers that were on the worker and says what happened.
    fn replace(&self, shared: &Shared, ending: Ending, exit: Option<String>) {
        let stuck = {
            let mut status = lock(&self.status);
            status.writer = None;
            status.pid = None;
            status.state = EngineState::Loading;
            status.restarts += 1;
            status.stuck.take()
        };
        let exit = exit.unwrap_or_else(|| "connection closed".into());
        let (event, failure, seen) = match (stuck, ending) {
            (Some((what, quiet)), _) => (
                "inference_stuck",
                Failure::new(
                    "engine_stuck",
                    format!("推理引擎 {} 秒无响应，本次回答已停止，推理引擎正在自动重启，请稍后重试", quiet.as_secs()),
                    format!(
                        "The inference engine made no progress for {} s; this answer was stopped and the engine is restarting. Try again shortly",
                        quiet.as_secs()
                    ),
                ),
                format!(
                    "推理调用（{what}）{} 秒无进展 / an engine call ({what}) made no progress for {} s",
                    quiet.as_secs(),
                    quiet.as_secs()
                ),
            ),
            (None, ending) => (
                "inference_exited",
                Failure::new(
                    "engine_crashed",
                    "推理进程意外退出，本次回答已停止，推理引擎正在自动重启，请稍后重试",
                    "The inference worker exited unexpectedly; this answer was stopped and the engine is restarting. Try again shortly",
                ),
                match ending {
                    Ending::Closed => format!("推理进程意外退出 / the inference worker ended ({exit})"),
                    Ending::Garbled(e) => format!(
                        "推理进程发来无法读取的消息 / the inference worker sent an unreadable message: {e} ({exit})"
                    ),
                },
            ),
        };
        let failed = shared.fail_worker(self.index, &failure);
        let action = format!(
            "停止进行中的 {failed} 个回答，结束该推理进程并启动新进程、重新加载模型 / failed {failed} answers in progress, ended the worker process and started a new one that reloads the model"
        );
        tracing::error!(worker = self.index, error = %seen, "inference worker replaced");
        self.record(shared, event, &seen, &action, "pending");
    }

    fn record(&self, shared: &Shared, event: &str, seen: &str, action: &str, outcome: &str) {
        let seen = format!("推理进程 {} ({}): {seen}", self.index, self.place_label());
        crate::support::maintenance::record(&shared.logs_dir, event, &seen, action, outcome);
    }
}

/// Waits until the new process accepts on its socket (it binds before loading the model).
fn connect_to_local(child: &mut Child, socket: &std::path::Path) -> Result<Connection, String> {
    let deadline = Instant::now() + CONNECT_WITHIN;
    let endpoint = Endpoint::Unix(socket.to_path_buf());
    loop {
        if let Ok(connection) = Connection::connect(&endpoint) {
            return Ok(connection);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the inference worker exited at start ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the inference worker did not open {} within {} s",
                socket.display(),
                CONNECT_WITHIN.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Answers the worker's challenge.
fn hello(reader: &mut Connection, writer: &mut Connection, secret: &[u8]) -> Result<(), protocol::ProtocolError> {
    let Some(FromWorker::Challenge { version, nonce }) = protocol::receive(reader)? else {
        return Err(protocol::ProtocolError::Refused("no challenge".into()));
    };
    if version != protocol::VERSION {
        return Err(protocol::ProtocolError::Refused(format!(
            "it speaks protocol {version}, this server {}",
            protocol::VERSION
        )));
    }
    protocol::send(writer, &ToWorker::Hello { version, proof: protocol::proof(secret, &nonce) })?;
    std::io::Write::flush(writer)?;
    // A worker that accepts says so; one that does not closes the connection.
    match protocol::receive(reader) {
        Ok(Some(FromWorker::Loading)) => Ok(()),
        Ok(_) | Err(protocol::ProtocolError::Io(_)) => Err(protocol::ProtocolError::Refused(
            "it closed the connection after the hello: a different shared secret (--inference-secret-file) \
             or protocol version"
                .into(),
        )),
        Err(e) => Err(e),
    }
}

/// Waits for a process that was killed or has exited; says how it ended.
fn reap(mut child: Child) -> String {
    let _ = child.kill();
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// A Unix socket path must fit in 108 bytes; a deep data dir falls back to the temp dir.
fn socket_path(dir: &std::path::Path, index: usize) -> PathBuf {
    let path = dir.join(format!("inference-{index}.sock"));
    if path.as_os_str().len() < 100 {
        path
    } else {
        std::env::temp_dir().join(format!("medgemma-x-{}-inference-{index}.sock", std::process::id()))
    }
}

#[cfg(test)]
impl Worker {
    /// A worker that is connected (to nothing) with a model ready on `device`, for the dispatch tests.
    pub fn ready_for_tests(index: usize, device: &str) -> Arc<Worker> {
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let info = ModelInfo {
            name: "tiny".into(),
            device: device.into(),
            dtype: "float".into(),
            test_model: true,
            context_tokens: 1024,
            reads_images: true,
            image_size: 64,
            tokens_per_side: 4,
        };
        Arc::new(Worker {
            index,
            place: Place::Remote(Endpoint::Tcp(format!("test:{index}"))),
            secret: Vec::new(),
            status: Mutex::new(Status {
                state: EngineState::Ready(info),
                writer: Some(Connection::Unix(ours)),
                pid: None,
                last_progress: Instant::now(),
                doing: "prompt",
                stuck: None,
                restarts: 0,
            }),
        })
    }
}
