//! A question about a study's images, as `POST /api/v1/studies/{id}/chat` asks it: checked, the images
//! chosen and prepared as the model sees them, the prompt assembled, submitted to the inference queue,
//! and answered as a stream of events — `token` (text as it is produced), then `heatmap` and `boxes`
//! where there are any, then `done`; or `error`. The question and the answer are kept as the study's
//! conversation, also when the browser leaves before the end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, Stream};
use image::RgbImage;
use models::generate::GenerateOptions;
use models::prompt::{Role, Turn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::domain::DomainError;
use crate::domain::chat::{self, ChatSettings, Mode, PromptImage};
use crate::domain::images::Images;
use crate::domain::inference::{
    Answer, ChatRequest, EngineState, Failure, Inference, JobControl, JobEvent, Priority, Refusal, StopCause,
};
use crate::domain::instances;
use crate::domain::metrics::Metrics;
use crate::domain::model::ModelSetup;
use crate::store::chat::{self as messages, NewMessage};
use crate::store::db::Pool;
use crate::store::studies::{self, StudyRef};

/// Longest question, characters.
const MAX_QUESTION_CHARS: usize = 4000;
/// Most tokens one answer may ask for.
const MAX_NEW_TOKENS_LIMIT: usize = 4096;

/// What the radiologist asks, as the chat API's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    message: String,
    #[serde(default)]
    mode: Mode,
    /// Images to ask about. Default: the study's first image; for a CT series, up to the slice limit
    /// of its slices, evenly spaced.
    #[serde(default)]
    images: Vec<ImageRef>,
    /// For `compare`: the prior image. Default: the first image of the patient's latest earlier study.
    prior: Option<ImageRef>,
    /// For `report_draft`: the radiologist's measurements from the viewer. The model is told them, and
    /// they are merged into the draft's findings (by location) with their basis.
    #[serde(default)]
    measurements: Vec<ViewerMeasurement>,
    /// Use the study's earlier questions and answers as context (default true).
    #[serde(default = "yes")]
    context: bool,
    max_new_tokens: Option<usize>,
    /// No end of answer before this many tokens (load tests and benchmarks want fixed lengths).
    min_new_tokens: Option<usize>,
    /// 0 (the default) answers greedily: the same question gets the same answer.
    temperature: Option<f64>,
    seed: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Question {
    /// The triage question a pre-read asks first (short: it orders the worklist).
    pub fn pre_read_triage() -> Question {
        Question { message: "AI预读：分诊".into(), mode: Mode::Triage, ..Question::pre_read_draft() }
    }

    /// What a pre-read asks when a study arrives: the structured draft, told the saved measurements
    /// (none yet, usually), without the conversation, greedy (the same study gets the same draft).
    pub fn pre_read_draft() -> Question {
        Question {
            message: "AI预读：生成结构化报告".into(),
            mode: Mode::ReportDraft,
            images: Vec::new(),
            prior: None,
            measurements: Vec::new(),
            context: false,
            max_new_tokens: None,
            min_new_tokens: None,
            temperature: None,
            seed: None,
        }
    }
}

#[derive(Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    instance_id: i64,
    /// 1-based; default 1.
    #[serde(default = "first_frame")]
    frame: usize,
}

fn first_frame() -> usize {
    1
}

/// One measurement as the viewer made it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerMeasurement {
    /// Where, as the radiologist labelled it (e.g. 右肺上叶).
    location: String,
    long_axis_mm: f64,
    short_axis_mm: Option<f64>,
    /// What the numbers rest on (window, spacing source), printed beside them.
    basis: Option<String>,
}

/// The study's saved length and bidirectional measurements in millimetres, as a draft is told them (at most
/// 20, as many as a request may send).
async fn saved_measurements(db: &Pool, study_id: i64) -> Result<Vec<ViewerMeasurement>, DomainError> {
    let saved = crate::domain::measurements::for_study(db, study_id).await?;
    Ok(saved
        .iter()
        .filter_map(|m| m.for_draft())
        .map(|(location, long_axis_mm, short_axis_mm, basis)| ViewerMeasurement {
            location,
            long_axis_mm,
            short_axis_mm,
            basis: Some(basis),
        })
        .filter(ViewerMeasurement::is_valid)
        .take(20)
        .collect())
}

