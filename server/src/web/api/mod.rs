//! The integrators' REST API under /api/v1. The web app uses the same endpoints.

mod admin;
mod audit;
mod auth;
mod chat;
mod images;
mod measurements;
mod openapi;
mod reports;
mod studies;
mod templates;
mod uploads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

use crate::web::AppState;
use crate::web::error::AppError;

pub fn router(max_upload_bytes: u64) -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/password", post(auth::change_password))
        .route("/auth/totp/setup", post(auth::totp_setup))
        .route("/auth/totp/enable", post(auth::totp_enable))
        .route("/auth/totp/disable", post(auth::totp_disable))
        .route("/openapi.json", get(openapi::document))
        .route("/admin/users", get(admin::list_users).post(admin::add_user))
        .route("/admin/users/{id}/disable", post(admin::disable_user))
        .route("/admin/users/{id}/enable", post(admin::enable_user))
        .route("/admin/users/{id}/password", post(admin::set_password))
        .route("/admin/users/{id}/totp/reset", post(admin::reset_totp))
        .route("/admin/tokens", get(admin::list_tokens).post(admin::add_token))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/admin/dicom-peers", get(admin::list_peers).post(admin::put_peer))
        .route("/admin/dicom-peers/{ae_title}", delete(admin::remove_peer))
        .route("/audit", get(audit::export))
        .route("/audit/verify", get(audit::verify))
        .route(
            "/uploads",
            post(uploads::upload).layer(DefaultBodyLimit::max(usize::try_from(max_upload_bytes).unwrap_or(usize::MAX))),
        )
        .route("/studies", get(studies::list))
        .route("/studies/{id}", get(studies::detail))
        .route("/studies/{id}/triage", post(studies::decide_triage))
        .route("/studies/{id}/pacs-priors", get(studies::pacs_priors))
        .route("/studies/{id}/pacs-priors/retrieve", post(studies::retrieve_prior))
        .route("/studies/{id}/chat", get(chat::history).post(chat::chat))
        .route("/chat/prompts", get(chat::prompts))
        .route("/studies/{id}/measurements", get(measurements::list).post(measurements::create))
        .route("/measurements/{id}", delete(measurements::delete))
        .route("/studies/{id}/reports", get(reports::for_study).post(reports::create))
        .route("/reports/{id}", get(reports::show).put(reports::edit))
        .route("/reports/{id}/sign", post(reports::sign))
        .route("/reports/{id}/review", post(reports::review))
        .route("/reports/{id}/amend", post(reports::amend))
        .route("/reports/{id}/export", get(reports::export))
        .route("/templates", get(templates::list).post(templates::create))
        .route("/templates/{id}", put(templates::update).delete(templates::delete))
        .route("/deliveries", get(reports::deliveries))
        .route("/deliveries/{id}/retry", post(reports::retry_delivery))
        .route("/instances/{id}", get(images::instance))
        .route("/instances/{id}/file", get(images::original_file))
        .route("/instances/{id}/frames/{number}/image.png", get(images::render))
        .route("/instances/{id}/frames/{number}/values", get(images::values))
        .route("/instances/{id}/frames/{number}/nodule", post(images::nodule))
        // Unknown paths answer JSON, not an HTML page.
        .fallback(|| async { AppError::not_found("没有这个接口", "No such API endpoint") })
}

/// The response with what the audit row of its request should say besides the route and outcome.
fn noted(response: impl axum::response::IntoResponse, detail: String) -> axum::response::Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(crate::web::guard::AuditNote { detail: Some(detail), ..Default::default() });
    response
}
