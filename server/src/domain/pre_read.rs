//! Pre-reads: when a study arrives, the model triages it (domain::triage: the worklist puts urgent
//! findings first) and drafts its structured report in the background, so that the draft is there ("从AI草稿开始") when the radiologist opens the study instead of being waited for.
//! A pre-read is an ordinary `report_draft` question asked by nobody in particular: its question and
//! answer join the study's conversation like any other AI output, labelled as such. It runs at
//! [`Priority::Background`]: every interactive question goes ahead of it and it never takes more than
//! half of a worker's slots. A pre-read still in progress when its study's report is signed is
//! cancelled. The worklist shows each study's state. `--pre-read false` turns it off. After a restart,
//! the studies of the last [`RESUME_DAYS`] days still unread and without a draft are pre-read again
//! once the model is ready (the queue lives in memory; the drafts and triage answers are in the database).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::DomainError;
use crate::domain::ask::{self, Asking, Question};
use crate::domain::inference::{EngineState, JobControl, Priority, StopCause};
use crate::domain::triage;
use crate::store::db::Pool;
use crate::store::studies::{self, WorklistQuery};

/// The fair-admission key of every pre-read: they compete with one another, not with a radiologist.
const CLIENT: &str = "pre-read";

/// How far back a restart looks for studies whose pre-read it left undone (older unread studies are
/// being read by now, or are a backlog that should not hold the model for hours after an upgrade).
pub const RESUME_DAYS: i64 = 2;

/// At most this many resumed at once (the background queue holds 512).
const RESUME_MAX: i64 = 400;

/// Where one study's pre-read is, as the worklist shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreReadState {
    /// Waiting for a free slot behind the interactive questions.
    Queued,
    /// The model is writing it.
    Running,
    /// The draft is in the study's conversation.
    Ready,
    /// The model refused or failed; the radiologist can still ask for a draft from the page.
    Failed,
    /// The study was signed first.
    Cancelled,
}

impl PreReadState {
    pub fn as_str(self) -> &'static str {
        match self {
            PreReadState::Queued => "queued",
            PreReadState::Running => "running",
            PreReadState::Ready => "ready",
            PreReadState::Failed => "failed",
            PreReadState::Cancelled => "cancelled",
        }
    }
}

pub struct PreReads {
    /// None: pre-reads are off.
    asking: Option<Asking>,
    /// Studies this server has pre-read (or is pre-reading) since it started.
    studies: Mutex<HashMap<i64, Entry>>,
}

/// How one background question ended.
enum Asked {
    /// Not taken (the model loading, the queue full).
    Refused,
    /// Cancelled, or failed: nothing more to do.
    Stopped,
    /// Answered: the `done` event's data.
    Done(serde_json::Value),
}

fn text_of(done: &serde_json::Value) -> String {
    done["text"].as_str().unwrap_or_default().to_string()
}

struct Entry {
    state: PreReadState,
    /// Stops it, once the question is queued.
    control: Option<Arc<JobControl>>,
}

impl PreReads {
    pub fn new(asking: Asking) -> PreReads {
        PreReads { asking: Some(asking), studies: Mutex::default() }
    }

    pub fn off() -> PreReads {
        PreReads { asking: None, studies: Mutex::default() }
    }

    /// Studies arrived (an upload stored images in them): each gets its pre-read, once. Returns at once;
    /// the drafts are written in the background. Nothing happens with pre-reads off or without a model.
    pub fn arrived(self: &Arc<Self>, study_ids: impl IntoIterator<Item = i64>) {
        let Some(asking) = &self.asking else { return };
        if asking.inference.is_none() {
            return;
        }
        for study_id in study_ids {
            {
                let mut studies = self.lock();
                if studies.contains_key(&study_id) {
                    continue;
                }
                studies.insert(study_id, Entry { state: PreReadState::Queued, control: None });
            }
            let (this, asking) = (Arc::clone(self), asking.clone());
            tokio::spawn(async move { this.run(asking, study_id).await });
        }
    }

