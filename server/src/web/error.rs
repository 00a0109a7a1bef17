//! The one error type of the HTTP API. Clients get a code and a message in Chinese and English;
//! internal details are logged once here and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::DomainError;
use crate::store::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found: {en}")]
    NotFound { zh: String, en: String },
    #[error("bad request: {en}")]
    BadRequest { zh: String, en: String },
    #[error("unavailable: {en}")]
    Unavailable { zh: String, en: String },
    /// Input refused for a reason with its own code and status (an image over a limit, a corrupt file).
    #[error("rejected ({code}): {en}")]
    Rejected { status: StatusCode, code: &'static str, zh: String, en: String },
    /// 503 with Retry-After: the service is there but cannot take this now (model loading, queue full).
    #[error("busy ({code}): {en}")]
    Busy { code: &'static str, zh: String, en: String, retry_after_s: u64 },
    /// 429 with Retry-After: this caller has as much in progress as one caller may.
    #[error("too many ({code}): {en}")]
    TooMany { code: &'static str, zh: String, en: String, retry_after_s: u64 },
    /// 401: no session and no valid token.
    #[error("unauthorized")]
    Unauthorized,
    /// 401 from the sign-in itself, with the reason as its code (wrong password, one-time code missing or
    /// wrong), so the sign-in page can say which.
    #[error("sign-in refused ({code}): {en}")]
    SignInRefused { code: &'static str, zh: String, en: String },
    /// 403: signed in, but not allowed (role, scope, CSRF).
    #[error("forbidden ({code}): {en}")]
    Forbidden { code: &'static str, zh: String, en: String },
    /// 429 with Retry-After: too many failed sign-ins.
    #[error("throttled: retry after {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What the client sees: `{"error": {"code", "message_zh", "message_en"}}`.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message_zh: &'a str,
    message_en: &'a str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, zh, en) = match &self {
            Self::NotFound { zh, en } => (StatusCode::NOT_FOUND, "not_found", zh.as_str(), en.as_str()),
            Self::BadRequest { zh, en } => (StatusCode::BAD_REQUEST, "bad_request", zh.as_str(), en.as_str()),
            Self::Unavailable { zh, en } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", zh.as_str(), en.as_str()),
            Self::Rejected { status, code, zh, en } => (*status, *code, zh.as_str(), en.as_str()),
            Self::Busy { code, zh, en, .. } => (StatusCode::SERVICE_UNAVAILABLE, *code, zh.as_str(), en.as_str()),
            Self::TooMany { code, zh, en, .. } => (StatusCode::TOO_MANY_REQUESTS, *code, zh.as_str(), en.as_str()),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "请先登录（或提供有效的 API 令牌）",
                "Sign in first (or send a valid API token)",
            ),
            Self::SignInRefused { code, zh, en } => (StatusCode::UNAUTHORIZED, *code, zh.as_str(), en.as_str()),
            Self::Forbidden { code, zh, en } => (StatusCode::FORBIDDEN, *code, zh.as_str(), en.as_str()),
            Self::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "登录失败次数过多，请稍后再试",
                "Too many failed sign-ins; try again later",
            ),
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "服务器内部错误，已记录日志",
                    "Internal server error; it has been logged",
                )
            }
        };
        let body = ErrorBody { error: ErrorDetail { code, message_zh: zh, message_en: en } };
        let mut response = (status, Json(body)).into_response();
        if let Self::Busy { retry_after_s, .. }
        | Self::TooMany { retry_after_s, .. }
        | Self::Throttled { retry_after_s } = &self
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, (*retry_after_s).into());
        }
        if let Self::Unauthorized = &self {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl AppError {
    pub fn bad_request(zh: impl Into<String>, en: impl Into<String>) -> AppError {
        AppError::BadRequest { zh: zh.into(), en: en.into() }
    }

    pub fn not_found(zh: impl Into<String>, en: impl Into<String>) -> AppError {
        AppError::NotFound { zh: zh.into(), en: en.into() }
    }
}

impl From<imaging::ImagingError> for AppError {
    fn from(e: imaging::ImagingError) -> AppError {
        AppError::Rejected { status: imaging_status(&e), code: e.code(), zh: e.message_zh(), en: e.message_en() }
    }
}

pub fn imaging_status(e: &imaging::ImagingError) -> StatusCode {
    imaging_status_of_code(e.code())
}

/// 413 for sizes over a limit, 415 for formats we do not read, 422 for files that are broken.
pub fn imaging_status_of_code(code: &str) -> StatusCode {
    match code {
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unknown_format" | "unsupported" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        // A study or series UID that belongs to another patient (domain::ingest).
        "uid_conflict" => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> AppError {
        AppError::Internal(e.into())
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> AppError {
        AppError::Internal(e.into())
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> AppError {
        match e {
            DomainError::NotFound { zh, en } => AppError::NotFound { zh, en },
            DomainError::Invalid { zh, en } => AppError::BadRequest { zh, en },
            DomainError::Unprocessable { code, zh, en } => {
                AppError::Rejected { status: StatusCode::UNPROCESSABLE_ENTITY, code, zh, en }
            }
            DomainError::NotYours { zh, en } => AppError::Forbidden { code: "not_owner", zh, en },
            DomainError::ConsoleOnly { zh, en } => AppError::Forbidden { code: "console_required", zh, en },
            DomainError::Unavailable { zh, en } => AppError::Unavailable { zh, en },
            DomainError::Busy { code, zh, en, retry_after_s } => AppError::Busy { code, zh, en, retry_after_s },
            DomainError::TooMany { code, zh, en, retry_after_s } => AppError::TooMany { code, zh, en, retry_after_s },
            DomainError::Imaging(e) => e.into(),
            DomainError::Internal(e) => AppError::Internal(e),
        }
    }
}