impl ViewerMeasurement {
    fn is_valid(&self) -> bool {
        let ok = |v: f64| v.is_finite() && v > 0.0 && v <= 500.0;
        !self.location.trim().is_empty()
            && self.location.chars().count() <= 60
            && ok(self.long_axis_mm)
            && self.short_axis_mm.is_none_or(ok)
    }

    /// How the model is told it: 右肺上叶：长径 12.3 毫米，短径 8.1 毫米
    fn sentence(&self) -> String {
        match self.short_axis_mm {
            Some(short) => {
                format!("{}：长径 {:.1} 毫米，短径 {:.1} 毫米", self.location.trim(), self.long_axis_mm, short)
            }
            None => format!("{}：长径 {:.1} 毫米", self.location.trim(), self.long_axis_mm),
        }
    }
}

/// What answering needs of the server: storage, the images, the model's worker and the chat defaults.
/// Cheap to clone (reference counted); the web state lends its parts.
#[derive(Clone)]
pub struct Asking {
    pub db: Pool,
    pub images: Arc<Images>,
    /// None when no usable model is configured.
    pub inference: Option<Inference>,
    pub model: ModelSetup,
    pub chat: ChatSettings,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down: the answer stops and what there is gets recorded.
    pub shutdown: CancellationToken,
}

/// One event of an answer's stream: its name (`token`, `heatmap`, `boxes`, `done`, `error`) and data.
pub struct AnswerEvent {
    pub name: &'static str,
    pub data: serde_json::Value,
}

