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

/// A DICOM date (YYYYMMDD) as people read it, 1958-03-12; anything else as it is. The PDF, the page and
/// the model's prompt all print dates through this.
pub fn display_date(dicom_date: &str) -> String {
    let d = dicom_date.trim();
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        d.to_string()
    }
}

/// The report's JSON Schema, as published in the repository.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema is JSON")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dicom_dates_read_as_iso_and_the_rest_stays() {
        assert_eq!(super::display_date("19580312"), "1958-03-12");
        assert_eq!(super::display_date(" 20261020 "), "2026-10-20");
        assert_eq!(super::display_date("2026-10-20"), "2026-10-20");
        assert_eq!(super::display_date("2026"), "2026");
    }
}
