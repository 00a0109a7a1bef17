//! HL7 v2.5 ORU^R01: the report as results of one order, for the hospital information system.
//!
//! MSH (UTF-8 declared in MSH-18 as "UNICODE UTF-8"), PID, OBR, then OBX segments: the summary (FT),
//! each finding as text (TX) with its axes as numbers (NM, unit mm^毫米^UCUM) under the finding's sub-id,
//! guideline results, the recommendation and the AI label. Segments end with CR; delimiters inside
//! values are escaped (\F\ \S\ \T\ \R\ \E\), line breaks become \.br\.

use crate::AI_ADVISORY_LABEL;
use crate::model::Report;

/// Who sends and receives, and what identifies this message.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-10, unique per message.
    pub control_id: String,
    /// MSH-7, YYYYMMDDHHMMSS.
    pub timestamp: String,
}

/// HL7's explicit null: the field is known to have no value.
const NULL: &str = "\"\"";

/// Escapes a value for a field: the escape character first, then the delimiters (HL7 v2.5 §2.7).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\E\\"),
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\r' => {}
            '\n' => out.push_str("\\.br\\"),
            c => out.push(c),
        }
    }
    out
}

/// "2024-05-11" → "20240511"; anything else is dropped rather than sent malformed.
fn hl7_date(date: &str) -> String {
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 8 { digits[..8].to_string() } else { String::new() }
}

fn number(x: f64) -> String {
    // Shortest form that round-trips: 23.4, not 23.399999999999999.
    let s = format!("{x}");
    if s.contains('e') { format!("{x:.3}") } else { s }
}

/// OBX segments, numbered in order, all with the report's result status (OBX-11).
struct Obx {
    segments: Vec<String>,
    status: &'static str,
}

impl Obx {
    fn push(&mut self, value_type: &str, code: &str, text: &str, sub_id: &str, value: &str, units: &str) {
        let set_id = self.segments.len() + 1;
        let status = self.status;
        self.segments
            .push(format!("OBX|{set_id}|{value_type}|{code}^{}^L|{sub_id}|{value}|{units}|||||{status}", escape(text)));
    }
}

/// The ORU^R01 message, segments separated by CR.
pub fn render(report: &Report, envelope: &Envelope) -> String {
    let status = if report.is_final() { "F" } else { "P" };
    let msh = format!(
        "MSH|^~\\&|MEDGEMMA-X|{}|{}|{}|{}||ORU^R01^ORU_R01|{}|P|2.5|||||CHN|UNICODE UTF-8",
        escape(&envelope.sending_facility),
        escape(&envelope.receiving_application),
        escape(&envelope.receiving_facility),
        envelope.timestamp,
        escape(&envelope.control_id)
    );
    // PID-3 (identifier) and PID-5 (name) are required: unknown ones are sent as HL7's explicit null `""`
    // (a JPEG upload may have no name; a report without a patient block has neither).
    let known = |v: &str| if v.is_empty() { NULL.to_string() } else { escape(v) };
    let pid = match &report.patient {
        Some(p) => format!(
            "PID|1||{}^^^^MR||{}||{}|{}",
            known(&p.id),
            known(p.name.as_deref().unwrap_or("")),
            p.birth_date.as_deref().map(hl7_date).unwrap_or_default(),
            escape(p.sex.as_deref().unwrap_or(""))
        ),
        None => format!("PID|1||{NULL}||{NULL}"),
    };
    let study = report.study.as_ref();
    let study_date = study.and_then(|s| s.study_date.as_deref()).map(hl7_date).unwrap_or_default();
    let service = study.and_then(|s| s.description.as_deref()).unwrap_or("胸部影像");
    let service_code = study.and_then(|s| s.modality.as_deref()).unwrap_or("IMG");
    let accession = study.and_then(|s| s.accession_number.as_deref()).unwrap_or("");
    let obr = format!(
        "OBR|1|{}|{}|{}^{}^L|||{study_date}|||||||||||||||{}|||{status}",
        escape(accession),
        escape(&report.exam_id),
        escape(service_code),
        escape(service),
        envelope.timestamp
    );

    let mut obx = Obx { segments: Vec::new(), status };
    if report.ai.is_some() {
        obx.push("TX", "AI_LABEL", "AI声明", "", &escape(AI_ADVISORY_LABEL), "");
    }
    obx.push("FT", "SUMMARY", "报告摘要", "", &escape(&report.report_summary), "");
    for (i, f) in report.findings.iter().enumerate() {
        let sub_id = (i + 1).to_string();
        let parts: Vec<&str> = [
            Some(f.location.as_str()),
            f.morphology.as_deref(),
            Some(f.feature.as_str()),
            f.density.as_deref(),
            f.boundary.as_deref(),
            f.adjacent_structures.as_deref(),
            f.change.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        obx.push("TX", "FINDING", "所见", &sub_id, &escape(&parts.join("，")), "");
        if let Some(m) = &f.measurements {
            let mm = "mm^毫米^UCUM";
            obx.push("NM", "LONG_AXIS", "长径", &sub_id, &number(m.long_axis), mm);
            for (code, text, value) in [
                ("SHORT_AXIS", "短径", m.short_axis),
                ("SOLID_LONG_AXIS", "实性成分长径", m.solid_long_axis),
                ("SOLID_SHORT_AXIS", "实性成分短径", m.solid_short_axis),
            ] {
                if let Some(v) = value {
                    obx.push("NM", code, text, &sub_id, &number(v), mm);
                }
            }
        }
    }
    for g in &report.guideline_results {
        let text = format!("{} {}：{}；▲ 依据：{}", g.guideline, g.category, g.management, g.basis);
        obx.push("TX", "GUIDELINE", "指南分类", "", &escape(&text), "");
    }
    if !report.recommendation.is_empty() {
        obx.push("FT", "RECOMMENDATION", "建议", "", &escape(&report.recommendation), "");
    }
    if let Some(ai) = &report.ai {
        let text = format!(
            "生成时间 {} | 模型版本 {} {} | 硬件环境 {}",
            ai.generated_at, ai.model_name, ai.model_version, ai.hardware
        );
        obx.push("TX", "AI_PROVENANCE", "AI来源", "", &escape(&text), "");
    }

    let mut segments = vec![msh, pid, obr];
    segments.extend(obx.segments);
    segments.join("\r") + "\r"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_escaped_escape_character_first() {
        assert_eq!(escape(r"a|b^c&d~e\f"), r"a\F\b\S\c\T\d\R\e\E\f");
        assert_eq!(escape("两行\n文字"), r"两行\.br\文字");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(23.4), "23.4");
        assert_eq!(number(19.0), "19");
    }
}
