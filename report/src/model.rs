//! The report model. The seed's JSON — `exam_id`, `report_summary`, `findings[] {location, feature,
//! measurements {long_axis, short_axis, unit}, density, boundary}`, `recommendation` — parses as it is.
//! Everything else is optional: identity, the five-part finding frame (部位-形态-密度-边界-邻近结构),
//! nodule type and solid component, links to measurements and images, guideline results, workflow
//! status and signatures, and the AI provenance every AI-drafted report must carry.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A finding's nodule type, as the guidelines weigh it (re-exported so users of the model need not
/// depend on `guidelines`).
pub use guidelines::NoduleType;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The hospital's exam number (e.g. CZ20240511-087).
    pub exam_id: String,
    /// 检查所见与印象 in report language.
    pub report_summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// 建议.
    #[serde(default)]
    pub recommendation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<Study>,
    /// Guideline categories with the rule that fired (Lung-RADS v2022, Fleischner 2017).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guideline_results: Vec<GuidelineResult>,
    /// The exam is a low-dose CT for lung cancer screening: Lung-RADS v2022 applies, and its category is
    /// computed from the typed, measured nodule findings each time the report is saved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lung_cancer_screening: bool,
    #[serde(default)]
    pub status: ReportStatus,
    /// 1 for the first signed version; amendments count up and keep the old versions.
    #[serde(default = "first_version")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// Present when any part was drafted by the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiProvenance>,
}

fn first_version() -> u32 {
    1
}

/// One finding in the five-part frame: 部位 (location) – 形态 (morphology) – 密度 (density) –
/// 边界 (boundary) – 邻近结构 (adjacent structures).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// 部位, e.g. 右肺上叶尖段.
    pub location: String,
    /// What it is, e.g. 实性结节.
    pub feature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Measurements>,
    /// 密度, e.g. 软组织密度(CT值约42HU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<String>,
    /// 边界, e.g. 分叶状伴毛刺.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// 形态, e.g. 类圆形.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub morphology: Option<String>,
    /// 邻近结构, e.g. 邻近胸膜牵拉.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_structures: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodule_type: Option<NoduleType>,
    /// Features the guidelines weigh: `spiculation`, `perifissural`, `juxtapleural`,
    /// `benign_calcification`, `fat`, `endobronchial`, `lymphadenopathy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodule_features: Vec<String>,
    /// The same nodule measured on the patient's prior exam, as the radiologist matched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSize>,
    /// The change against `prior`, written by the server when the report is saved, e.g.
    /// "较2025-10-15增大2.1毫米（VDT 280天）".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Viewer measurements and images this finding rests on (server ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_ids: Vec<String>,
    /// True while the text is the model's draft and no doctor has edited it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ai_drafted: bool,
}

/// A nodule's size on the prior exam.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PriorSize {
    /// The prior exam's date, YYYY-MM-DD.
    pub study_date: String,
    /// Millimetres.
    pub long_axis: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_axis: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Measurements {
    pub long_axis: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_axis: Option<f64>,
    /// Solid component of a part-solid nodule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solid_long_axis: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solid_short_axis: Option<f64>,
    /// Only "mm" is accepted; reports print 毫米.
    pub unit: LengthUnit,
    /// How it was measured, e.g. "肺窗 WW=1500 WL=-600；像素间距 0.7毫米（PixelSpacing）".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LengthUnit {
    #[default]
    #[serde(rename = "mm")]
    Millimetre,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Patient {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// M, F, O or U (HL7 table 0001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Study {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    /// DICOM modality: CR, DX, CT…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GuidelineResult {
    /// "Lung-RADS v2022" or "Fleischner 2017".
    pub guideline: String,
    /// The category (Lung-RADS) or the table row (Fleischner).
    pub category: String,
    pub management: String,
    /// The rule that fired, printed as "▲ 依据：…".
    pub basis: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    #[default]
    Draft,
    Signed,
    Reviewed,
    Amended,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Signature {
    /// radiologist or department_head.
    pub role: String,
    pub name: String,
    /// RFC 3339.
    pub signed_at: String,
    /// SHA-256 of the signed content, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AiProvenance {
    pub model_name: String,
    pub model_version: String,
    /// RFC 3339.
    pub generated_at: String,
    /// e.g. "NVIDIA H200" or "CPU".
    pub hardware: String,
}

impl Report {
    /// The result status HL7 and FHIR export: final once a doctor signed.
    pub fn is_final(&self) -> bool {
        !matches!(self.status, ReportStatus::Draft)
    }
}
