//! The one owner of the model. A worker thread loads the engine, takes chat jobs from a bounded queue and
//! decodes every admitted conversation together, one token each per step (continuous batching: a new
//! question joins between steps, a finished one leaves), so one long answer does not hold up the
//! department. Jobs are admitted fairly: the next one comes from the client with the fewest answers in
//! progress. A failing step (CUDA out of memory, any libtorch error) fails the answers in it, frees
//! their caches and the worker goes on serving.
//!
//! A watchdog thread times every engine call. One that makes no progress for `InferenceLimits::stall`
//! (a hung CUDA kernel, a deadlocked driver) gets its answers failed and a fresh worker that loads the
//! model again, while the web server goes on serving; the hung thread cannot be killed, so it is
//! abandoned: when (if) its call returns it sees it was replaced and quits without touching anything.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use image::RgbImage;
use models::Engine;
use models::device::ComputeDevice;
use models::generate::{GenerateOptions, Generation, Stream};
use models::prompt::Turn;
use models::weights::Quantization;
use serde::Serialize;
use tch::{Device, Kind};
use tokio::sync::mpsc;

/// Sizes of the service, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct InferenceLimits {
    /// Answers decoded together.
    pub max_active: usize,
    /// Questions waiting for a slot; one more is refused (503 with Retry-After).
    pub max_waiting: usize,
    /// Questions one caller (an account, or a token) may have waiting or being answered at once; one more
    /// is refused (429), so that one caller's burst cannot fill the queue for everyone else.
    pub max_per_client: usize,
    /// From submission to the last token.
    pub timeout: Duration,
    /// Longest one engine call (a prompt or one decoding step of all answers) may take before the
    /// watchdog declares the worker hung and replaces it.
    pub stall: Duration,
}

/// `--weights`: how the worker holds the model. Auto: bf16 on a GPU, f32 on the CPU. Int8: the decoder
/// layers' projections as int8 per output channel (`models::weights::Weights::quantization_of` says which),
/// computing in f32; CPU only (the engine refuses it on a GPU, and the load failure says so in /readyz).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightsChoice {
    #[default]
    Auto,
    F32,
    Bf16,
    Int8,
}

/// What the worker is doing with the model.
#[derive(Clone, Debug)]
pub enum EngineState {
    Loading,
    Ready(ModelInfo),
    Failed(String),
}

/// The loaded model, as status pages and answers name it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    /// The checkpoint folder's name, e.g. "medgemma-1.5-4b-it".
    pub name: String,
    pub device: String,
    pub dtype: String,
    /// Random weights from the test fixture script (a `MEDGEMMA_X_TEST_MODEL` file in the folder): the
    /// whole path runs, the answers mean nothing, and the UI says so.
    pub test_model: bool,
    /// Prompt and answer together, tokens.
    pub context_tokens: i64,
    /// Whether the model reads images. A text-only model (Gemma 3 without its vision tower) answers from
    /// the question, the measurements and the report alone; no image is sent and no heatmap comes back.
    pub reads_images: bool,
    /// Side of the square image the model sees, pixels (0 for a text-only model).
    pub image_size: u32,
    /// Soft tokens per image side (heatmap grid side).
    pub tokens_per_side: i64,
}

/// Why an answer was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The model ended (eos) or reached its token limit: a complete answer.
    Finished,
    /// The browser went away or pressed stop.
    ClientGone,
    Timeout,
    Shutdown,
}

const CAUSES: [StopCause; 4] = [StopCause::Finished, StopCause::ClientGone, StopCause::Timeout, StopCause::Shutdown];

/// Shared between a job and whoever is waiting for its answer: setting a cause stops the job before
/// its next token (or before it starts).
#[derive(Default)]
pub struct JobControl(AtomicU8);

impl JobControl {
    /// The first cause wins.
    pub fn stop(&self, cause: StopCause) {
        let code = CAUSES.iter().position(|c| *c == cause).unwrap_or(0) as u8;
        let _ = self.0.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn cause(&self) -> Option<StopCause> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            code => CAUSES.get(usize::from(code)).copied(),
        }
    }
}