/// Checks the question, prepares its images and prompt and queues it for the model. `client` is the
/// caller's key for fair admission: one radiologist's many questions cannot crowd out another's.
/// `priority`: a radiologist's question, or a pre-read.
pub async fn ask(
    ctx: Asking,
    client: String,
    priority: Priority,
    study_id: i64,
    mut body: Question,
) -> Result<Answering, DomainError> {
    let question = body.message.trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
        return Err(DomainError::invalid(
            format!("问题不能为空，且不超过 {MAX_QUESTION_CHARS} 字"),
            format!("the question must be 1–{MAX_QUESTION_CHARS} characters"),
        ));
    }
    let temperature = body.temperature.unwrap_or(0.0);
    let max_new_tokens = body.max_new_tokens.unwrap_or(ctx.chat.max_new_tokens);
    // A draft gets the budget of the longest document its schema allows: it always completes.
    let answer_tokens = match body.mode {
        Mode::ReportDraft => report::draft::max_tokens(),
        Mode::Triage => crate::domain::triage::MAX_TOKENS,
        _ => max_new_tokens,
    };
    if !(0.0..=2.0).contains(&temperature) || !(1..=MAX_NEW_TOKENS_LIMIT).contains(&max_new_tokens) {
        return Err(DomainError::invalid(
            format!("参数无效：temperature 0–2，max_new_tokens 1–{MAX_NEW_TOKENS_LIMIT}"),
            format!("invalid temperature (0–2) or max_new_tokens (1–{MAX_NEW_TOKENS_LIMIT})"),
        ));
    }
    if !body.measurements.is_empty() && body.mode != Mode::ReportDraft {
        return Err(DomainError::invalid(
            "测量值只用于生成结构化报告（report_draft）",
            "`measurements` are for mode report_draft",
        ));
    }
    if body.measurements.len() > 20 || !body.measurements.iter().all(ViewerMeasurement::is_valid) {
        return Err(DomainError::invalid(
            "测量值无效：最多 20 项，部位不能为空，长度须在 0–500 毫米之间",
            "invalid measurements: at most 20, a location each, lengths in 0–500 mm",
        ));
    }
    if body.images.len() > ctx.chat.max_ct_slices {
        return Err(DomainError::invalid(
            format!("一次最多提问 {} 幅图像", ctx.chat.max_ct_slices),
            format!("at most {} images per question", ctx.chat.max_ct_slices),
        ));
    }
    let Some(inference) = ctx.inference.clone() else {
        return Err(DomainError::Unavailable {
            zh: format!("未配置模型：{}", ctx.model.describe()),
            en: "No model is configured: chat is unavailable".into(),
        });
    };
    let model = match inference.state() {
        EngineState::Ready(info) => info,
        EngineState::Loading => return Err(loading()),
        EngineState::Failed(reason) => return Err(load_failed(&reason)),
    };

    let study = load_study(&ctx.db, study_id).await?;
    // A draft asked for without measurements (the study page's 生成结构化报告) is told the saved ones.
    if body.mode == Mode::ReportDraft && body.measurements.is_empty() {
        body.measurements = saved_measurements(&ctx.db, study_id).await?;
    }
    let (current, ct_slices) = match body.images.as_slice() {
        // A text-only model is asked about the text alone: no image is looked up or sent.
        _ if !model.reads_images => (Vec::new(), false),
        [] => default_images(&ctx.db, study_id, ctx.chat.max_ct_slices).await?,
        chosen => (chosen.to_vec(), false),
    };
    let prior = match (body.mode, body.prior) {
        (_, Some(_)) if body.mode != Mode::Compare => {
            return Err(DomainError::invalid("只有对比模式（compare）使用既往图像", "`prior` is for mode compare"));
        }
        _ if !model.reads_images => None,
        (Mode::Compare, Some(prior)) => Some(prior),
        (Mode::Compare, None) => Some(prior_image(&ctx.db, &study).await?),
        _ => None,
    };
    let mut refs: Vec<(ImageRef, &'static str)> = Vec::new();
    if let Some(prior) = prior {
        refs.push((prior, "prior"));
    }
    let current_role = if ct_slices { "slice" } else { "current" };
    refs.extend(current.iter().map(|r| (*r, current_role)));
    let mut prompt_images = Vec::with_capacity(refs.len());
    let mut pixels = Vec::with_capacity(refs.len());
    for (image_ref, role) in &refs {
        let (rgb, prompt_image) = model_image(&ctx, image_ref, role, model.image_size, &study).await?;
        pixels.push(rgb);
        prompt_images.push(prompt_image);
    }

    let prior_date = match prior {
        Some(p) => display_date(&studies::study_date_of_instance(&ctx.db, p.instance_id).await?),
        None => String::new(),
    };
    let mut text = chat::question_text(body.mode, ct_slices, question, &prior_date, &display_date(&study.study_date));
    if !body.measurements.is_empty() {
        text.push_str("\n医生在阅片器中的测量（以此为准）：\n");
        for m in &body.measurements {
            text.push_str(&m.sentence());
            text.push('\n');
        }
    }
    let image_captions =
        if ct_slices { (1..=pixels.len()).map(|n| format!("SLICE {n}")).collect() } else { Vec::new() };
    let turn = Turn { role: Role::User, text, images: pixels.len(), image_captions };
    let earlier = messages::history(&ctx.db, study_id).await?;
    let history = if body.context { chat::context_turns(&earlier) } else { Vec::new() };
    let images_json = serde_json::to_value(&prompt_images).map_err(anyhow::Error::from)?;

    let request = ChatRequest {
        client,
        priority,
        system: chat::SYSTEM_ZH.to_string(),
        history,
        turn,
        images: pixels,
        options: GenerateOptions {
            max_new_tokens: answer_tokens,
            min_new_tokens: body.min_new_tokens.unwrap_or(0).min(answer_tokens),
            temperature,
            top_p: if temperature > 0.0 { 0.95 } else { 1.0 },
            top_k: if temperature > 0.0 { 64 } else { 0 },
            repetition_penalty: 1.0,
            seed: body.seed.unwrap_or(0),
            image_attention: true,
        },
        schema: match body.mode {
            Mode::ReportDraft => Some(report::draft::draft_schema()),
            Mode::Triage => Some(crate::domain::triage::schema()),
            _ => None,
        },
    };
    let ticket = inference.submit(request).map_err(|refusal| match refusal {
        Refusal::Loading => loading(),
        Refusal::LoadFailed(reason) => load_failed(&reason),
        Refusal::QueueFull { retry_after_s } => DomainError::Busy {
            code: "queue_full",
            zh: "当前提问较多，请稍后重试".into(),
            en: "Too many questions are waiting; try again shortly".into(),
            retry_after_s,
        },
        Refusal::ClientFull { limit } => DomainError::TooMany {
            code: "too_many_questions",
            zh: format!("您已有 {limit} 个提问在等待或回答中，请等其完成后再提问"),
            en: format!("You have {limit} questions waiting or being answered; ask again when one is done"),
            retry_after_s: 5,
        },
    })?;
    // Recorded once the model has taken it: a refused question is not part of the conversation.
    let question_id = messages::store(
        &ctx.db,
        NewMessage {
            study_id,
            role: "user",
            content: question,
            mode: body.mode.as_str(),
            prompt_version: chat::PROMPT_VERSION,
            images: images_json.clone(),
            stop: None,
            model: None,
            prompt_tokens: None,
            answer_tokens: None,
            details: None,
        },
    )
    .await?;

    let record = AnswerRecord {
        ctx: ctx.clone(),
        study_id,
        mode: body.mode,
        images: prompt_images,
        images_json,
        question_id,
        started: Instant::now(),
        draft_basis: match body.mode {
            Mode::ReportDraft => Some(DraftBasis {
                identity: crate::domain::reports::study_identity(&ctx.db, study_id)
                    .await?
                    .ok_or_else(|| DomainError::not_found("没有这个检查", "No such study"))?,
                measurements: body.measurements,
            }),
            _ => None,
        },
    };
    let answering = Answering {
        record: Arc::new(record),
        events: Some(ticket.events),
        control: ticket.control,
        shutdown: ctx.shutdown.clone(),
        shutdown_seen: false,
        pending: VecDeque::new(),
        finished: false,
        first_token_ms: None,
    };
    Ok(answering)
}

