//! `medgemma-x inference`: the process that owns one device and one loaded model. It decodes every
//! admitted question together, one token each per step (continuous batching: a question joins between
//! steps, a finished one leaves), and streams the pieces to the web server that connected to it.
//!
//! It serves one authenticated connection and exits when that connection ends: the web server that
//! started it (or, for a worker on another machine, its systemd unit) starts a fresh one. A hung or
//! crashed libtorch call therefore costs this process only; killing it returns its memory, GPU
//! memory included, to the machine.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use models::device::ComputeDevice;
use models::generate::Stream;
use models::weights::Quantization;
use models::{Engine, EngineError};
use tch::{Device, Kind};

use super::protocol::{self, Connection, Endpoint, FromWorker, Job, Piece, ToWorker};
use super::{Failure, ModelInfo, Priority, WeightsChoice, lock};

/// Which device a worker computes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerDevice {
    /// The first GPU when there is one, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for WorkerDevice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(WorkerDevice::Auto),
            "cpu" => Ok(WorkerDevice::Cpu),
            other => other
                .strip_prefix("cuda:")
                .unwrap_or(other)
                .parse::<usize>()
                .map(WorkerDevice::Cuda)
                .map_err(|_| format!("`{other}`: expected auto, cpu, cuda:N or a GPU number")),
        }
    }
}

impl std::fmt::Display for WorkerDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerDevice::Auto => f.write_str("auto"),
            WorkerDevice::Cpu => f.write_str("cpu"),
            WorkerDevice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// What the worker is started with.
pub struct WorkerSettings {
    pub model_dir: PathBuf,
    pub device: WorkerDevice,
    pub weights: WeightsChoice,
    pub listen: Endpoint,
    pub secret: Vec<u8>,
    /// libtorch's CPU threads (several CPU workers on one machine share its cores).
    pub threads: Option<usize>,
}

/// Runs the worker until its connection ends.
pub fn run(settings: WorkerSettings) -> anyhow::Result<()> {
    if let Some(threads) = settings.threads {
        tch::set_num_threads(threads.max(1) as i32);
    }
    // Loading starts at once, so a worker on another machine is ready before a server connects.
    let (loaded_tx, loaded_rx) = std::sync::mpsc::channel::<Result<Loaded, String>>();
    let (dir, device, weights) = (settings.model_dir.clone(), settings.device, settings.weights);
    std::thread::Builder::new().name("inference-load".into()).spawn(move || {
        let result = catch(|| load(&dir, device, weights)).and_then(|r| r.map_err(|e| format!("{e:#}")));
        let _ = loaded_tx.send(result.map(|(engine, info)| Loaded { engine, info }));
    })?;
    let connection = accept(&settings.listen, &settings.secret)?;
    let mut writer = connection.try_clone()?;
    protocol::send(&mut writer, &FromWorker::Loading)?;
    let outcome = loaded_rx.recv().unwrap_or_else(|_| Err("the loading thread ended without an answer".into()));
    let out = Arc::new(Mutex::new(writer));
    let inbox = Arc::new(Inbox::default());
    match outcome {
        Ok(loaded) => {
            tracing::info!(model = %loaded.info.name, device = %loaded.info.device, "model loaded");
            say(&out, &FromWorker::Ready { info: loaded.info.clone() });
            let (out, inbox) = (Arc::clone(&out), Arc::clone(&inbox));
            std::thread::Builder::new()
                .name("inference-engine".into())
                .spawn(move || EngineLoop { engine: loaded.engine, info: loaded.info, out, inbox }.run())?;
        }
        Err(reason) => {
            tracing::error!(error = %reason, "model failed to load");
            say(&out, &FromWorker::LoadFailed { reason });
        }
    }
    read_questions(connection, &inbox);
    // The server went away (or sent what cannot be read): nothing is left to answer for. `_exit`, not
    // `exit`: libtorch's and CUDA's teardown could wait forever on an engine call that hangs.
    tracing::info!("the server's connection ended; exiting");
    unsafe { libc::_exit(0) }
}

struct Loaded {
    engine: Engine,
    info: ModelInfo,
}

