//! The report model: the seed's JSON parses as it is, and the published JSON Schema is current.

use report::model::{LengthUnit, ReportStatus};
use report::{Report, json_schema};

/// The example report of the product description, verbatim.
const SEED_JSON: &str = r#"{ "exam_id": "CZ20240511-087", "report_summary": "右肺上叶尖段见一实性结节，大小约2.3×1.9cm，边缘呈分叶状伴毛刺，邻近胸膜牵拉，内见血管穿行...", "findings": [ { "location": "右肺上叶尖段", "feature": "实性结节", "measurements": {"long_axis": 23.4, "short_axis": 19.1, "unit": "mm"}, "density": "软组织密度(CT值约42HU)", "boundary": "分叶状伴毛刺" } ], "recommendation": "建议增强CT进一步评估，3个月后复查低剂量CT" }"#;

#[test]
fn the_seed_report_parses_as_it_is() {
    let report: Report = serde_json::from_str(SEED_JSON).unwrap();
    assert_eq!(report.exam_id, "CZ20240511-087");
    assert_eq!(report.status, ReportStatus::Draft);
    assert_eq!(report.version, 1);
    let m = report.findings[0].measurements.as_ref().unwrap();
    assert_eq!((m.long_axis, m.short_axis, m.unit), (23.4, Some(19.1), LengthUnit::Millimetre));
    assert_eq!(report.findings[0].boundary.as_deref(), Some("分叶状伴毛刺"));
    // And it round-trips.
    let again: Report = serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
    assert_eq!(again, report);
}

#[test]
fn units_other_than_millimetres_are_refused() {
    let json = SEED_JSON.replace(r#""unit": "mm""#, r#""unit": "cm""#);
    let err = serde_json::from_str::<Report>(&json).unwrap_err().to_string();
    assert!(err.contains("unknown variant `cm`"), "{err}");
}

/// report/report.schema.json is what integrators validate against; it must match the code.
#[test]
fn the_published_json_schema_matches_the_model() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/report.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    let published = std::fs::read_to_string(path).unwrap_or_default();
    if published != generated {
        std::fs::write(format!("{path}.new"), &generated).unwrap();
        panic!("{path} is out of date: review {path}.new and move it over the published file");
    }
    assert!(generated.contains("\"exam_id\"") && generated.contains("\"adjacent_structures\""));
}

/// report/draft.schema.json is the grammar the model drafts under; it must match the code.
#[test]
fn the_published_draft_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/draft.schema.json");
    let generated = serde_json::to_string_pretty(&report::draft::draft_schema()).unwrap() + "\n";
    let published = std::fs::read_to_string(path).unwrap_or_default();
    if published != generated {
        std::fs::write(format!("{path}.new"), &generated).unwrap();
        panic!("{path} is out of date: review {path}.new and move it over the published file");
    }
}