fn loading() -> DomainError {
    DomainError::Busy {
        code: "model_loading",
        zh: "模型正在加载，请稍后重试".into(),
        en: "The model is loading; try again shortly".into(),
        retry_after_s: 30,
    }
}

fn load_failed(reason: &str) -> DomainError {
    DomainError::Unavailable {
        zh: format!("模型加载失败，对话功能不可用：{reason}"),
        en: format!("The model failed to load; chat is unavailable: {reason}"),
    }
}

async fn load_study(db: &Pool, id: i64) -> Result<StudyRef, DomainError> {
    studies::study_ref(db, id).await?.ok_or_else(|| DomainError::not_found("没有这个检查", "No such study"))
}

fn display_date(dicom_date: &Option<String>) -> String {
    match dicom_date.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => report::display_date(d),
        _ => "日期不详".to_string(),
    }
}

/// The study's first image; a CT series' slices (evenly spaced, at most `max_slices`), one per
/// instance or one per frame of a multi-frame instance. The bool says whether these are CT slices.
async fn default_images(db: &Pool, study_id: i64, max_slices: usize) -> Result<(Vec<ImageRef>, bool), DomainError> {
    let Some((modality, instances)) = studies::first_series_instances(db, study_id).await? else {
        return Err(DomainError::invalid("该检查没有图像", "the study has no images"));
    };
    let Some(&(first_instance, frames)) = instances.first() else {
        return Err(DomainError::invalid("该检查没有图像", "the study has no images"));
    };
    if modality.as_deref() != Some("CT") {
        return Ok((vec![ImageRef { instance_id: first_instance, frame: 1 }], false));
    }
    let slices: Vec<ImageRef> = if instances.len() > 1 {
        imaging::model_input::ct_slice_indices(instances.len(), max_slices)
            .into_iter()
            .map(|i| ImageRef { instance_id: instances[i].0, frame: 1 })
            .collect()
    } else {
        imaging::model_input::ct_slice_indices(frames.max(1) as usize, max_slices)
            .into_iter()
            .map(|i| ImageRef { instance_id: first_instance, frame: i + 1 })
            .collect()
    };
    let ct = slices.len() > 1;
    Ok((slices, ct))
}

