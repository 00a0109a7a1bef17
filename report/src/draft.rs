//! What the model writes when it drafts a report ("生成结构化报告"): the clinical text only, in
//! fields whose lengths are bounded so that generation constrained to this schema always ends within
//! the token budget. Identity, measurements and provenance are not the model's to write: the server
//! merges them in from the study, the viewer's measurements and the model it ran ([`Draft::into_report`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{AiProvenance, Finding, Report};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Findings first, then the impression drawn from them (the order the model writes them in).
    #[schemars(length(max = 6))]
    pub findings: Vec<DraftFinding>,
    /// 印象 / impression.
    #[schemars(length(min = 1, max = 160))]
    pub report_summary: String,
    /// 建议 / recommendation.
    #[schemars(length(max = 160))]
    pub recommendation: String,
}

/// One finding in the five-part frame 部位-形态-密度-边界-邻近结构, plus a one-line description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftFinding {
    /// 部位, e.g. 右肺上叶尖段.
    #[schemars(length(min = 1, max = 30))]
    pub location: String,
    /// 形态: shape, lobulation, size in words.
    #[schemars(length(max = 60))]
    pub morphology: String,
    /// 密度: 实性 / 部分实性 / 磨玻璃, calcification, fat.
    #[schemars(length(max = 30))]
    pub density: String,
    /// 边界: 光整 / 分叶 / 毛刺.
    #[schemars(length(max = 30))]
    pub boundary: String,
    /// 邻近结构: pleura, bronchi, vessels.
    #[schemars(length(max = 60))]
    pub adjacent_structures: String,
    /// The finding in one sentence, as it reads in the report.
    #[schemars(length(min = 1, max = 120))]
    pub feature: String,
}

/// The constrained-generation schema (JSON Schema 2020-12, as schemars writes it).
pub fn draft_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Draft)).expect("a schema is JSON")
}

/// The most bytes (hence tokens: every token the grammar allows spells at least one byte) a compact
/// JSON document under [`draft_schema`] can take: every string at its longest with each character
/// escaped as `\uXXXX` (6 bytes), every list at its longest. Generation gets this budget, so a
/// constrained draft always completes.
pub fn max_tokens() -> usize {
    let schema = draft_schema();
    let definitions = schema.get("$defs").cloned().unwrap_or_default();
    fn bound(value: &serde_json::Value, definitions: &serde_json::Value) -> usize {
        if let Some(reference) = value.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            return bound(&definitions[name], definitions);
        }
        let limit = |key: &str| value.get(key).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        match value.get("type").and_then(|t| t.as_str()) {
            Some("string") => 2 + 6 * limit("maxLength"),
            Some("array") => 2 + limit("maxItems") * (1 + bound(&value["items"], definitions)),
            Some("object") => {
                let properties = value["properties"].as_object().cloned().unwrap_or_default();
                2 + properties.iter().map(|(key, v)| key.len() + 4 + bound(v, definitions)).sum::<usize>()
            }
            // The draft has no other types (a test checks it).
            _ => 16,
        }
    }
    bound(&schema, &definitions)
}

impl Draft {
    /// The full report this draft starts: every finding marked as AI-drafted, status draft, the
    /// provenance every AI output carries. Empty optional text stays out.
    pub fn into_report(self, exam_id: String, ai: AiProvenance) -> Report {
        let some = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
        Report {
            exam_id,
            report_summary: self.report_summary.trim().to_string(),
            findings: self
                .findings
                .into_iter()
                .map(|f| Finding {
                    location: f.location.trim().to_string(),
                    feature: f.feature.trim().to_string(),
                    morphology: some(f.morphology),
                    density: some(f.density),
                    boundary: some(f.boundary),
                    adjacent_structures: some(f.adjacent_structures),
                    ai_drafted: true,
                    ..Finding::default()
                })
                .collect(),
            recommendation: self.recommendation.trim().to_string(),
            ai: Some(ai),
            version: 1,
            ..Report::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_and_list_of_the_draft_schema_is_bounded() {
        // Constrained generation ends only if the grammar does: nothing unbounded may be in it.
        fn check(value: &serde_json::Value, path: &str) {
            match value.get("type").and_then(|t| t.as_str()) {
                Some("string") => assert!(value.get("maxLength").is_some(), "{path} has no maxLength"),
                Some("array") => assert!(value.get("maxItems").is_some(), "{path} has no maxItems"),
                Some("number" | "integer") => panic!("{path}: numbers are the viewer's, not the model's"),
                _ => {}
            }
            if let Some(object) = value.as_object() {
                for (key, child) in object {
                    check(child, &format!("{path}/{key}"));
                }
            }
        }
        check(&draft_schema(), "");
    }

    #[test]
    fn the_token_budget_covers_the_longest_draft() {
        let longest = Draft {
            findings: vec![
                DraftFinding {
                    location: "\u{1}".repeat(30),
                    morphology: "\u{1}".repeat(60),
                    density: "\u{1}".repeat(30),
                    boundary: "\u{1}".repeat(30),
                    adjacent_structures: "\u{1}".repeat(60),
                    feature: "\u{1}".repeat(120),
                };
                6
            ],
            report_summary: "\u{1}".repeat(160),
            recommendation: "\u{1}".repeat(160),
        };
        // Control characters are written as \u0001: the longest a character can be.
        let bytes = serde_json::to_string(&longest).unwrap().len();
        assert!(bytes <= max_tokens(), "{bytes} > {}", max_tokens());
        assert!(max_tokens() < 20_000, "{}", max_tokens());
    }

    #[test]
    fn a_draft_becomes_a_draft_report_marked_as_ai() {
        let draft: Draft = serde_json::from_str(
            r#"{"report_summary":"右肺上叶结节","findings":[{"location":"右肺上叶","morphology":"类圆形","density":"实性",
                "boundary":"毛刺","adjacent_structures":"","feature":"右肺上叶见实性结节，边缘毛刺"}],"recommendation":"建议随访"}"#,
        )
        .unwrap();
        let ai = AiProvenance {
            model_name: "tiny-a".into(),
            model_version: "test".into(),
            generated_at: "2026-11-30T00:00:00Z".into(),
            hardware: "cpu".into(),
        };
        let report = draft.into_report("ACC1".into(), ai);
        assert_eq!(report.findings[0].density.as_deref(), Some("实性"));
        assert_eq!(report.findings[0].adjacent_structures, None);
        assert!(report.findings[0].ai_drafted);
        assert!(!report.is_final());
        assert_eq!(report.version, 1);
        assert!(report.ai.is_some());
    }
}