/// Waits for a connection that answers the challenge; others are closed unread.
fn accept(endpoint: &Endpoint, secret: &[u8]) -> anyhow::Result<Connection> {
    enum Listener {
        Unix(UnixListener),
        Tcp(TcpListener),
    }
    let listener = match endpoint {
        Endpoint::Unix(path) => {
            let _ = std::fs::remove_file(path);
            Listener::Unix(UnixListener::bind(path)?)
        }
        Endpoint::Tcp(address) => Listener::Tcp(TcpListener::bind(address)?),
    };
    tracing::info!(%endpoint, "inference worker listening");
    loop {
        let mut connection = match &listener {
            Listener::Unix(l) => Connection::Unix(l.accept()?.0),
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                tracing::info!(%peer, "connection");
                stream.set_nodelay(true)?;
                Connection::Tcp(stream)
            }
        };
        match authenticate(&mut connection, secret) {
            Ok(()) => return Ok(connection),
            Err(e) => {
                tracing::warn!(error = %e, "a connection did not prove the shared secret; closed");
                connection.shutdown();
            }
        }
    }
}

fn authenticate(connection: &mut Connection, secret: &[u8]) -> Result<(), protocol::ProtocolError> {
    // Nobody unauthenticated gets to hold the worker: 5 s to answer.
    connection.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let nonce = protocol::random_hex();
    protocol::send(connection, &FromWorker::Challenge { version: protocol::VERSION, nonce: nonce.clone() })?;
    let answer = protocol::receive::<ToWorker>(connection)?;
    let Some(ToWorker::Hello { version, proof }) = answer else {
        return Err(protocol::ProtocolError::Refused("no hello".into()));
    };
    if version != protocol::VERSION {
        return Err(protocol::ProtocolError::Refused(format!(
            "protocol {version}, this worker speaks {}",
            protocol::VERSION
        )));
    }
    if !protocol::proves(secret, &nonce, &proof) {
        return Err(protocol::ProtocolError::Refused("wrong proof".into()));
    }
    connection.set_read_timeout(None)?;
    Ok(())
}

/// Sends one message; a server that cannot be written to is gone, and so is this worker's purpose.
fn say(out: &Mutex<Connection>, message: &FromWorker) {
    let mut out = lock(out);
    if protocol::send(&mut *out, message).and_then(|()| Ok(std::io::Write::flush(&mut *out)?)).is_err() {
        unsafe { libc::_exit(0) }
    }
}

/// Questions received and not yet admitted, and the cancel flags of every question not yet ended.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    wake: Condvar,
}

#[derive(Default)]
struct InboxState {
    waiting: VecDeque<Question>,
    cancelled: HashMap<u64, Arc<AtomicBool>>,
}

struct Question {
    id: u64,
    job: Box<Job>,
    images: Vec<image::RgbImage>,
    cancelled: Arc<AtomicBool>,
    received: Instant,
}

/// Reads the server's messages until the connection ends.
fn read_questions(mut connection: Connection, inbox: &Inbox) {
    loop {
        let message = match protocol::receive::<ToWorker>(&mut connection) {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "unreadable message from the server; closing");
                return;
            }
        };
        match message {
            ToWorker::Submit { id, job } => {
                let images = match protocol::receive_images(&mut connection, &job.images) {
                    Ok(images) => images,
                    Err(e) => {
                        tracing::error!(error = %e, "unreadable images from the server; closing");
                        return;
                    }
                };
                let cancelled = Arc::new(AtomicBool::new(false));
                let mut state = lock(&inbox.state);
                state.cancelled.insert(id, Arc::clone(&cancelled));
                state.waiting.push_back(Question { id, job, images, cancelled, received: Instant::now() });
                drop(state);
                inbox.wake.notify_one();
            }
            ToWorker::Cancel { id } => {
                if let Some(flag) = lock(&inbox.state).cancelled.get(&id) {
                    flag.store(true, Ordering::SeqCst);
                }
                inbox.wake.notify_one();
            }
            ToWorker::Hello { .. } => tracing::warn!("a second hello; ignored"),
        }
    }
}

/// An admitted question and its stream.
struct Active {
    question: Question,
    stream: Stream,
    history_turns: usize,
    queued_ms: f64,
}

struct EngineLoop {
    engine: Engine,
    info: ModelInfo,
    out: Arc<Mutex<Connection>>,
    inbox: Arc<Inbox>,
}

impl EngineLoop {
    fn run(self) {
        let mut active: Vec<Active> = Vec::new();
        loop {
            let priorities: Vec<Priority> = active.iter().map(|a| a.question.job.priority).collect();
            if let Some(question) = self.next_question(&priorities) {
                self.admit(question, &mut active);
            }
            for a in &mut active {
                if a.question.cancelled.load(Ordering::SeqCst) {
                    a.stream.cancel();
                }
            }
            let priorities: Vec<Priority> = active.iter().map(|a| a.question.job.priority).collect();
            let stepping = to_step(&priorities);
            if !stepping.is_empty() {
                self.step(&mut active, &stepping);
            }
            self.retire(&mut active);
        }
    }