/// A question for the model.
pub struct ChatRequest {
    /// Whose question, for fair admission.
    pub client: String,
    pub system: String,
    /// Earlier turns, oldest first, alternating user/model. The oldest pairs are left out when the
    /// prompt would not fit the context window.
    pub history: Vec<Turn>,
    /// The question, with its images.
    pub turn: Turn,
    /// Prepared for the model (imaging::model_input), in prompt order.
    pub images: Vec<RgbImage>,
    pub options: GenerateOptions,
    /// A JSON Schema the answer must follow (constrained generation), if any.
    pub schema: Option<serde_json::Value>,
}

/// What the worker sends about one job, in order: tokens, then exactly one `Done` or `Failed`.
#[derive(Debug)]
pub enum JobEvent {
    Token(String),
    Done(Box<Answer>),
    Failed(Failure),
}

#[derive(Debug)]
pub struct Answer {
    pub generation: Generation,
    pub cause: StopCause,
    /// Earlier turns that fit in the prompt.
    pub history_turns: usize,
    /// Submission to the start of the prompt.
    pub queued_ms: f64,
    pub model: ModelInfo,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub code: &'static str,
    pub message_zh: String,
    pub message_en: String,
}

impl Failure {
    fn new(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self { code, message_zh: zh.into(), message_en: en.into() }
    }
}

/// Why a question was not taken.
#[derive(Debug)]
pub enum Refusal {
    Loading,
    LoadFailed(String),
    QueueFull {
        retry_after_s: u64,
    },
    /// The caller has `limit` questions waiting or being answered already.
    ClientFull {
        limit: usize,
    },
}

/// A submitted job: its events and the handle that stops it.
pub struct Ticket {
    pub events: mpsc::UnboundedReceiver<JobEvent>,
    pub control: Arc<JobControl>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct QueueStatus {
    pub waiting: usize,
    pub active: usize,
    pub max_active: usize,
    pub max_waiting: usize,
    /// Workers the watchdog replaced since the server started.
    pub worker_restarts: u64,
}

/// Cheap to clone: every clone talks to the same worker.
#[derive(Clone)]
pub struct Inference {
    shared: Arc<Shared>,
}

struct Shared {
    limits: InferenceLimits,
    model_dir: PathBuf,
    weights: WeightsChoice,
    /// Where the watchdog's maintenance lines go.
    logs_dir: PathBuf,
    queue: Mutex<Queue>,
    wake: Condvar,
    state: Mutex<EngineState>,
    watch: Mutex<Watch>,
}

/// What the watchdog sees of the worker.
#[derive(Default)]
struct Watch {
    /// The worker that owns the model and the queue; a replaced worker's number is older.
    generation: u64,
    /// The engine call in progress: when it started and what it is.
    busy_since: Option<(Instant, &'static str)>,
    restarts: u64,
}

/// Returned up the worker's calls once the watchdog has replaced it.
struct Abandoned;

struct Job {
    request: ChatRequest,
    control: Arc<JobControl>,
    events: mpsc::UnboundedSender<JobEvent>,
    submitted: Instant,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    /// Answers in progress (the worker keeps this current): whose, for fair admission, and how to
    /// reach them, for the watchdog.
    running: Vec<Running>,
}

struct Running {
    client: String,
    control: Arc<JobControl>,
    events: mpsc::UnboundedSender<JobEvent>,
}

impl Queue {
    fn active_total(&self) -> usize {
        self.running.len()
    }

    fn active_of(&self, client: &str) -> usize {
        self.running.iter().filter(|r| r.client == client).count()
    }