/// The first image of the same patient's latest study before this one.
async fn prior_image(db: &Pool, study: &StudyRef) -> Result<ImageRef, DomainError> {
    let prior = studies::prior_instance(db, study).await?;
    prior.map(|instance_id| ImageRef { instance_id, frame: 1 }).ok_or_else(|| {
        DomainError::invalid("该患者没有更早的检查可供对比", "the patient has no earlier study to compare with")
    })
}

/// Decodes one frame and prepares it as the model sees it. A current image must belong to the study, a
/// prior one to the same patient.
async fn model_image(
    ctx: &Asking,
    image_ref: &ImageRef,
    role: &'static str,
    size: u32,
    study: &StudyRef,
) -> Result<(RgbImage, PromptImage), DomainError> {
    let row = instances::load(&ctx.db, image_ref.instance_id).await?;
    let belongs = if role == "prior" {
        studies::patient_of_study(&ctx.db, row.study_id).await? == Some(study.patient_id)
    } else {
        row.study_id == study.id
    };
    if !belongs {
        return Err(DomainError::invalid(
            format!("图像 {} 不属于该检查（既往图像须属于同一患者）", image_ref.instance_id),
            format!("image {} is not part of this study (a prior must be the same patient's)", image_ref.instance_id),
        ));
    }
    let decoded = instances::decoded(&ctx.images, &row).await?;
    let index = instances::frame_index(&decoded.frames, image_ref.frame)?;
    let frame_number = image_ref.frame;
    let prepared = tokio::task::spawn_blocking(move || {
        let windows = decoded.info.file_windows();
        imaging::model_input::for_frame(&decoded.frames, index, decoded.info.modality.as_deref(), &windows, size)
    })
    .await?
    .ok_or_else(|| DomainError::invalid("该帧无法显示给模型", "this frame cannot be shown to the model"))?;
    let image =
        PromptImage { instance_id: image_ref.instance_id, frame: frame_number, role, transform: prepared.transform };
    Ok((prepared.rgb, image))
}

/// What an answer is recorded with, shared by the stream that shows it and, when the browser leaves
/// early, the task that still records it.
struct AnswerRecord {
    ctx: Asking,
    study_id: i64,
    mode: Mode,
    images: Vec<PromptImage>,
    images_json: serde_json::Value,
    question_id: i64,
    started: Instant,
    /// For a report draft: what the server merges into what the model wrote.
    draft_basis: Option<DraftBasis>,
}

struct DraftBasis {
    identity: crate::domain::reports::StudyIdentity,
    measurements: Vec<ViewerMeasurement>,
}

/// One answer on its way to the browser.
pub struct Answering {
    record: Arc<AnswerRecord>,
    /// Taken by `Drop` when the browser leaves before the end.
    events: Option<UnboundedReceiver<JobEvent>>,
    control: Arc<JobControl>,
    shutdown: CancellationToken,
    shutdown_seen: bool,
    pending: VecDeque<AnswerEvent>,
    finished: bool,
    first_token_ms: Option<f64>,
}

/// The browser left (closed the page, pressed stop): the answer stops before its next token, and what
/// was written is still recorded — every AI output that reached a screen is in the history.
impl Drop for Answering {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.control.stop(StopCause::ClientGone);
        let (Some(mut events), Ok(runtime)) = (self.events.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let record = Arc::clone(&self.record);
        let first_token_ms = self.first_token_ms;
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    JobEvent::Token(_) => {}
                    JobEvent::Done(answer) => {
                        let _nobody_listens = record.answered(*answer, first_token_ms).await;
                        return;
                    }
                    JobEvent::Failed(failure) => {
                        let _nobody_listens = record.failed(failure).await;
                        return;
                    }
                }
            }
        });
    }
}

impl Answering {
    /// Stops the answer before its next token (or before it starts).
    pub fn control(&self) -> Arc<JobControl> {
        Arc::clone(&self.control)
    }

