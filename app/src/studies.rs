//! The worklist and a study's series and instances, as `GET /api/v1/studies` and `/studies/{id}` send
//! them: the server's store builds these, the pages read them (one declaration for both sides).

use serde::{Deserialize, Serialize};

/// `GET /api/v1/studies`: one page of the worklist and how many studies match in all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyList {
    pub studies: Vec<StudySummary>,
    pub total: i64,
}

/// One study with its patient, as a worklist row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    pub id: i64,
    pub study_uid: String,
    /// The server's key for the patient (the patient ID, or a key made from name and birth date).
    pub patient_key: String,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    /// DICOM date, YYYYMMDD.
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub accession_number: Option<String>,
    /// DICOM date, YYYYMMDD.
    pub study_date: Option<String>,
    pub description: Option<String>,
    /// The report workflow's state of the study (new, draft, signed …).
    pub status: String,
    /// How it arrived ("upload").
    pub source: String,
    pub created_at: String,
    pub series_count: i64,
    pub instance_count: i64,
    /// The series' modalities, sorted, each once.
    #[serde(default)]
    pub modalities: Vec<String>,
    /// Where the AI's pre-read draft is: queued, running, ready, failed or cancelled; absent when the
    /// server has not pre-read the study (pre-reads off, or it arrived before the server started).
    #[serde(default)]
    pub pre_read: Option<String>,
    /// The AI's triage of the study, where it has one.
    #[serde(default)]
    pub triage: Option<TriageMark>,
}

/// The AI's triage flags on a worklist row (an AI output: shown as such, with the model's basis).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TriageMark {
    /// pneumothorax, large_pleural_effusion, mass_or_nodule_8mm, consolidation, cardiomegaly; none: normal.
    pub flags: Vec<String>,
    /// A flag that puts the study first (pneumothorax, large pleural effusion).
    pub urgent: bool,
    pub basis: String,
    /// confirmed or dismissed by a radiologist; None until then.
    pub decision: Option<String>,
    /// The model that answered.
    pub model: String,
}

/// `GET /api/v1/studies/{id}`: the summary and every series with its instances, in display order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyDetail {
    #[serde(flatten)]
    pub summary: StudySummary,
    pub series: Vec<SeriesDetail>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesDetail {
    pub id: i64,
    pub series_uid: String,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub instances: Vec<InstanceSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSummary {
    pub id: i64,
    pub sop_instance_uid: String,
    pub instance_number: Option<i64>,
    /// "dicom", "jpeg" or "png".
    pub format: String,
    pub rows: i64,
    pub columns: i64,
    pub frames: i64,
}

/// `GET /api/v1/studies/{id}/pacs-priors` (and `medgemma-x dicom find --json`): a study another DICOM node
/// holds, as its C-FIND answer says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteStudy {
    /// The peer's AE title.
    pub peer: String,
    pub study_uid: String,
    /// DICOM date, YYYYMMDD.
    pub study_date: Option<String>,
    pub description: Option<String>,
    pub accession_number: Option<String>,
    pub modalities: Vec<String>,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub instances: Option<u32>,
    /// Our study id, when we hold it already.
    pub held: Option<i64>,
}

/// `POST /api/v1/studies/{id}/pacs-priors/retrieve`: how the C-MOVE ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Retrieved {
    pub study_uid: String,
    /// Instances the PACS sent, failed to send, and sent with a warning.
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
    /// Our study id, once the instances are here.
    pub study_id: Option<i64>,
}
