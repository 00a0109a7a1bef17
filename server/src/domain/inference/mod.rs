//! Chat questions, from the web server to the model. The model runs in worker processes
//! (`medgemma-x inference`, [`worker`]), one per device, each decoding its questions together
//! (continuous batching); they speak [`protocol`] over a Unix socket (workers this server started) or
//! TCP (workers on other machines, started by their own systemd unit).
//!
//! The web server keeps the queue and its rules: questions wait here, are admitted fairly (the next one
//! comes from the client with the fewest answers in progress), each to the least-loaded ready worker (a
//! GPU before a CPU), never more at once than a worker's slots. A dispatcher thread does that, forwards
//! cancellations and time-outs, and watches the workers: one whose answers make no progress for
//! `InferenceLimits::stall` (a hung CUDA kernel, a deadlocked driver) is killed — the process, so its
//! memory, GPU memory included, is returned — and one that exits (a segfault, an abort in a kernel) is
//! noticed at once. Either way its answers end with a clear error, [`workers`] starts a fresh process
//! that loads the model again, and the web server goes on serving every other route meanwhile.

pub mod protocol;
pub mod worker;
mod workers;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use image::RgbImage;
use models::generate::{GenerateOptions, Generation};
use models::prompt::Turn;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use protocol::Endpoint;
pub use worker::WorkerDevice;

/// Sizes of the service, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct InferenceLimits {
    /// Answers one worker decodes together.
    pub max_active: usize,
    /// Questions waiting for a slot; one more is refused (503 with Retry-After).
    pub max_waiting: usize,
    /// Questions one caller (an account, or a token) may have waiting or being answered at once; one more
    /// is refused (429), so that one caller's burst cannot fill the queue for everyone else.
    pub max_per_client: usize,
    /// From submission to the last token.
    pub timeout: Duration,
    /// Longest a worker with answers in progress may go without progress (a prompt run, a decoding
    /// step of all its answers) before it is taken for hung, killed and replaced.
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
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// Who waits for an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Somebody is watching it stream: always admitted before any background work.
    #[default]
    Interactive,
    /// A pre-read (the draft computed when a study arrives): admitted only while no interactive
    /// question waits, into at most half of a worker's slots (so a question that comes finds room in
    /// the next step), and waiting outside the interactive queue's limits. In the worker it neither
    /// starts nor decodes while an interactive answer is in progress there.
    Background,
}

/// Background questions that may wait; more are refused (the pre-read is skipped).
const MAX_BACKGROUND_WAITING: usize = 512;

/// A question for the model.
pub struct ChatRequest {
    /// Whose question, for fair admission.
    pub client: String,
    /// A radiologist waiting, or work done ahead of time.
    pub priority: Priority,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub code: Cow<'static, str>,
    pub message_zh: String,
    pub message_en: String,
}

impl Failure {
    fn new(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self { code: Cow::Borrowed(code), message_zh: zh.into(), message_en: en.into() }
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

#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueStatus {
    pub waiting: usize,
    pub active: usize,
    /// Answers all ready workers decode together.
    pub max_active: usize,
    pub max_waiting: usize,
    /// Workers replaced (hung, or exited) since the server started, all together.
    pub worker_restarts: u64,
    pub workers: Vec<WorkerStatus>,
}

/// One worker, for `status`, /readyz and /metrics.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    pub index: usize,
    /// "local cpu", "local cuda:1", or the address of a worker on another machine.
    pub place: String,
    /// "loading", "ready" or "failed".
    pub state: &'static str,
    pub device: Option<String>,
    pub model: Option<String>,
    /// Answers in progress on it.
    pub active: usize,
    pub restarts: u64,
    /// Its process, for a worker this server started.
    pub pid: Option<u32>,
}

/// Where the model runs: worker processes this server starts, and workers elsewhere.
#[derive(Clone, Debug)]
pub struct WorkerPlan {
    /// One local worker process per entry, on that device.
    pub local: Vec<WorkerDevice>,
    /// The checkpoint the local workers load.
    pub model_dir: Option<PathBuf>,
    pub weights: WeightsChoice,
    /// Where the local workers' sockets go.
    pub socket_dir: PathBuf,
    /// Workers on other machines (`medgemma-x inference --listen host:port`).
    pub remote: Vec<Endpoint>,
    /// The secret the remote workers were given (`--secret-file`); local workers get a fresh one.
    pub remote_secret: Option<Vec<u8>>,
    /// The server's log filter, passed on to its local workers.
    pub log_filter: String,
}