    /// The next question to start (see [`next_to_admit`]); blocks while there is nothing to do.
    /// Questions cancelled before their turn end here.
    fn next_question(&self, active: &[Priority]) -> Option<Question> {
        let watched = active.contains(&Priority::Interactive);
        let mut state = lock(&self.inbox.state);
        loop {
            while let Some(i) = state.waiting.iter().position(|q| q.cancelled.load(Ordering::SeqCst)) {
                let Some(question) = state.waiting.remove(i) else { break };
                state.cancelled.remove(&question.id);
                let failure = Failure::new("cancelled", "已取消", "Cancelled");
                say(&self.out, &FromWorker::Failed { id: question.id, failure });
            }
            let waiting: Vec<Priority> = state.waiting.iter().map(|q| q.job.priority).collect();
            if let Some(i) = next_to_admit(&waiting, watched) {
                return state.waiting.remove(i);
            }
            if !active.is_empty() {
                return None;
            }
            state = self.inbox.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Runs the question's prompt. Out of memory with history in the prompt: once more without it.
    /// A background question's prompt run stops as soon as a watched one waits; it goes back to the
    /// head of the line and starts over after.
    fn admit(&self, question: Question, active: &mut Vec<Active>) {
        let queued_ms = question.job.queued_ms + question.received.elapsed().as_secs_f64() * 1000.0;
        let mut history = question.job.history.len();
        let somebody_waits = || lock(&self.inbox.state).waiting.iter().any(|q| q.job.priority == Priority::Interactive);
        let make_way: &dyn Fn() -> bool = match question.job.priority {
            Priority::Interactive => &models::engine::never,
            Priority::Background => &somebody_waits,
        };
        loop {
            match catch(|| start(&self.engine, &self.info, &question, history, make_way)) {
                Ok(Ok(Some((stream, history_turns)))) => {
                    say(&self.out, &FromWorker::Started { id: question.id });
                    active.push(Active { question, stream, history_turns, queued_ms });
                    return;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(id = question.id, "a background prompt run made way for a watched question");
                    lock(&self.inbox.state).waiting.push_front(question);
                    return;
                }
                Ok(Err(failure)) => return self.fail(question, failure),
                Err(message) if is_out_of_memory(&message) && history > 0 => {
                    tracing::warn!("out of memory on a prompt with history; retrying without it");
                    history = 0;
                }
                Err(message) => return self.fail(question, engine_failure(&message)),
            }
        }
    }

    /// Decodes one token of each answer in `stepping` (indices into `active`, ascending).
    fn step(&self, active: &mut Vec<Active>, stepping: &[usize]) {
        let mut streams: Vec<&mut Stream> =
            active.iter_mut().enumerate().filter(|(i, _)| stepping.contains(i)).map(|(_, a)| &mut a.stream).collect();
        let stepped = catch(|| {
            fault_injection::before_step();
            self.engine.step(&mut streams)
        });
        match stepped.and_then(|r| r.map_err(|e| e.to_string())) {
            Ok(pieces) => {
                let pieces = stepping
                    .iter()
                    .zip(pieces)
                    .filter(|(_, text)| !text.is_empty())
                    .map(|(&i, text)| Piece { id: active[i].question.id, text })
                    .collect();
                say(&self.out, &FromWorker::Step { pieces });
            }
            // Every answer in the step shares its fate: their caches may be half written.
            Err(message) => {
                let failure = engine_failure(&message);
                for &i in stepping.iter().rev() {
                    let a = active.remove(i);
                    self.fail(a.question, failure.clone());
                }
            }
        }
    }

    /// Sends the finished answers and frees their slots.
    fn retire(&self, active: &mut Vec<Active>) {
        let mut i = 0;
        while i < active.len() {
            if !active[i].stream.is_finished() {
                i += 1;
                continue;
            }
            let a = active.swap_remove(i);
            match catch(|| self.engine.finish(a.stream)).and_then(|r| r.map_err(|e| e.to_string())) {
                Ok(generation) => {
                    lock(&self.inbox.state).cancelled.remove(&a.question.id);
                    say(
                        &self.out,
                        &FromWorker::Done {
                            id: a.question.id,
                            generation: Box::new(generation),
                            history_turns: a.history_turns,
                            queued_ms: a.queued_ms,
                        },
                    );
                }
                Err(message) => self.fail(a.question, engine_failure(&message)),
            }
        }
    }

    fn fail(&self, question: Question, failure: Failure) {
        tracing::warn!(code = %failure.code, error = %failure.message_en, "answer failed");
        lock(&self.inbox.state).cancelled.remove(&question.id);
        say(&self.out, &FromWorker::Failed { id: question.id, failure });
    }
}

/// Which waiting question starts next: the first interactive one, else the oldest background one, but
/// that only while no interactive answer is in progress (its prompt run would hold up that answer's
/// next token).
fn next_to_admit(waiting: &[Priority], watched: bool) -> Option<usize> {
    match waiting.iter().position(|p| *p == Priority::Interactive) {
        Some(i) => Some(i),
        None if !watched && !waiting.is_empty() => Some(0),
        None => None,
    }
}

/// Which answers decode in this step: while somebody watches an answer, only the watched ones (a
/// background answer's grammar and batch row would slow every token of theirs), else all.
fn to_step(active: &[Priority]) -> Vec<usize> {
    let watched = active.contains(&Priority::Interactive);
    (0..active.len()).filter(|&i| !watched || active[i] == Priority::Interactive).collect()
}

/// Faults on demand, for the end-to-end tests of what the web server does when its worker fails. Unset,
/// as in every real deployment, they do nothing; the web server starts replacement workers without them.
/// - `MEDGEMMA_X_FAULT_HANG_STEP_SECS=S`: the third decoding step sleeps S seconds.
/// - `MEDGEMMA_X_FAULT_ABORT_STEP=N`: the process aborts (as a failed CUDA assertion does) at step N.
mod fault_injection {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    pub const VARIABLES: [&str; 2] = ["MEDGEMMA_X_FAULT_HANG_STEP_SECS", "MEDGEMMA_X_FAULT_ABORT_STEP"];

    fn setting(name: &'static str, cell: &'static OnceLock<Option<f64>>) -> Option<f64> {
        *cell.get_or_init(|| std::env::var(name).ok().and_then(|s| s.parse::<f64>().ok()))
    }

    pub fn before_step() {
        static HANG: OnceLock<Option<f64>> = OnceLock::new();
        static ABORT: OnceLock<Option<f64>> = OnceLock::new();
        static STEPS: AtomicU32 = AtomicU32::new(0);
        let step = STEPS.fetch_add(1, Ordering::SeqCst);
        if let Some(secs) = setting(VARIABLES[0], &HANG)
            && step == 2
        {
            tracing::warn!(secs, "fault injection: this decoding step hangs");
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        if let Some(at) = setting(VARIABLES[1], &ABORT)
            && f64::from(step) == at
        {
            tracing::warn!(step, "fault injection: the worker aborts");
            std::process::abort();
        }
    }
}

pub use fault_injection::VARIABLES as FAULT_VARIABLES;

/// Loads the checkpoint: bf16 on a GPU, f32 on the CPU, unless `--weights` says otherwise.
fn load(dir: &Path, device: WorkerDevice, weights: WeightsChoice) -> anyhow::Result<(Engine, ModelInfo)> {
    let found = ComputeDevice::detect();
    let device = match device {
        WorkerDevice::Auto => found.preferred(),
        WorkerDevice::Cpu => Device::Cpu,
        WorkerDevice::Cuda(i) if i < found.cuda_devices => Device::Cuda(i),
        WorkerDevice::Cuda(i) => anyhow::bail!("GPU {i} is not there: libtorch sees {} GPU(s)", found.cuda_devices),
    };
    let auto = if device == Device::Cpu { Kind::Float } else { Kind::BFloat16 };
    let (kind, quantization) = match weights {
        WeightsChoice::Auto => (auto, Quantization::None),
        WeightsChoice::F32 => (Kind::Float, Quantization::None),
        WeightsChoice::Bf16 => (Kind::BFloat16, Quantization::None),
        WeightsChoice::Int8 => (auto, Quantization::Int8),
    };
    let engine = Engine::load_with(dir, device, kind, quantization)?;
    let dtype = format!("{kind:?}").to_lowercase();
    let info = ModelInfo {
        name: dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
        device: match device {
            Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".to_string(),
        },
        dtype: match quantization {
            Quantization::None => dtype,
            Quantization::Int8 => format!("int8 weights, {dtype} compute"),
        },
        test_model: dir.join("MEDGEMMA_X_TEST_MODEL").is_file(),
        context_tokens: engine.config.text.max_position_embeddings,
        reads_images: engine.reads_images(),
        image_size: engine.preprocessor.as_ref().map_or(0, |p| p.height.max(p.width) as u32),
        tokens_per_side: engine.config.tokens_per_side(),
    };
    Ok((engine, info))
}

/// Encodes the conversation with as much history as fits (whole question–answer pairs, newest kept)
/// and runs its prompt; `None` when the run made way (see [`Engine::start_unless`]).
fn start(
    engine: &Engine,
    info: &ModelInfo,
    question: &Question,
    max_history: usize,
    make_way: &dyn Fn() -> bool,
) -> Result<Option<(Stream, usize)>, Failure> {
    let job = &question.job;
    let budget = info.context_tokens - job.options.max_new_tokens as i64;
    let mut history = max_history.min(job.history.len());
    let ids = loop {
        let mut turns = job.history[job.history.len() - history..].to_vec();
        turns.push(job.turn.clone());
        let ids = engine
            .encode_chat(Some(&job.system), &turns)
            .map_err(|e| Failure::new("bad_input", "问题无法编码", format!("cannot encode the question: {e}")))?;
        if (ids.len() as i64) <= budget {
            break ids;
        }
        if history == 0 {
            return Err(Failure::new(
                "too_long",
                format!("问题和图像超出模型上下文长度（{} 个词元，上限 {budget}）", ids.len()),
                format!("question and images exceed the model's context ({} tokens, limit {budget})", ids.len()),
            ));
        }
        history = history.saturating_sub(2);
    };
    let pixels = question
        .images
        .iter()
        .map(|rgb| engine.image_tensor(&image::DynamicImage::ImageRgb8(rgb.clone())))
        .collect::<Result<Vec<tch::Tensor>, _>>()
        .map_err(|e| Failure::new("bad_input", "模型无法处理该输入", format!("the model refused the input: {e}")))?;
    let mut stream = match engine.start_unless(&ids, &pixels, &job.options, make_way) {
        Ok(stream) => stream,
        Err(EngineError::MadeWay) => return Ok(None),
        Err(e) => {
            return Err(Failure::new("bad_input", "模型无法处理该输入", format!("the model refused the input: {e}")));
        }
    };
    if let Some(schema) = &job.schema {
        let constraint = engine.json_constraint(schema).map_err(|e| {
            Failure::new("bad_schema", "结构化输出的约束无法建立", format!("cannot constrain the answer: {e}"))
        })?;
        stream.constrain(constraint);
    }
    Ok(Some((stream, history)))
}

/// Runs `f`, turning a panic (libtorch reports its errors, CUDA out of memory among them, by panicking
/// through tch) into its message.
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown engine error".into())
    })
}