    /// Queues again, once the model is ready, the pre-reads an earlier run of the server left undone
    /// (see [`studies::awaiting_pre_read`]). Ends at once with pre-reads off, without a model, or
    /// when it fails to load.
    pub async fn resume(self: Arc<Self>) {
        let Some(asking) = &self.asking else { return };
        let Some(inference) = &asking.inference else { return };
        loop {
            match inference.state() {
                EngineState::Ready(_) => break,
                EngineState::Failed(_) => return,
                EngineState::Loading => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(RESUME_DAYS);
        let since = since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        match studies::awaiting_pre_read(&asking.db, &since, RESUME_MAX).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                tracing::info!(studies = ids.len(), "pre-reads left undone before the restart are queued again");
                self.arrived(ids);
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for pre-reads left undone"),
        }
    }

    /// Triage first (short: it orders the worklist), then the draft.
    async fn run(&self, asking: Asking, study_id: i64) {
        let db = asking.db.clone();
        let triage = match self.ask_one(asking.clone(), study_id, Question::pre_read_triage()).await {
            Asked::Refused => {
                // The model loading, the study gone, the background queue full: forgotten, so that the
                // study's next arrival tries again; the page can draft meanwhile.
                self.lock().remove(&study_id);
                return;
            }
            Asked::Stopped => return,
            Asked::Done(done) => done,
        };
        let text = fault_injection::triage_answer(&db, study_id).await.unwrap_or_else(|| text_of(&triage));
        let model = triage["model"]["name"].as_str().unwrap_or_default();
        if let Err(e) = triage::record(&db, study_id, &text, model).await {
            tracing::warn!(study_id, error = %e, "triage not recorded");
        }
        let state = match self.ask_one(asking, study_id, Question::pre_read_draft()).await {
            Asked::Done(done) if done["report"].is_object() => PreReadState::Ready,
            Asked::Done(_) | Asked::Refused => PreReadState::Failed,
            Asked::Stopped => return,
        };
        self.set(study_id, state);
    }

    /// Asks one question in the background and follows its answer; the `done` event's data.
    async fn ask_one(&self, asking: Asking, study_id: i64, question: Question) -> Asked {
        let answering = match ask::ask(asking, CLIENT.into(), Priority::Background, study_id, question).await {
            Ok(answering) => answering,
            Err(e) => {
                tracing::warn!(study_id, error = %e, "pre-read question not started");
                return Asked::Refused;
            }
        };
        {
            let mut studies = self.lock();
            let Some(entry) = studies.get_mut(&study_id) else { return Asked::Stopped };
            if entry.state == PreReadState::Cancelled {
                // Signed while the question was being prepared.
                answering.control().stop(StopCause::ClientGone);
            }
            entry.control = Some(answering.control());
        }
        let mut events = std::pin::pin!(answering.into_stream());
        let mut outcome = Asked::Stopped;
        while let Some(event) = events.next().await {
            match event.name {
                "token" => self.set(study_id, PreReadState::Running),
                "done" if event.data["stop"] == "client_gone" => self.set(study_id, PreReadState::Cancelled),
                "done" => outcome = Asked::Done(event.data),
                "error" => {
                    self.set(study_id, PreReadState::Failed);
                    return Asked::Stopped;
                }
                _ => {}
            }
        }
        if self.state(study_id) == Some(PreReadState::Cancelled) { Asked::Stopped } else { outcome }
    }

    /// The study's report was signed: its pre-read, if still in progress, is of no use any more.
    pub fn cancel(&self, study_id: i64) {
        let mut studies = self.lock();
        if let Some(entry) = studies.get_mut(&study_id)
            && matches!(entry.state, PreReadState::Queued | PreReadState::Running)
        {
            entry.state = PreReadState::Cancelled;
            if let Some(control) = &entry.control {
                control.stop(StopCause::ClientGone);
            }
        }
    }

    pub fn state(&self, study_id: i64) -> Option<PreReadState> {
        self.lock().get(&study_id).map(|e| e.state)
    }

    /// The worklist, each study marked with its pre-read's state where this server has one.
    pub async fn worklist(&self, db: &Pool, query: &WorklistQuery) -> Result<app::studies::StudyList, DomainError> {
        let mut list = studies::worklist(db, query).await?;
        let states = self.lock();
        for study in &mut list.studies {
            study.pre_read = states.get(&study.id).map(|e| e.state.as_str().to_string());
        }
        Ok(list)
    }

    fn set(&self, study_id: i64, state: PreReadState) {
        if let Some(entry) = self.lock().get_mut(&study_id)
            && entry.state != PreReadState::Cancelled
        {
            entry.state = state;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry>> {
        self.studies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A triage answer on demand, for the worklist-order test: with `MEDGEMMA_X_FAULT_TRIAGE_URGENT=ID`, the
/// model's triage answer is replaced — pneumothorax for the studies of the patient with DICOM patient ID
/// `ID`, normal for every other — so that the order the answers cause can be checked with a random model.
/// Unset, as in every real deployment, the model's own answer stands.
mod fault_injection {
    use crate::store::db::Pool;

    pub async fn triage_answer(db: &Pool, study_id: i64) -> Option<String> {
        let urgent_patient = std::env::var("MEDGEMMA_X_FAULT_TRIAGE_URGENT").ok()?;
        let identity = crate::domain::reports::study_identity(db, study_id).await.ok()??;
        let urgent = identity.patient.id == urgent_patient;
        tracing::warn!(study_id, urgent, "fault injection: the triage answer is replaced");
        Some(
            serde_json::json!({
                "pneumothorax": urgent, "large_pleural_effusion": false, "mass_or_nodule_8mm": false,
                "consolidation": false, "cardiomegaly": false, "normal": !urgent,
                "basis": if urgent { "（故障注入）右侧胸膜线外无肺纹理" } else { "（故障注入）未见异常" },
            })
            .to_string(),
        )
    }
}