/// Cheap to clone: every clone talks to the same queue and workers.
#[derive(Clone)]
pub struct Inference {
    shared: Arc<Shared>,
}

struct Shared {
    limits: InferenceLimits,
    /// Where the maintenance lines about workers go.
    logs_dir: PathBuf,
    queue: Mutex<Queue>,
    /// The dispatcher sleeps on this between its rounds.
    wake: Condvar,
    workers: Vec<Arc<workers::Worker>>,
    next_id: AtomicU64,
}

struct Job {
    request: ChatRequest,
    control: Arc<JobControl>,
    events: mpsc::UnboundedSender<JobEvent>,
    submitted: Instant,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    /// Answers sent to a worker and not yet ended: whose, for fair admission, where, and how to reach them.
    running: Vec<Running>,
    /// Something changed that the dispatcher should act on (a question came, a slot freed).
    dirty: bool,
}

struct Running {
    id: u64,
    worker: usize,
    priority: Priority,
    client: String,
    control: Arc<JobControl>,
    events: mpsc::UnboundedSender<JobEvent>,
    submitted: Instant,
    cancel_sent: bool,
}

impl Queue {
    fn active_of(&self, client: &str) -> usize {
        self.running.iter().filter(|r| r.client == client).count()
    }

    fn active_on(&self, worker: usize) -> usize {
        self.running.iter().filter(|r| r.worker == worker).count()
    }

    fn background_on(&self, worker: usize) -> usize {
        self.running.iter().filter(|r| r.worker == worker && r.priority == Priority::Background).count()
    }

    /// The next job for `worker`, recorded as running there under `id`: interactive before background,
    /// then the client with the fewest answers in progress, then the oldest. A background job only
    /// while the worker runs fewer than `background_slots` of them.
    fn take_fairest(&mut self, id: u64, worker: usize, background_slots: usize) -> Option<Job> {
        let background_full = self.background_on(worker) >= background_slots;
        let index = (0..self.waiting.len())
            .filter(|&i| !(background_full && self.waiting[i].request.priority == Priority::Background))
            .min_by_key(|&i| (self.waiting[i].request.priority, self.active_of(&self.waiting[i].request.client), i))?;
        let job = self.waiting.remove(index)?;
        self.running.push(Running {
            id,
            worker,
            priority: job.request.priority,
            client: job.request.client.clone(),
            control: Arc::clone(&job.control),
            events: job.events.clone(),
            submitted: job.submitted,
            cancel_sent: false,
        });
        Some(job)
    }

    fn take_running(&mut self, id: u64) -> Option<Running> {
        let index = self.running.iter().position(|r| r.id == id)?;
        self.dirty = true;
        Some(self.running.swap_remove(index))
    }
}

impl Inference {
    /// Starts the workers (each loads the model: state `Loading` until one is ready) and the dispatcher.
    pub fn start(plan: WorkerPlan, logs_dir: PathBuf, limits: InferenceLimits) -> Inference {
        let workers = workers::Worker::plan(&plan);
        let shared = Arc::new(Shared {
            limits,
            logs_dir,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            workers,
            next_id: AtomicU64::new(1),
        });
        for worker in &shared.workers {
            let (worker, shared) = (Arc::clone(worker), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("inference-link-{}", worker.index))
                .spawn(move || worker.supervise(&shared))
                .expect("spawn an inference worker's link");
        }
        let dispatcher = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("inference-dispatch".into())
            .spawn(move || dispatcher.dispatch())
            .expect("spawn the inference dispatcher");
        Inference { shared }
    }

    /// Ready when any worker is (its model named), else loading while any loads, else failed.
    pub fn state(&self) -> EngineState {
        let states: Vec<EngineState> = self.shared.workers.iter().map(|w| w.state()).collect();
        if let Some(info) = states.iter().find_map(|s| match s {
            EngineState::Ready(info) => Some(info.clone()),
            _ => None,
        }) {
            return EngineState::Ready(info);
        }
        if states.is_empty() || states.iter().any(|s| matches!(s, EngineState::Loading)) {
            return EngineState::Loading;
        }
        let reasons: Vec<String> = states
            .into_iter()
            .filter_map(|s| match s {
                EngineState::Failed(reason) => Some(reason),
                _ => None,
            })
            .collect();
        EngineState::Failed(reasons.join("; "))
    }

