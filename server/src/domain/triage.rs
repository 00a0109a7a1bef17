//! Triage: a short constrained question asked of every arriving study (with its pre-read), whose answer
//! orders the worklist — urgent findings first — and marks it, labelled as the AI's, with the model's
//! basis, until a radiologist confirms or dismisses the flag (audited). The question and its schema are
//! versioned with the other prompts (server/prompts/triage.zh.md, triage.schema.json).

use serde::Deserialize;

use crate::domain::DomainError;
use crate::domain::chat;
use crate::store::db::Pool;
use crate::store::triage::{self as rows, NewTriage};

/// The JSON Schema the model's answer is generated under.
pub fn schema() -> serde_json::Value {
    serde_json::from_str(include_str!("../../prompts/triage.schema.json")).expect("triage.schema.json parses")
}

/// Enough for every field of the schema (the basis is at most 120 characters).
pub const MAX_TOKENS: usize = 512;

/// The model's answer, as the schema makes it write.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriageAnswer {
    pub pneumothorax: bool,
    pub large_pleural_effusion: bool,
    pub mass_or_nodule_8mm: bool,
    pub consolidation: bool,
    pub cardiomegaly: bool,
    pub normal: bool,
    pub basis: String,
}

impl TriageAnswer {
    pub fn parse(text: &str) -> Result<TriageAnswer, serde_json::Error> {
        serde_json::from_str(text.trim())
    }

    /// The findings flagged, in the schema's order (none when the model found nothing).
    pub fn flags(&self) -> Vec<&'static str> {
        [
            (self.pneumothorax, "pneumothorax"),
            (self.large_pleural_effusion, "large_pleural_effusion"),
            (self.mass_or_nodule_8mm, "mass_or_nodule_8mm"),
            (self.consolidation, "consolidation"),
            (self.cardiomegaly, "cardiomegaly"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    /// A finding that cannot wait for its turn in the worklist.
    pub fn urgent(&self) -> bool {
        self.pneumothorax || self.large_pleural_effusion
    }
}

/// Stores a study's triage from the model's answer text.
pub async fn record(db: &Pool, study_id: i64, text: &str, model: &str) -> Result<TriageAnswer, DomainError> {
    let answer = TriageAnswer::parse(text)
        .map_err(|e| DomainError::invalid("AI分诊答案无法解析", format!("the triage answer does not parse: {e}")))?;
    let flags = answer.flags().join(",");
    rows::store(
        db,
        &NewTriage {
            study_id,
            answer: text.trim(),
            flags: &flags,
            urgent: answer.urgent(),
            basis: &answer.basis,
            model,
            prompt_version: chat::PROMPT_VERSION,
        },
    )
    .await?;
    Ok(answer)
}

/// A radiologist's decision on the flag.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The finding is there: the mark stays, shown as confirmed.
    Confirmed,
    /// It is not: the study goes back to its place in the worklist.
    Dismissed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Confirmed => "confirmed",
            Decision::Dismissed => "dismissed",
        }
    }
}

pub async fn decide(db: &Pool, study_id: i64, decision: Decision, by: &str) -> Result<(), DomainError> {
    if rows::decide(db, study_id, decision.as_str(), by).await? {
        Ok(())
    } else {
        Err(DomainError::not_found("该检查没有AI分诊结果", "The study has no AI triage"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_urgency_follow_the_answer() {
        let answer = TriageAnswer::parse(
            r#"{"pneumothorax": false, "large_pleural_effusion": true, "mass_or_nodule_8mm": true,
                "consolidation": false, "cardiomegaly": false, "normal": false, "basis": "右侧肋膈角消失"}"#,
        )
        .unwrap();
        assert_eq!(answer.flags(), ["large_pleural_effusion", "mass_or_nodule_8mm"]);
        assert!(answer.urgent());
        let nodule = TriageAnswer { large_pleural_effusion: false, ..answer };
        assert!(!nodule.urgent(), "a nodule is flagged, not urgent");
        assert!(TriageAnswer::parse(r#"{"pneumothorax": true}"#).is_err(), "every field is required");
    }

    /// The schema the model is held to and the struct the answer is read into name the same fields.
    #[test]
    fn the_schema_and_the_answer_agree() {
        let schema = schema();
        let mut required: Vec<&str> =
            schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        required.sort();
        let mut properties: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        properties.sort();
        assert_eq!(required, properties);
        let sample: serde_json::Map<String, serde_json::Value> = required
            .iter()
            .map(|k| (k.to_string(), if *k == "basis" { serde_json::json!("依据") } else { serde_json::json!(true) }))
            .collect();
        let answer = TriageAnswer::parse(&serde_json::Value::Object(sample).to_string()).unwrap();
        assert_eq!(answer.flags().len(), 5);
    }
}
