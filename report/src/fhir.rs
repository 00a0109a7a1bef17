//! FHIR R4 (4.0.1): a `collection` Bundle holding the Patient, the DiagnosticReport and one Observation
//! per finding (axes as components in UCUM millimetres), per guideline result and for the
//! recommendation. The DiagnosticReport's conclusion starts with the AI label when the model drafted it.

use serde_json::{Value, json};

use crate::AI_ADVISORY_LABEL;
use crate::model::Report;

const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";

fn gender(sex: &str) -> &'static str {
    match sex {
        "M" | "m" | "男" => "male",
        "F" | "f" | "女" => "female",
        "O" | "o" => "other",
        _ => "unknown",
    }
}

fn mm(value: f64, text: &str) -> Value {
    json!({
        "code": {"text": text},
        "valueQuantity": {"value": value, "unit": "mm", "system": UCUM, "code": "mm"}
    })
}

/// The Bundle as JSON.
pub fn render(report: &Report) -> Value {
    let status = if report.is_final() { "final" } else { "preliminary" };
    let mut entries = Vec::new();
    let subject = report.patient.as_ref().map(|p| {
        let mut patient = json!({
            "resourceType": "Patient",
            "id": "patient",
            "identifier": [{"value": p.id}],
        });
        if let Some(name) = &p.name {
            patient["name"] = json!([{"text": name}]);
        }
        if let Some(sex) = &p.sex {
            patient["gender"] = json!(gender(sex));
        }
        if let Some(birth) = &p.birth_date {
            // FHIR dates are YYYY-MM-DD; the server's come from DICOM as YYYYMMDD.
            patient["birthDate"] = json!(crate::display_date(birth));
        }
        entries.push(json!({"resource": patient}));
        json!({"reference": "Patient/patient"})
    });

    let mut observations = Vec::new();
    for (i, f) in report.findings.iter().enumerate() {
        let parts: Vec<&str> = [
            f.morphology.as_deref(),
            f.density.as_deref(),
            f.boundary.as_deref(),
            f.adjacent_structures.as_deref(),
            f.change.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        let mut obs = json!({
            "resourceType": "Observation",
            "id": format!("finding-{}", i + 1),
            "status": status,
            "code": {"text": format!("{} {}", f.location, f.feature)},
            "bodySite": {"text": f.location},
            "valueString": if parts.is_empty() { f.feature.clone() } else { format!("{}，{}", f.feature, parts.join("，")) },
        });
        if let Some(m) = &f.measurements {
            let mut components = vec![mm(m.long_axis, "长径 long axis")];
            for (value, text) in [
                (m.short_axis, "短径 short axis"),
                (m.solid_long_axis, "实性成分长径 solid component long axis"),
                (m.solid_short_axis, "实性成分短径 solid component short axis"),
            ] {
                if let Some(v) = value {
                    components.push(mm(v, text));
                }
            }
            obs["component"] = Value::Array(components);
            if let Some(basis) = &m.basis {
                obs["note"] = json!([{"text": format!("测量依据：{basis}")}]);
            }
        }
        observations.push(obs);
    }
    for (i, g) in report.guideline_results.iter().enumerate() {
        observations.push(json!({
            "resourceType": "Observation",
            "id": format!("guideline-{}", i + 1),
            "status": status,
            "code": {"text": g.guideline},
            "valueString": format!("{} {}", g.guideline, g.category),
            "note": [{"text": format!("{}；▲ 依据：{}", g.management, g.basis)}],
        }));
    }
    if !report.recommendation.is_empty() {
        observations.push(json!({
            "resourceType": "Observation",
            "id": "recommendation",
            "status": status,
            "code": {"text": "建议 recommendation"},
            "valueString": report.recommendation,
        }));
    }

    let conclusion = match &report.ai {
        Some(ai) => format!(
            "{AI_ADVISORY_LABEL}\n{}\n（生成时间 {} | 模型版本 {} {} | 硬件环境 {}）",
            report.report_summary, ai.generated_at, ai.model_name, ai.model_version, ai.hardware
        ),
        None => report.report_summary.clone(),
    };
    let mut diagnostic = json!({
        "resourceType": "DiagnosticReport",
        "id": "report",
        "identifier": [{"value": report.exam_id}],
        "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}]},
        "result": observations.iter().map(|o| json!({"reference": format!("Observation/{}", o["id"].as_str().unwrap_or_default())})).collect::<Vec<_>>(),
        "conclusion": conclusion,
    });
    if let Some(subject) = &subject {
        diagnostic["subject"] = subject.clone();
        for o in &mut observations {
            o["subject"] = subject.clone();
        }
    }
    if let Some(date) = report.study.as_ref().and_then(|s| s.study_date.as_deref()) {
        diagnostic["effectiveDateTime"] = json!(crate::display_date(date));
    }
    entries.push(json!({"resource": diagnostic}));
    entries.extend(observations.into_iter().map(|o| json!({"resource": o})));
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}