    /// The waiting job of the client with the fewest answers in progress; the oldest among equals.
    fn take_fairest(&mut self) -> Option<Job> {
        let index = (0..self.waiting.len()).min_by_key(|&i| (self.active_of(&self.waiting[i].request.client), i))?;
        let job = self.waiting.remove(index)?;
        self.running.push(Running {
            client: job.request.client.clone(),
            control: Arc::clone(&job.control),
            events: job.events.clone(),
        });
        Some(job)
    }
}

impl Inference {
    /// Starts the worker, which loads the checkpoint first (state `Loading` until then), and its watchdog.
    pub fn start(model_dir: PathBuf, weights: WeightsChoice, logs_dir: PathBuf, limits: InferenceLimits) -> Inference {
        let shared = Arc::new(Shared {
            limits,
            model_dir,
            weights,
            logs_dir,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            state: Mutex::new(EngineState::Loading),
            watch: Mutex::default(),
        });
        Arc::clone(&shared).spawn_worker(0);
        let watchdog = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("inference-watchdog".into())
            .spawn(move || watchdog.watch())
            .expect("spawn the inference watchdog");
        Inference { shared }
    }

    pub fn state(&self) -> EngineState {
        lock(&self.shared.state).clone()
    }

    pub fn queue(&self) -> QueueStatus {
        let queue = lock(&self.shared.queue);
        QueueStatus {
            waiting: queue.waiting.len(),
            active: queue.active_total(),
            max_active: self.shared.limits.max_active,
            max_waiting: self.shared.limits.max_waiting,
            worker_restarts: lock(&self.shared.watch).restarts,
        }
    }

