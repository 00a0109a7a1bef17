//! The error of domain operations that a caller can act on: what was not found or not acceptable, said in
//! Chinese and English, or an internal failure. `web::error` maps each kind to its HTTP status; the
//! domain itself knows nothing of HTTP.

use crate::store::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The thing asked for does not exist (404).
    #[error("not found: {en}")]
    NotFound { zh: String, en: String },
    /// The request is malformed or contradicts itself (400).
    #[error("invalid: {en}")]
    Invalid { zh: String, en: String },
    /// Well-formed, but this input cannot be processed, with its own code (422): a shape the image
    /// cannot carry, a click where no nodule grows.
    #[error("unprocessable ({code}): {en}")]
    Unprocessable { code: &'static str, zh: String, en: String },
    /// The caller may do this in general, but not to this thing: somebody else's (403 `not_owner`).
    #[error("not yours: {en}")]
    NotYours { zh: String, en: String },
    /// Allowed, but not from here: only at the server's console (403 `console_required`).
    #[error("console only: {en}")]
    ConsoleOnly { zh: String, en: String },
    /// A part that this needs is missing (503): no model configured, or it failed to load.
    #[error("unavailable: {en}")]
    Unavailable { zh: String, en: String },
    /// There, but cannot take this now (503 with Retry-After): model loading, queue full.
    #[error("busy ({code}): {en}")]
    Busy { code: &'static str, zh: String, en: String, retry_after_s: u64 },
    /// This caller has as much of this in progress as one caller may (429 with Retry-After): the service
    /// has room, but not for one caller's burst.
    #[error("too many ({code}): {en}")]
    TooMany { code: &'static str, zh: String, en: String, retry_after_s: u64 },
    /// A file the decoder refuses (413 / 415 / 422 by its code).
    #[error(transparent)]
    Imaging(#[from] imaging::ImagingError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl DomainError {
    pub fn not_found(zh: impl Into<String>, en: impl Into<String>) -> DomainError {
        DomainError::NotFound { zh: zh.into(), en: en.into() }
    }

    pub fn invalid(zh: impl Into<String>, en: impl Into<String>) -> DomainError {
        DomainError::Invalid { zh: zh.into(), en: en.into() }
    }
}

impl From<DbError> for DomainError {
    fn from(e: DbError) -> DomainError {
        DomainError::Internal(e.into())
    }
}

impl From<tokio::task::JoinError> for DomainError {
    fn from(e: tokio::task::JoinError) -> DomainError {
        DomainError::Internal(e.into())
    }
}
