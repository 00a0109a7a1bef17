//! The integrators' REST API under /api/v1. The web app uses the same endpoints.

mod chat;
mod images;
mod studies;
mod uploads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::error::AppError;
use crate::http::AppState;

pub fn router(max_upload_bytes: u64) -> Router<AppState> {
    Router::new()
        .route(
            "/uploads",
            post(uploads::upload).layer(DefaultBodyLimit::max(usize::try_from(max_upload_bytes).unwrap_or(usize::MAX))),
        )
        .route("/studies", get(studies::list))
        .route("/studies/{id}", get(studies::detail))
        .route("/studies/{id}/chat", get(chat::history).post(chat::chat))
        .route("/chat/prompts", get(chat::prompts))
        .route("/instances/{id}", get(images::instance))
        .route("/instances/{id}/file", get(images::original_file))
        .route("/instances/{id}/frames/{number}/image.png", get(images::render))
        .route("/instances/{id}/frames/{number}/values", get(images::values))
        .route("/instances/{id}/frames/{number}/nodule", post(images::nodule))
        // Unknown paths answer JSON, not an HTML page.
        .fallback(|| async { AppError::not_found("没有这个接口", "No such API endpoint") })
}
