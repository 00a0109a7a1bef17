//! The readiness report of `/readyz`: the server builds it, the home page shows it.

use serde::{Deserialize, Serialize};

/// Body of `GET /readyz`. The server answers 200 when `ready`, 503 otherwise, with this body either way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// True when the database answers. The server is usable without a model (viewing, measuring,
    /// reporting), so the model does not decide readiness; it is reported beside it.
    pub ready: bool,
    pub version: String,
    pub database: DatabaseStatus,
    pub model: ModelStatus,
    /// The DICOM listener (the peers and their addresses are not shown here: `/readyz` answers anyone).
    #[serde(default)]
    pub dicom: DicomStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DicomStatus {
    /// Where it listens; None when off or when the port could not be opened (then `error` says why).
    pub listening: Option<String>,
    pub ae_title: String,
    /// Any calling AE title is accepted (a first install), not only the known peers.
    pub accept_any: bool,
    pub error: Option<String>,
    pub active_associations: usize,
    /// Since the server started.
    pub associations: u64,
    pub instances_stored: u64,
    pub instances_failed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub ok: bool,
    /// "sqlite" or "postgres"; never the URL, which may hold a password.
    pub backend: String,
    /// Why the database is not reachable, in Chinese and English; absent when `ok`.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub loaded: bool,
    /// What the operator needs to know, in Chinese and English, e.g. that no model is configured.
    pub state: String,
    /// Where inference would run: "cpu" or "cuda:0 (…)".
    pub device: String,
    /// The checkpoint folder's name, once loaded.
    #[serde(default)]
    pub name: Option<String>,
    /// Random test weights: the UI labels every answer as meaningless.
    #[serde(default)]
    pub test_model: bool,
    /// A loaded model without a vision tower: it answers from the question, the measurements and the
    /// report; images are not sent to it.
    #[serde(default)]
    pub text_only: bool,
    /// Questions waiting for the model, and answers in progress.
    #[serde(default)]
    pub queue_waiting: Option<usize>,
    #[serde(default)]
    pub queue_active: Option<usize>,
    /// The inference worker processes, each with its device and load.
    #[serde(default)]
    pub workers: Vec<InferenceWorker>,
}

/// One inference worker process, as /readyz and `status` show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceWorker {
    /// "local cpu", "local cuda:1", or the address of a worker on another machine.
    pub place: String,
    /// "loading", "ready" or "failed".
    pub state: String,
    pub device: Option<String>,
    /// The model it has loaded.
    pub model: Option<String>,
    /// Answers in progress on it.
    pub active: usize,
    /// Times it was replaced (hung, or exited).
    pub restarts: u64,
    pub pid: Option<u32>,
}