fn is_out_of_memory(message: &str) -> bool {
    message.contains("out of memory") || message.contains("OutOfMemory")
}

fn engine_failure(message: &str) -> Failure {
    tracing::error!(error = message, "inference error");
    if is_out_of_memory(message) {
        Failure::new(
            "out_of_memory",
            "显存不足，本次回答已停止；请缩短对话（清空历史）或稍后重试",
            "Out of GPU memory; this answer was stopped. Clear the conversation or try again later",
        )
    } else {
        Failure::new(
            "engine_error",
            "推理出错，本次回答已停止，已记录日志",
            "Inference error; this answer was stopped and logged",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse(), Ok(WorkerDevice::Cpu));
        assert_eq!("cuda:1".parse(), Ok(WorkerDevice::Cuda(1)));
        assert_eq!("0".parse(), Ok(WorkerDevice::Cuda(0)));
        assert_eq!("auto".parse(), Ok(WorkerDevice::Auto));
        assert!("gpu".parse::<WorkerDevice>().is_err());
    }

    /// Pre-reads wait inside the worker too: a question somebody watches starts before background
    /// questions that came earlier, and while it streams no background question starts or decodes.
    #[test]
    fn watched_answers_start_and_decode_before_background_work() {
        use Priority::{Background as B, Interactive as I};
        assert_eq!(next_to_admit(&[B, B, I, B], false), Some(2), "the interactive question overtakes");
        assert_eq!(next_to_admit(&[B, B], false), Some(0), "background work starts when nobody waits");
        assert_eq!(next_to_admit(&[B, B], true), None, "not while an answer is watched");
        assert_eq!(next_to_admit(&[I], true), Some(0), "a second watched answer joins the first");
        assert_eq!(next_to_admit(&[], false), None);
        assert_eq!(to_step(&[B, I, B, I]), [1, 3], "only the watched answers decode");
        assert_eq!(to_step(&[B, B]), [0, 1], "background answers decode when nobody is watching");
        assert_eq!(to_step(&[]), Vec::<usize>::new());
    }
}