    /// The answer's events as they come; ends after `done` or `error`.
    pub fn into_stream(self) -> impl Stream<Item = AnswerEvent> {
        stream::unfold(self, |mut a| async move {
            loop {
                if let Some(event) = a.pending.pop_front() {
                    return Some((event, a));
                }
                if a.finished {
                    return None;
                }
                let events = a.events.as_mut()?;
                let next = if a.shutdown_seen {
                    events.recv().await
                } else {
                    tokio::select! {
                        next = events.recv() => next,
                        _ = a.shutdown.cancelled() => {
                            // The worker stops the answer before its next token and sends what there is.
                            a.control.stop(StopCause::Shutdown);
                            a.shutdown_seen = true;
                            continue;
                        }
                    }
                };
                let record = Arc::clone(&a.record);
                match next {
                    Some(JobEvent::Token(text)) => {
                        a.first_token_ms.get_or_insert_with(|| record.started.elapsed().as_secs_f64() * 1000.0);
                        a.pending.push_back(event("token", &json!({ "text": text })));
                    }
                    Some(JobEvent::Done(answer)) => {
                        a.finished = true;
                        a.pending.extend(record.answered(*answer, a.first_token_ms).await);
                    }
                    Some(JobEvent::Failed(failure)) => {
                        a.finished = true;
                        a.pending.push_back(record.failed(failure).await);
                    }
                    None => {
                        a.finished = true;
                        let failure = Failure {
                            code: "engine_error".into(),
                            message_zh: "推理服务已停止".into(),
                            message_en: "the inference worker stopped".into(),
                        };
                        a.pending.push_back(record.failed(failure).await);
                    }
                }
            }
        })
    }
}

impl AnswerRecord {
    /// Stores the answer and returns the events that end its stream: heatmap and boxes where there are
    /// any, then done.
    async fn answered(&self, answer: Answer, first_token_ms: Option<f64>) -> Vec<AnswerEvent> {
        let mut events = Vec::new();
        let g = &answer.generation;
        let heatmaps: Vec<chat::Heatmap> = self
            .images
            .iter()
            .zip(&g.image_attention)
            .map(|(image, attention)| chat::heatmap(image, attention))
            .collect();
        if !heatmaps.is_empty() {
            events.push(event("heatmap", &json!({ "images": heatmaps })));
        }
        // Boxes belong to the image the question is about: the last one (the current image after a prior).
        let parsed = chat::parse_boxes(&g.text);
        let boxes: Vec<chat::LocatedBox> = match self.images.last() {
            Some(image) => parsed.boxes.into_iter().map(|(label, b)| chat::locate(image, label, b)).collect(),
            None => Vec::new(),
        };
        if !boxes.is_empty() || !parsed.problems.is_empty() || self.mode == Mode::Localize {
            events.push(event("boxes", &json!({ "boxes": boxes, "problems": parsed.problems })));
        }
        let stop = match answer.cause {
            StopCause::Finished => serde_json::to_value(g.stop).ok().and_then(|v| v.as_str().map(str::to_string)),
            cause => serde_json::to_value(cause).ok().and_then(|v| v.as_str().map(str::to_string)),
        }
        .unwrap_or_else(|| "eos".into());
        let total_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let timings = json!({
            "queued_ms": answer.queued_ms,
            "prefill_ms": g.timings.prefill_ms,
            "decode_ms": g.timings.decode_ms,
            "decode_tokens_per_s": g.timings.decode_tokens_per_s,
            "time_to_first_token_ms": first_token_ms,
            "total_ms": total_ms,
        });
        let answer_tokens = g.token_ids.len() as i64;
        let prompt_tokens = g.prompt_token_ids.len() as i64;
        let report = match (&self.draft_basis, answer.cause, g.stop) {
            (Some(basis), StopCause::Finished, models::generate::StopReason::Eos) => {
                Some(draft_report(basis, &g.text, &answer.model))
            }
            _ => None,
        };
        // The heatmaps are kept with the answer: a study opened after its pre-read shows the draft's.
        let details = json!({ "boxes": boxes, "timings": timings, "history_turns": answer.history_turns,
                              "report": report, "heatmaps": heatmaps });
        let stored = messages::store(
            &self.ctx.db,
            NewMessage {
                study_id: self.study_id,
                role: "assistant",
                content: &g.text,
                mode: self.mode.as_str(),
                prompt_version: chat::PROMPT_VERSION,
                images: self.images_json.clone(),
                stop: Some(&stop),
                model: Some(&answer.model.name),
                prompt_tokens: Some(prompt_tokens),
                answer_tokens: Some(answer_tokens),
                details: Some(details),
            },
        )
        .await;
        let message_id = match stored {
            Ok(id) => Some(id),
            Err(err) => {
                tracing::error!(error = %err, "cannot store an answer");
                None
            }
        };
        self.ctx.metrics.record_chat(
            &stop,
            first_token_ms.map(|ms| ms / 1000.0),
            answer_tokens,
            g.timings.decode_ms / 1000.0,
        );
        events.push(event(
            "done",
            &json!({
                "text": g.text,
                "stop": stop,
                "question_id": self.question_id,
                "message_id": message_id,
                "prompt_tokens": prompt_tokens,
                "answer_tokens": answer_tokens,
                "history_turns": answer.history_turns,
                "timings": timings,
                "model": answer.model,
                "prompt_version": chat::PROMPT_VERSION,
                "advisory": chat::ADVISORY,
                "report": report,
            }),
        ));
        events
    }

