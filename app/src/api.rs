//! What the pages read from the REST API (`/api/v1`), and the browser-side calls that read it. The server
//! renders the pages without data; they fetch once hydrated.

use serde::Deserialize;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StudyList {
    pub studies: Vec<StudySummary>,
    pub total: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StudySummary {
    pub id: i64,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_sex: Option<String>,
    pub accession_number: Option<String>,
    pub study_date: Option<String>,
    pub description: Option<String>,
    pub status: String,
    #[serde(default)]
    pub modalities: Vec<String>,
    pub instance_count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StudyDetail {
    #[serde(flatten)]
    pub summary: StudySummary,
    pub series: Vec<SeriesDetail>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SeriesDetail {
    pub id: i64,
    pub modality: Option<String>,
    pub description: Option<String>,
    pub instances: Vec<InstanceSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct InstanceSummary {
    pub id: i64,
    pub rows: i64,
    pub columns: i64,
    pub frames: i64,
}

impl StudyDetail {
    /// The image the study page shows and asks about first.
    pub fn first_instance(&self) -> Option<&InstanceSummary> {
        self.series.iter().flat_map(|s| s.instances.iter()).next()
    }
}

/// A window the server offers for an instance: the file's own, and on CT the chest presets.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct WindowChoice {
    pub key: String,
    pub name_zh: String,
    pub center: f64,
    pub width: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct InstanceDetail {
    pub id: i64,
    pub windows: Vec<WindowChoice>,
}

/// A stored chat message (GET /api/v1/studies/{id}/chat).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Message {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub mode: String,
    pub stop: Option<String>,
    pub model: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct History {
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct QuickPrompt {
    pub id: String,
    pub label: String,
    pub text: String,
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Prompts {
    pub version: String,
    pub quick: Vec<QuickPrompt>,
}

/// The API's error body: `{"error": {"code", "message_zh", "message_en"}}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
}

#[cfg(feature = "hydrate")]
#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

impl ApiError {
    /// What the page shows: Chinese, then English.
    pub fn text(&self) -> String {
        format!("{} / {}", self.message_zh, self.message_en)
    }

    #[cfg(feature = "hydrate")]
    fn network(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            code: "network".into(),
            message_zh: "无法连接服务器".into(),
            message_en: format!("cannot reach the server ({e})"),
        }
    }
}

/// GET a JSON document; an error status becomes the API's bilingual message.
#[cfg(feature = "hydrate")]
pub async fn get<T: serde::de::DeserializeOwned>(path: String) -> Result<T, ApiError> {
    let response = gloo_net::http::Request::get(&path).send().await.map_err(ApiError::network)?;
    if !response.ok() {
        return Err(error_of(response).await);
    }
    response.json::<T>().await.map_err(ApiError::network)
}

/// On the server the pages' resources never run (they are LocalResources); this keeps the ssr build whole.
#[cfg(not(feature = "hydrate"))]
pub async fn get<T>(_path: String) -> Result<T, ApiError> {
    std::future::pending().await
}

#[cfg(feature = "hydrate")]
pub(crate) async fn error_of(response: gloo_net::http::Response) -> ApiError {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => ApiError {
            code: "http".into(),
            message_zh: format!("服务器返回 {status}"),
            message_en: format!("the server answered {status}"),
        },
    }
}

/// `20251015` → `2025-10-15`; anything else as it is.
pub fn display_date(date: &Option<String>) -> String {
    match date.as_deref() {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
        }
        Some(d) => d.to_string(),
        None => "—".into(),
    }
}
