//! The structured radiology report and its exports.
//!
//! [`model`] is the report as JSON (the seed's format is valid input as it is; everything added is
//! optional), published as `report/report.schema.json`. [`hl7`] renders HL7 v2.5 ORU^R01 and [`fhir`] a
//! FHIR R4 Bundle with a DiagnosticReport and its Observations, both from the same report.

pub mod draft;
pub mod fhir;
pub mod guideline;
pub mod hl7;
pub mod model;

pub use model::Report;

/// The label every AI output carries (DESIGN.md, rules of the house).
pub const AI_ADVISORY_LABEL: &str = "【AI辅助分析】结论仅供参考，须由执业医师复核确认";

/// The report's JSON Schema, as published in the repository.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema is JSON")
}