    pub fn queue(&self) -> QueueStatus {
        let queue = lock(&self.shared.queue);
        let workers: Vec<WorkerStatus> =
            self.shared.workers.iter().map(|w| w.status(queue.active_on(w.index))).collect();
        QueueStatus {
            waiting: queue.waiting.len(),
            active: queue.running.len(),
            max_active: self.shared.capacity(),
            max_waiting: self.shared.limits.max_waiting,
            worker_restarts: workers.iter().map(|w| w.restarts).sum(),
            workers,
        }
    }

    pub fn submit(&self, request: ChatRequest) -> Result<Ticket, Refusal> {
        match self.state() {
            EngineState::Loading => return Err(Refusal::Loading),
            EngineState::Failed(reason) => return Err(Refusal::LoadFailed(reason)),
            EngineState::Ready(_) => {}
        }
        let limits = self.shared.limits;
        let capacity = self.shared.capacity();
        let mut queue = lock(&self.shared.queue);
        // Jobs whose askers left wait for the dispatcher to close them; they hold no place.
        let live = |priority: Priority| {
            queue.waiting.iter().filter(move |job| job.control.cause().is_none() && job.request.priority == priority)
        };
        if request.priority == Priority::Background {
            if live(Priority::Background).count() >= MAX_BACKGROUND_WAITING {
                return Err(Refusal::QueueFull { retry_after_s: 60 });
            }
        } else {
            let of_client = live(Priority::Interactive).filter(|job| job.request.client == request.client).count()
                + queue.active_of(&request.client);
            if of_client >= limits.max_per_client {
                return Err(Refusal::ClientFull { limit: limits.max_per_client });
            }
            let interactive_running = queue.running.iter().filter(|r| r.priority == Priority::Interactive).count();
            if live(Priority::Interactive).count() >= limits.max_waiting && interactive_running >= capacity {
                // Roughly how long until a slot frees: the time-out bounds every answer ahead.
                return Err(Refusal::QueueFull { retry_after_s: 10 });
            }
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let control = Arc::new(JobControl::default());
        queue.waiting.push_back(Job { request, control: Arc::clone(&control), events, submitted: Instant::now() });
        queue.dirty = true;
        drop(queue);
        self.shared.wake.notify_one();
        Ok(Ticket { events: receiver, control })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the dispatcher sends once the queue's lock is let go (a write to a worker never holds it).
enum Outgoing {
    Submit { id: u64, job: Box<protocol::Job>, images: Vec<RgbImage> },
    Cancel { id: u64 },
}

impl Shared {
    /// Answers the ready workers decode together.
    fn capacity(&self) -> usize {
        let ready = self.workers.iter().filter(|w| w.is_ready()).count();
        self.limits.max_active * ready.max(1)
    }

    /// Wakes the dispatcher for a change it should act on.
    fn poke(&self, queue: &mut Queue) {
        queue.dirty = true;
        self.wake.notify_one();
    }

    /// The dispatcher: rounds on every change, and at least every 50 ms (cancellations are seen by
    /// polling the jobs' controls, and the stall clock runs).
    fn dispatch(self: Arc<Self>) {
        loop {
            let mut sends: Vec<(usize, Outgoing)> = Vec::new();
            let mut queue = lock(&self.queue);
            queue.dirty = false;
            self.close_waiting(&mut queue);
            for r in &mut queue.running {
                if r.control.cause().is_none() && r.submitted.elapsed() > self.limits.timeout {
                    r.control.stop(StopCause::Timeout);
                }
                if r.control.cause().is_some() && !r.cancel_sent {
                    r.cancel_sent = true;
                    sends.push((r.worker, Outgoing::Cancel { id: r.id }));
                }
            }
            let background_slots = (self.limits.max_active / 2).max(1);
            let mut full: Vec<usize> = Vec::new();
            while let Some(worker) = self.least_loaded(&queue, &full) {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let was_idle = queue.active_on(worker) == 0;
                let Some(job) = queue.take_fairest(id, worker, background_slots) else {
                    // Only background work waits, and this worker has its share of it.
                    full.push(worker);
                    continue;
                };
                self.workers[worker].dispatched(was_idle);
                let queued_ms = job.submitted.elapsed().as_secs_f64() * 1000.0;
                let request = job.request;
                let wire = Box::new(protocol::Job {
                    system: request.system,
                    history: request.history,
                    turn: request.turn,
                    options: request.options,
                    schema: request.schema,
                    images: request.images.iter().map(|i| [i.width(), i.height()]).collect(),
                    queued_ms,
                    priority: request.priority,
                });
                sends.push((worker, Outgoing::Submit { id, job: wire, images: request.images }));
            }
            let busy: Vec<usize> = self.workers.iter().map(|w| queue.active_on(w.index)).collect();
            drop(queue);

            for (worker, outgoing) in sends {
                // A worker that cannot be written to is ending; its link fails its answers.
                if let Err(e) = self.workers[worker].send(outgoing) {
                    tracing::warn!(worker, error = %e, "could not send to an inference worker");
                    self.workers[worker].kill();
                }
            }
            for (worker, active) in self.workers.iter().zip(busy) {
                if active > 0 {
                    worker.watch(self.limits.stall);
                }
            }

            let queue = lock(&self.queue);
            if !queue.dirty {
                let _ = self.wake.wait_timeout(queue, Duration::from_millis(50));
            }
        }
    }

    /// Ends the waiting jobs whose askers left and those that waited past the time-out.
    fn close_waiting(&self, queue: &mut Queue) {
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
    }

    /// The ready worker with a free slot to send the next question to: a GPU before a CPU, then the
    /// one with the fewest answers in progress (`skip`: those with no room for what waits).
    fn least_loaded(&self, queue: &Queue, skip: &[usize]) -> Option<usize> {
        if queue.waiting.is_empty() {
            return None;
        }
        self.workers
            .iter()
            .filter(|w| w.is_ready() && !skip.contains(&w.index))
            .map(|w| (w.index, queue.active_on(w.index), w.on_cpu()))
            .filter(|&(_, active, _)| active < self.limits.max_active)
            .min_by_key(|&(index, active, on_cpu)| (on_cpu, active, index))
            .map(|(index, _, _)| index)
    }

    /// A worker's message about one of its answers.
    fn answered(&self, worker: &workers::Worker, message: protocol::FromWorker) {
        use protocol::FromWorker;
        let mut queue = lock(&self.queue);
        match message {
            FromWorker::Step { pieces } => {
                for piece in pieces {
                    if let Some(r) = queue.running.iter().find(|r| r.id == piece.id && r.worker == worker.index)
                        && r.events.send(JobEvent::Token(piece.text)).is_err()
                    {
                        r.control.stop(StopCause::ClientGone);
                    }
                }
            }
            FromWorker::Done { id, generation, history_turns, queued_ms } => {
                if let Some(r) = queue.take_running(id) {
                    let Some(model) = worker.info() else { return };
                    let cause = r.control.cause().unwrap_or(StopCause::Finished);
                    let answer = Answer { generation: *generation, cause, history_turns, queued_ms, model };
                    let _ = r.events.send(JobEvent::Done(Box::new(answer)));
                }
                self.poke(&mut queue);
            }
            FromWorker::Failed { id, failure } => {
                if let Some(r) = queue.take_running(id) {
                    // Cancelled before its prompt ran: say why, as for a question that never left the queue.
                    let failure = match r.control.cause() {
                        Some(cause) if failure.code == "cancelled" => stopped_before_start(cause),
                        _ => failure,
                    };
                    let _ = r.events.send(JobEvent::Failed(failure));
                }
                self.poke(&mut queue);
            }
            _ => {}
        }
    }

    /// Ends every answer in progress on a worker that is gone; returns how many.
    fn fail_worker(&self, worker: usize, failure: &Failure) -> usize {
        let mut queue = lock(&self.queue);
        let (gone, kept): (Vec<Running>, Vec<Running>) = queue.running.drain(..).partition(|r| r.worker == worker);
        queue.running = kept;
        for r in &gone {
            let _ = r.events.send(JobEvent::Failed(failure.clone()));
        }
        self.poke(&mut queue);
        gone.len()
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

    fn job(client: &str) -> Job {
        job_with(client, Priority::Interactive)
    }

    fn job_with(client: &str, priority: Priority) -> Job {
        let (events, _) = mpsc::unbounded_channel();
        Job {
            request: ChatRequest {
                client: client.into(),
                priority,
                system: String::new(),
                history: vec![],
                turn: Turn { role: models::prompt::Role::User, text: String::new(), images: 0, image_captions: vec![] },
                images: vec![],
                options: GenerateOptions::default(),
                schema: None,
            },
            control: Arc::default(),
            events,
            submitted: Instant::now(),
        }
    }

    /// One GPU worker and one CPU worker: the GPU takes questions first, the CPU once the GPU's slots
    /// are full, and a worker that is not ready takes none.
    #[test]
    fn dispatch_prefers_the_gpu_then_the_least_loaded() {
        let limits = InferenceLimits {
            max_active: 2,
            max_waiting: 8,
            max_per_client: 8,
            timeout: Duration::from_secs(60),
            stall: Duration::from_secs(60),
        };
        let shared = Shared {
            limits,
            logs_dir: PathBuf::new(),
            queue: Mutex::default(),
            wake: Condvar::new(),
            workers: vec![workers::Worker::ready_for_tests(0, "cpu"), workers::Worker::ready_for_tests(1, "cuda:0")],
            next_id: AtomicU64::new(1),
        };
        assert_eq!(shared.capacity(), 4);
        let mut queue = Queue::default();
        assert_eq!(shared.least_loaded(&queue, &[]), None, "nothing waits");
        let mut order = Vec::new();
        for id in 0..5 {
            queue.waiting.push_back(job("a"));
            let Some(worker) = shared.least_loaded(&queue, &[]) else { break };
            queue.take_fairest(id, worker, 2);
            order.push(worker);
        }
        assert_eq!(order, [1, 1, 0, 0], "GPU first, then the CPU; none when all slots are taken");
        queue.take_running(0);
        assert_eq!(shared.least_loaded(&queue, &[]), Some(1), "a freed GPU slot goes first");
        std::thread::sleep(Duration::from_millis(2));
        shared.workers[1].watch(Duration::from_millis(1));
        queue.take_running(2);
        assert_eq!(shared.least_loaded(&queue, &[]), Some(0), "a worker taken for hung takes nothing");
    }

    /// Pre-reads wait behind every interactive question, older or not, and take at most their share of
    /// a worker's slots.
    #[test]
    fn interactive_questions_go_ahead_of_background_work() {
        let mut queue = Queue::default();
        for _ in 0..3 {
            queue.waiting.push_back(job_with("pre-read", Priority::Background));
        }
        queue.waiting.push_back(job("doctor"));
        let taken = queue.take_fairest(1, 0, 2).unwrap();
        assert_eq!(taken.request.client, "doctor");
        assert_eq!(queue.take_fairest(2, 0, 2).unwrap().request.priority, Priority::Background);
        assert_eq!(queue.take_fairest(3, 0, 2).unwrap().request.priority, Priority::Background);
        assert!(queue.take_fairest(4, 0, 2).is_none(), "two background slots are taken");
        assert!(queue.take_fairest(4, 1, 2).is_some(), "another worker has its own share");
        queue.waiting.push_back(job("doctor"));
        assert_eq!(queue.take_fairest(5, 0, 2).unwrap().request.client, "doctor", "room for a question");
    }

    #[test]
    fn admission_prefers_the_client_with_fewest_answers_in_progress() {
        let mut queue = Queue::default();
        for (id, client) in ["a", "a", "b"].into_iter().enumerate() {
            queue.waiting.push_back(job(client));
            queue.take_fairest(id as u64, 0, 8);
        }
        assert_eq!((queue.active_of("a"), queue.active_of("b")), (2, 1));
        for client in ["a", "a", "b", "c"] {
            queue.waiting.push_back(job(client));
        }
        let order: Vec<String> = (10..).map_while(|id| Some(queue.take_fairest(id, 1, 8)?.request.client)).collect();
        // c has none running, then b (1) before a (2); after b's second, a and b are level: a is older.
        assert_eq!(order, ["c", "b", "a", "a"]);
        assert_eq!((queue.active_on(0), queue.active_on(1)), (3, 4));
        assert!(queue.take_running(11).is_some_and(|r| r.client == "b") && queue.take_running(11).is_none());
    }
}
