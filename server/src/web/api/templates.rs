//! Report templates and phrases (`/api/v1/templates`): the rules are domain::templates.

use app::templates::{Template, TemplateEdit, TemplateList};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};

use super::noted;
use crate::domain::auth::Principal;
use crate::domain::templates;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath};

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<TemplateList>, AppError> {
    Ok(Json(templates::list(&state.db, &caller).await?))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiJson(body): ApiJson<TemplateEdit>,
) -> Result<Response, AppError> {
    let created = templates::create(&state.db, &caller, body).await?;
    let detail = changed("add", &created);
    Ok(noted((StatusCode::CREATED, Json(created)), detail))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TemplateEdit>,
) -> Result<Response, AppError> {
    let updated = templates::update(&state.db, &caller, id, body).await?;
    let detail = changed("edit", &updated);
    Ok(noted(Json(updated), detail))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, AppError> {
    let deleted = templates::delete(&state.db, &caller, id).await?;
    Ok(noted(StatusCode::NO_CONTENT, changed("delete", &deleted)))
}

/// The audit row's words for a change: which template (a department one changes every reader's list).
fn changed(what: &str, template: &Template) -> String {
    format!("template.{what} scope={} code={}", template.scope.as_str(), template.content.code)
}
