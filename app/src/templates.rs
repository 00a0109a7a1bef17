//! Report templates and phrases as `/api/v1/templates` sends and takes them: the server's domain checks
//! and stores them, the report panel inserts them (one declaration for both sides).

use report::model::Finding;
use serde::{Deserialize, Serialize};

/// Whose a template is: the department's (every reader sees it; a department head edits it) or one
/// reader's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateScope {
    Site,
    Personal,
}

impl TemplateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateScope::Site => "site",
            TemplateScope::Personal => "personal",
        }
    }

    pub fn parse(name: &str) -> Option<TemplateScope> {
        [TemplateScope::Site, TemplateScope::Personal].into_iter().find(|s| s.as_str() == name)
    }
}

/// What a template puts into a report. A phrase is a template with only some of these: inserting appends
/// each non-empty part to what the report holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateContent {
    /// The short code typed to insert it: 1 to 8 lower-case letters or digits (zc for 正常胸片).
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub report_summary: String,
    /// Findings in the five-part frame; the location is often left for the reader to fill in.
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub recommendation: String,
}

/// A stored template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: i64,
    pub scope: TemplateScope,
    #[serde(flatten)]
    pub content: TemplateContent,
    pub updated_by: String,
    pub updated_at: String,
}

/// `GET /api/v1/templates`: the caller's own templates first, then the department's, each by code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

impl TemplateList {
    /// The template a typed code names (the caller's own before the department's of the same code).
    pub fn by_code(&self, code: &str) -> Option<&Template> {
        let code = code.trim().to_lowercase();
        self.templates.iter().find(|t| t.content.code == code)
    }
}

/// `POST /api/v1/templates` and `PUT /api/v1/templates/{id}`: the content and, when adding, whose
/// (personal unless said). Unknown fields are refused: a misspelt one would otherwise be lost quietly. The
/// content's fields are spelt out rather than flattened from [`TemplateContent`]: serde cannot refuse
/// unknown fields through a flattened struct.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEdit {
    #[serde(default = "personal")]
    pub scope: TemplateScope,
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub report_summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub recommendation: String,
}

impl TemplateEdit {
    pub fn content(self) -> TemplateContent {
        TemplateContent {
            code: self.code.trim().to_lowercase(),
            name: self.name.trim().to_string(),
            report_summary: self.report_summary,
            findings: self.findings,
            recommendation: self.recommendation,
        }
    }
}

fn personal() -> TemplateScope {
    TemplateScope::Personal
}
