//! What the pages read from the REST API (`/api/v1`), and the browser-side calls that read it. The server
//! renders the pages without data; they fetch once hydrated.

use serde::Deserialize;

pub use crate::studies::{InstanceSummary, SeriesDetail, StudyDetail, StudyList, StudySummary};

/// A window the server offers for an instance: the file's own, and on CT the chest presets.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct WindowChoice {
    pub key: String,
    pub name_zh: String,
    pub name_en: String,
    pub center: f64,
    pub width: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct InstanceDetail {
    pub id: i64,
    pub windows: Vec<WindowChoice>,
    /// The basis of every millimetre; None when the image has no pixel spacing.
    #[serde(default)]
    pub spacing: Option<SpacingInfo>,
    #[serde(default)]
    pub metadata: InstanceMetadata,
}

impl InstanceDetail {
    pub fn modality(&self) -> Option<&str> {
        self.metadata.modality.as_deref()
    }
}

/// The part of an instance's metadata the viewer reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct InstanceMetadata {
    pub modality: Option<String>,
}

/// Pixel spacing as the basis of millimetres: the numbers and where they came from (the caveat to print
/// follows from the source, in either language: `SpacingSource::caveat_zh`/`caveat_en`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SpacingInfo {
    pub row_mm: f64,
    pub col_mm: f64,
    pub source: measure::SpacingSource,
}

impl SpacingInfo {
    /// The spacing the measurement code takes.
    pub fn spacing(&self) -> measure::Spacing {
        measure::Spacing { row_mm: self.row_mm, col_mm: self.col_mm, source: self.source }
    }
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
    /// Boxes, timings, and for report drafts the `report` built from the answer.
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct History {
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct QuickPrompt {
    pub id: String,
    pub label: String,
    /// The button's label on the English page (the question itself stays Chinese: it is the prompt the
    /// model is tuned with).
    #[serde(default)]
    pub label_en: Option<String>,
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

#[cfg(feature = "hydrate")]
impl From<gloo_net::Error> for ApiError {
    fn from(e: gloo_net::Error) -> ApiError {
        ApiError::network(e)
    }
}

impl ApiError {
    /// What the page shows: the message in the interface language.
    pub fn text(&self) -> String {
        crate::i18n::choose(&self.message_zh, &self.message_en).clone()
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

/// The signed-in caller (GET /api/v1/auth/me).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Me {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub totp_enabled: bool,
    pub csrf_token: Option<String>,
}

impl Me {
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
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

/// POST a JSON body with the session's CSRF token; the response when its status is a success (callers read
/// the body they expect).
#[cfg(feature = "hydrate")]
pub async fn post(path: &str, body: &impl serde::Serialize) -> Result<gloo_net::http::Response, ApiError> {
    send(gloo_net::http::Request::post(path), body).await
}

/// PUT, as [`post`].
#[cfg(feature = "hydrate")]
pub async fn put(path: &str, body: &impl serde::Serialize) -> Result<gloo_net::http::Response, ApiError> {
    send(gloo_net::http::Request::put(path), body).await
}

/// DELETE with the session's CSRF token.
#[cfg(feature = "hydrate")]
pub async fn delete(path: &str) -> Result<(), ApiError> {
    let response = gloo_net::http::Request::delete(path)
        .header(CSRF_HEADER, &csrf_token().await?)
        .send()
        .await
        .map_err(ApiError::network)?;
    if !response.ok() {
        return Err(error_of(response).await);
    }
    Ok(())
}

/// POST, as [`post`], and read the JSON answer.
#[cfg(feature = "hydrate")]
pub async fn post_json<T: serde::de::DeserializeOwned>(
    path: &str,
    body: &impl serde::Serialize,
) -> Result<T, ApiError> {
    post(path, body).await?.json::<T>().await.map_err(ApiError::network)
}

#[cfg(feature = "hydrate")]
async fn send(
    request: gloo_net::http::RequestBuilder,
    body: &impl serde::Serialize,
) -> Result<gloo_net::http::Response, ApiError> {
    let response = request
        .header(CSRF_HEADER, &csrf_token().await?)
        .json(body)
        .map_err(ApiError::network)?
        .send()
        .await
        .map_err(ApiError::network)?;
    if !response.ok() {
        return Err(error_of(response).await);
    }
    Ok(response)
}

pub const CSRF_HEADER: &str = "X-CSRF-Token";

#[cfg(feature = "hydrate")]
thread_local! {
    static CSRF: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The session's CSRF token, asked for once per page load.
#[cfg(feature = "hydrate")]
pub async fn csrf_token() -> Result<String, ApiError> {
    if let Some(token) = CSRF.with(|c| c.borrow().clone()) {
        return Ok(token);
    }
    let me = get::<Me>("/api/v1/auth/me".into()).await?;
    let token = me.csrf_token.unwrap_or_default();
    CSRF.with(|c| *c.borrow_mut() = Some(token.clone()));
    Ok(token)
}

/// Sends the browser to the sign-in page, to come back here afterwards.
#[cfg(feature = "hydrate")]
pub fn go_to_login() {
    if let Some(window) = web_sys::window() {
        let here = window.location().pathname().unwrap_or_default();
        let _ = window.location().set_href(&format!("/login?next={}", js_sys::encode_uri_component(&here)));
    }
}

/// On the server the pages' resources never run (they are LocalResources); this keeps the ssr build whole.
#[cfg(not(feature = "hydrate"))]
pub async fn get<T>(_path: String) -> Result<T, ApiError> {
    std::future::pending().await
}

#[cfg(not(feature = "hydrate"))]
pub async fn delete(_path: &str) -> Result<(), ApiError> {
    std::future::pending().await
}

#[cfg(not(feature = "hydrate"))]
pub async fn post_json<T>(_path: &str, _body: &impl serde::Serialize) -> Result<T, ApiError> {
    std::future::pending().await
}

/// The error body of a failed response. A 401 means the session ended (idle timeout, signed out
/// elsewhere, account disabled): the page goes to the sign-in page.
#[cfg(feature = "hydrate")]
pub(crate) async fn error_of(response: gloo_net::http::Response) -> ApiError {
    let status = response.status();
    if status == 401 && !response.url().contains("/api/v1/auth/login") {
        go_to_login();
    }
    match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => ApiError {
            code: "http".into(),
            message_zh: format!("服务器返回 {status}"),
            message_en: format!("the server answered {status}"),
        },
    }
}

/// A query parameter's value, percent-encoded (UTF-8; letters, digits and `-_.~` as they are).
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `20251015` → `2025-10-15`; anything else as it is.
pub fn display_date(date: &Option<String>) -> String {
    date.as_deref().map_or_else(|| "—".into(), report::display_date)
}

/// An RFC 3339 timestamp (a signature's, an audit row's) in the browser's own time zone, to the second:
/// "2026-11-30 14:28:24". Anything the browser cannot read is shown as it is.
pub fn display_time(rfc3339: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        let t = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
        if !t.get_time().is_nan() {
            return format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.get_full_year(),
                t.get_month() + 1,
                t.get_date(),
                t.get_hours(),
                t.get_minutes(),
                t.get_seconds()
            );
        }
    }
    rfc3339.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_as_utf8() {
        assert_eq!(encode_query("P-0001_a.b~"), "P-0001_a.b~");
        assert_eq!(encode_query("王 &="), "%E7%8E%8B%20%26%3D");
    }
}