    /// Stores that the question got no answer (and why); returns the `error` event.
    async fn failed(&self, failure: Failure) -> AnswerEvent {
        self.ctx.metrics.record_chat(&failure.code, None, 0, 0.0);
        let stored = messages::store(
            &self.ctx.db,
            NewMessage {
                study_id: self.study_id,
                role: "assistant",
                content: "",
                mode: self.mode.as_str(),
                prompt_version: chat::PROMPT_VERSION,
                images: self.images_json.clone(),
                stop: Some("error"),
                model: None,
                prompt_tokens: None,
                answer_tokens: None,
                details: Some(json!({ "error": failure })),
            },
        )
        .await;
        if let Err(err) = stored {
            tracing::error!(error = %err, "cannot store a failed answer");
        }
        event("error", &failure)
    }
}

/// The full report a finished draft starts: what the model wrote (constrained to the draft schema, so
/// it parses), the study's identity, the viewer's measurements merged into the findings at their
/// location (or added as findings of their own), and the AI provenance.
fn draft_report(basis: &DraftBasis, text: &str, model: &crate::domain::inference::ModelInfo) -> serde_json::Value {
    let draft: report::draft::Draft = match serde_json::from_str(text) {
        Ok(draft) => draft,
        // Cannot happen under the constraint; say so rather than invent a report.
        Err(e) => return json!({ "error": format!("草稿无法解析 / the draft does not parse: {e}") }),
    };
    let ai = report::model::AiProvenance {
        model_name: model.name.clone(),
        model_version: format!("medgemma-x {} · prompts {}", crate::VERSION, chat::PROMPT_VERSION),
        generated_at: crate::support::clock::now_rfc3339(),
        hardware: format!("{} ({})", model.device, model.dtype),
    };
    let identity = &basis.identity;
    let mut report = draft.into_report(identity.exam_id.clone(), ai);
    report.patient = Some(identity.patient.clone());
    report.study = Some(identity.study.clone());
    for m in &basis.measurements {
        let measurements = report::model::Measurements {
            long_axis: m.long_axis_mm,
            short_axis: m.short_axis_mm,
            unit: report::model::LengthUnit::Millimetre,
            basis: m.basis.clone(),
            ..report::model::Measurements::default()
        };
        let location = m.location.trim();
        // A measurement without a place, or a finding without one, matches nothing: it is a finding of its own.
        let placed = location != crate::domain::measurements::NO_PLACE;
        let same_place = |f: &&mut report::model::Finding| {
            let here = f.location.trim();
            placed
                && !here.is_empty()
                && f.measurements.is_none()
                && (here.contains(location) || location.contains(here))
        };
        match report.findings.iter_mut().find(same_place) {
            Some(finding) => finding.measurements = Some(measurements),
            None => report.findings.push(report::model::Finding {
                location: location.to_string(),
                feature: m.sentence(),
                measurements: Some(measurements),
                ..report::model::Finding::default()
            }),
        }
    }
    serde_json::to_value(report).unwrap_or_default()
}

fn event(name: &'static str, data: &impl Serialize) -> AnswerEvent {
    AnswerEvent { name, data: serde_json::to_value(data).unwrap_or_else(|_| json!({})) }
}
