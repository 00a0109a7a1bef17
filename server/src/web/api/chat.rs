//! `POST /api/v1/studies/{id}/chat`: a question about the study's images, answered as server-sent events
//! (domain::ask says which and when); `GET` the conversation so far; the quick prompts.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde_json::json;

use crate::domain::ask::{self, AnswerEvent, Question};
use crate::domain::auth::Principal;
use crate::domain::chat;
use crate::domain::inference::Priority;
use crate::store;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiPath, JsonBody};

pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(study_id): ApiPath<i64>,
    JsonBody(question): JsonBody<Question>,
) -> Result<Response, AppError> {
    let answering = ask::ask(state.asking(), caller.key(), Priority::Interactive, study_id, question).await?;
    let events = answering.into_stream().map(|e| Ok::<_, Infallible>(sse_event(e)));
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    // No proxy between us and the browser may hold tokens back.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

fn sse_event(e: AnswerEvent) -> Event {
    Event::default().event(e.name).json_data(&e.data).unwrap_or_else(|_| Event::default().event(e.name).data("{}"))
}

/// `GET /api/v1/studies/{id}/chat`: the conversation so far.
pub async fn history(
    State(state): State<AppState>,
    ApiPath(study_id): ApiPath<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    super::studies::require(&state, study_id).await?;
    let messages = store::chat::history(&state.db, study_id).await?;
    Ok(Json(json!({ "messages": messages, "advisory": chat::ADVISORY })))
}

/// `GET /api/v1/chat/prompts`: the quick prompts and the prompt version.
pub async fn prompts() -> Result<Json<serde_json::Value>, AppError> {
    let quick: serde_json::Value = serde_json::from_str(chat::QUICK_PROMPTS_ZH).map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "version": chat::PROMPT_VERSION, "quick": quick, "advisory": chat::ADVISORY })))
}