    pub fn submit(&self, request: ChatRequest) -> Result<Ticket, Refusal> {
        match self.state() {
            EngineState::Loading => return Err(Refusal::Loading),
            EngineState::Failed(reason) => return Err(Refusal::LoadFailed(reason)),
            EngineState::Ready(_) => {}
        }
        let limits = self.shared.limits;
        let mut queue = lock(&self.shared.queue);
        // Jobs whose askers left wait for the worker to close them; they hold no place.
        let live = || queue.waiting.iter().filter(|job| job.control.cause().is_none());
        let of_client =
            live().filter(|job| job.request.client == request.client).count() + queue.active_of(&request.client);
        if of_client >= limits.max_per_client {
            return Err(Refusal::ClientFull { limit: limits.max_per_client });
        }
        if live().count() >= limits.max_waiting && queue.active_total() >= limits.max_active {
            // Roughly how long until a slot frees: the time-out bounds every answer ahead.
            return Err(Refusal::QueueFull { retry_after_s: 10 });
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let control = Arc::new(JobControl::default());
        queue.waiting.push_back(Job { request, control: Arc::clone(&control), events, submitted: Instant::now() });
        drop(queue);
        self.shared.wake.notify_one();
        Ok(Ticket { events: receiver, control })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// An admitted job and its stream.
struct Active {
    job: Job,
    stream: Stream,
    history_turns: usize,
    queued_ms: f64,
}

impl Shared {
    /// Starts worker number `generation` (0 at start, then one more per watchdog restart).
    fn spawn_worker(self: Arc<Self>, generation: u64) {
        std::thread::Builder::new()
            .name(format!("inference-{generation}"))
            .spawn(move || {
                if self.run(generation).is_err() {
                    tracing::warn!(generation, "a replaced inference worker returned from its stuck call and quit");
                }
            })
            .expect("spawn the inference thread");
    }

    fn run(&self, generation: u64) -> Result<(), Abandoned> {
        let loaded = load(&self.model_dir, self.weights);
        if generation > 0 {
            let (outcome, seen) = match &loaded {
                Ok(_) => ("ok", "模型已重新加载 / model reloaded".to_string()),
                Err(e) => ("failed", format!("模型重新加载失败 / model reload failed: {e}")),
            };
            let action = "推理引擎重启完成 / inference worker restarted";
            crate::support::maintenance::record(&self.logs_dir, "inference_restarted", &seen, action, outcome);
        }
        let (engine, info) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::error!(error = %err, "model failed to load; chat is unavailable");
                *lock(&self.state) = EngineState::Failed(err.to_string());
                return Ok(());
            }
        };
        tracing::info!(model = %info.name, device = %info.device, dtype = %info.dtype, test_model = info.test_model, "model loaded");
        *lock(&self.state) = EngineState::Ready(info.clone());

        let mut active: Vec<Active> = Vec::new();
        loop {
            let admitted = self.next_job(!active.is_empty());
            if let Some(job) = admitted {
                self.admit(generation, &engine, &info, job, &mut active)?;
            }
            for a in &mut active {
                if a.job.control.cause().is_some() {
                    a.stream.cancel();
                } else if a.job.submitted.elapsed() > self.limits.timeout {
                    a.job.control.stop(StopCause::Timeout);
                    a.stream.cancel();
                }
            }
            if !active.is_empty() {
                self.step(generation, &engine, &mut active)?;
            }
            self.retire(generation, &engine, &info, &mut active)?;
        }
    }

    /// Runs one engine call where the watchdog sees it, catching libtorch's panics. `Err(Abandoned)`: the
    /// watchdog replaced this worker while the call ran, and has failed its answers already.
    fn watched<T>(
        &self,
        generation: u64,
        what: &'static str,
        f: impl FnOnce() -> T,
    ) -> Result<Result<T, String>, Abandoned> {
        {
            let mut watch = lock(&self.watch);
            if watch.generation != generation {
                return Err(Abandoned);
            }
            watch.busy_since = Some((Instant::now(), what));
        }
        let result = catch(f);
        let mut watch = lock(&self.watch);
        if watch.generation != generation {
            return Err(Abandoned);
        }
        watch.busy_since = None;
        Ok(result)
    }

    /// The watchdog: looks at the engine call in progress every quarter of the stall limit (at most
    /// every second); one past the limit gets its worker replaced.
    fn watch(self: Arc<Self>) {
        let tick = (self.limits.stall / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            std::thread::sleep(tick);
            let stuck = {
                let mut watch = lock(&self.watch);
                match watch.busy_since {
                    Some((since, what)) if since.elapsed() > self.limits.stall => {
                        watch.generation += 1;
                        watch.busy_since = None;
                        watch.restarts += 1;
                        Some((what, since.elapsed(), watch.generation))
                    }
                    _ => None,
                }
            };
            let Some((what, stalled, generation)) = stuck else { continue };
            let failure = Failure::new(
                "engine_stuck",
                format!("推理引擎 {} 秒无响应，本次回答已停止，推理引擎正在自动重启，请稍后重试", stalled.as_secs()),
                format!(
                    "The inference engine made no progress for {} s; this answer was stopped and the engine is restarting. Try again shortly",
                    stalled.as_secs()
                ),
            );
            let running = std::mem::take(&mut lock(&self.queue).running);
            for r in &running {
                let _ = r.events.send(JobEvent::Failed(failure.clone()));
            }
            *lock(&self.state) = EngineState::Loading;
            let seen = format!(
                "推理调用（{what}）{} 秒无进展 / an engine call ({what}) made no progress for {} s",
                stalled.as_secs(),
                stalled.as_secs()
            );
            let action = format!(
                "停止进行中的 {} 个回答，启动新的推理线程并重新加载模型 / failed {} answers in progress, started a new worker that reloads the model",
                running.len(),
                running.len()
            );
            tracing::error!(error = %seen, "inference worker hung");
            crate::support::maintenance::record(&self.logs_dir, "inference_stuck", &seen, &action, "pending");
            Arc::clone(&self).spawn_worker(generation);
        }
    }

    /// Blocks while there is nothing to do; returns a job to admit if a slot is free.
    fn next_job(&self, busy: bool) -> Option<Job> {
        let mut queue = lock(&self.queue);
        loop {
            // Askers that left before their turn came, and questions that waited past the time-out.
            for job in &queue.waiting {
                if job.submitted.elapsed() > self.limits.timeout {
                    job.control.stop(StopCause::Timeout);
                }
            }
            let (gone, waiting): (Vec<Job>, Vec<Job>) =
                queue.waiting.drain(..).partition(|job| job.control.cause().is_some());
            queue.waiting = waiting.into();
            for job in gone {
                let cause = job.control.cause().unwrap_or(StopCause::ClientGone);
                let _ = job.events.send(JobEvent::Failed(stopped_before_start(cause)));
            }
            if queue.active_total() < self.limits.max_active
                && let Some(job) = queue.take_fairest()
            {
                return Some(job);
            }
            if busy {
                return None;
            }
            queue = self.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Runs the job's prompt. Out of memory with history in the prompt: once more without the history.
    fn admit(
        &self,
        generation: u64,
        engine: &Engine,
        info: &ModelInfo,
        job: Job,
        active: &mut Vec<Active>,
    ) -> Result<(), Abandoned> {
        let queued_ms = job.submitted.elapsed().as_secs_f64() * 1000.0;
        let mut history = job.request.history.len();
        loop {
            let started = self.watched(generation, "prompt", || start(engine, info, &job.request, history))?;
            match started {
                Ok(Ok((stream, history_turns))) => {
                    active.push(Active { job, stream, history_turns, queued_ms });
                    return Ok(());
                }
                Ok(Err(failure)) => {
                    self.fail(job, failure);
                    return Ok(());
                }
                Err(message) if is_out_of_memory(&message) && history > 0 => {
                    tracing::warn!("out of memory on a prompt with history; retrying without it");
                    history = 0;
                }
                Err(message) => {
                    self.fail(job, engine_failure(&message));
                    return Ok(());
                }
            }
        }
    }

    fn step(&self, generation: u64, engine: &Engine, active: &mut Vec<Active>) -> Result<(), Abandoned> {
        let mut streams: Vec<&mut Stream> = active.iter_mut().map(|a| &mut a.stream).collect();
        match self.watched(generation, "step", || {
            fault_injection::hang_once();
            engine.step(&mut streams)
        })? {
            Ok(Ok(pieces)) => {
                for (a, piece) in active.iter().zip(pieces) {
                    if !piece.is_empty() && a.job.events.send(JobEvent::Token(piece)).is_err() {
                        a.job.control.stop(StopCause::ClientGone);
                    }
                }
            }
            // Every answer in the step shares its fate: their caches may be half written.
            Ok(Err(err)) => {
                let failure = engine_failure(&err.to_string());
                for a in active.drain(..) {
                    self.fail(a.job, failure.clone());
                }
            }
            Err(message) => {
                let failure = engine_failure(&message);
                for a in active.drain(..) {
                    self.fail(a.job, failure.clone());
                }
            }
        }
        Ok(())
    }

    /// Sends the finished answers and frees their slots.
    fn retire(
        &self,
        generation: u64,
        engine: &Engine,
        info: &ModelInfo,
        active: &mut Vec<Active>,
    ) -> Result<(), Abandoned> {
        let mut i = 0;
        while i < active.len() {
            if !active[i].stream.is_finished() {
                i += 1;
                continue;
            }
            let a = active.swap_remove(i);
            let cause = a.job.control.cause().unwrap_or(StopCause::Finished);
            match self.watched(generation, "finish", || engine.finish(a.stream))? {
                Ok(Ok(generated)) => {
                    self.release(&a.job.control);
                    let answer = Answer {
                        generation: generated,
                        cause,
                        history_turns: a.history_turns,
                        queued_ms: a.queued_ms,
                        model: info.clone(),
                    };
                    let _ = a.job.events.send(JobEvent::Done(Box::new(answer)));
                }
                Ok(Err(err)) => self.fail(a.job, engine_failure(&err.to_string())),
                Err(message) => self.fail(a.job, engine_failure(&message)),
            }
        }
        Ok(())
    }

    fn fail(&self, job: Job, failure: Failure) {
        tracing::warn!(code = failure.code, error = %failure.message_en, "answer failed");
        self.release(&job.control);
        let _ = job.events.send(JobEvent::Failed(failure));
    }

    fn release(&self, control: &Arc<JobControl>) {
        lock(&self.queue).running.retain(|r| !Arc::ptr_eq(&r.control, control));
    }
}

/// A hang on demand, for the watchdog's end-to-end test: with `MEDGEMMA_X_FAULT_HANG_STEP_SECS=S` in the
/// environment, the third decoding step of the process sleeps S seconds (once; the restarted worker
/// then answers normally). Unset, as in every real deployment, it does nothing.
mod fault_injection {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    pub fn hang_once() {
        static HANG_SECS: OnceLock<Option<f64>> = OnceLock::new();
        static STEPS: AtomicU32 = AtomicU32::new(0);
        let hang = HANG_SECS
            .get_or_init(|| std::env::var("MEDGEMMA_X_FAULT_HANG_STEP_SECS").ok().and_then(|s| s.parse::<f64>().ok()));
        let Some(secs) = *hang else { return };
        if STEPS.fetch_add(1, Ordering::SeqCst) == 2 {
            tracing::warn!(secs, "fault injection: this decoding step hangs");
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
    }
}

/// Loads the checkpoint on the best device: bf16 on a GPU, f32 on the CPU, unless `--weights` says otherwise.
fn load(dir: &Path, weights: WeightsChoice) -> anyhow::Result<(Engine, ModelInfo)> {
    let found = ComputeDevice::detect();
    let device = found.preferred();
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
        device: found.label(),
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
/// and runs its prompt.
fn start(
    engine: &Engine,
    info: &ModelInfo,
    request: &ChatRequest,
    max_history: usize,
) -> Result<(Stream, usize), Failure> {
    let budget = info.context_tokens - request.options.max_new_tokens as i64;
    let mut history = max_history.min(request.history.len());
    let ids = loop {
        let mut turns = request.history[request.history.len() - history..].to_vec();
        turns.push(request.turn.clone());
        let ids = engine
            .encode_chat(Some(&request.system), &turns)
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
    let pixels = request
        .images
        .iter()
        .map(|rgb| engine.image_tensor(&image::DynamicImage::ImageRgb8(rgb.clone())))
        .collect::<Result<Vec<tch::Tensor>, _>>()
        .map_err(|e| Failure::new("bad_input", "模型无法处理该输入", format!("the model refused the input: {e}")))?;
    let mut stream = engine
        .start(&ids, &pixels, &request.options)
        .map_err(|e| Failure::new("bad_input", "模型无法处理该输入", format!("the model refused the input: {e}")))?;
    if let Some(schema) = &request.schema {
        let constraint = engine.json_constraint(schema).map_err(|e| {
            Failure::new("bad_schema", "结构化输出的约束无法建立", format!("cannot constrain the answer: {e}"))
        })?;
        stream.constrain(constraint);
    }
    Ok((stream, history))
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

fn stopped_before_start(cause: StopCause) -> Failure {
    match cause {
        StopCause::Shutdown => {
            Failure::new("shutting_down", "服务正在停止，请稍后重试", "The server is stopping; try again later")
        }
        StopCause::Timeout => {
            Failure::new("timeout", "排队超时，请稍后重试", "Timed out in the queue; try again later")
        }
        StopCause::ClientGone | StopCause::Finished => Failure::new("cancelled", "已取消", "Cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stop_cause_wins() {
        let control = JobControl::default();
        assert_eq!(control.cause(), None);
        control.stop(StopCause::Shutdown);
        control.stop(StopCause::ClientGone);
        assert_eq!(control.cause(), Some(StopCause::Shutdown));
    }

    #[test]
    fn admission_prefers_the_client_with_fewest_answers_in_progress() {
        let job = |client: &str| {
            let (events, _) = mpsc::unbounded_channel();
            Job {
                request: ChatRequest {
                    client: client.into(),
                    system: String::new(),
                    history: vec![],
                    turn: Turn {
                        role: models::prompt::Role::User,
                        text: String::new(),
                        images: 0,
                        image_captions: vec![],
                    },
                    images: vec![],
                    options: GenerateOptions::default(),
                    schema: None,
                },
                control: Arc::default(),
                events,
                submitted: Instant::now(),
            }
        };
        let mut queue = Queue::default();
        for client in ["a", "a", "b"] {
            queue.waiting.push_back(job(client));
            queue.take_fairest();
        }
        assert_eq!((queue.active_of("a"), queue.active_of("b")), (2, 1));
        for client in ["a", "a", "b", "c"] {
            queue.waiting.push_back(job(client));
        }
        let order: Vec<String> = std::iter::from_fn(|| Some(queue.take_fairest()?.request.client)).collect();
        // c has none running, then b (1) before a (2); after b's second, a and b are level: a is older.
        assert_eq!(order, ["c", "b", "a", "a"]);
    }
}
