//! The conversation kept per study (table chat_messages): every question and every answer that reached a
//! screen, with the images, model, prompt version and timings it was made with.

use serde::Serialize;

use crate::store::db::{DbError, Pool};

/// One stored message, as the history endpoint returns it.
#[derive(Debug, Serialize)]
pub struct Message {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub mode: String,
    pub images: serde_json::Value,
    pub stop: Option<String>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub answer_tokens: Option<i64>,
    pub details: Option<serde_json::Value>,
    pub created_at: String,
}

/// A chat_messages row: its JSON columns as stored text.
#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    role: String,
    content: String,
    mode: String,
    images: String,
    stop: Option<String>,
    model: Option<String>,
    prompt_version: Option<String>,
    prompt_tokens: Option<i64>,
    answer_tokens: Option<i64>,
    details: Option<String>,
    created_at: String,
}

/// A study's conversation, oldest first.
pub async fn history(db: &Pool, study_id: i64) -> Result<Vec<Message>, DbError> {
    let rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, role, content, mode, images, stop, model, prompt_version, prompt_tokens, answer_tokens, \
         details, created_at FROM chat_messages WHERE study_id = $1 ORDER BY id",
    )
    .bind(study_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Message {
            id: r.id,
            role: r.role,
            content: r.content,
            mode: r.mode,
            images: serde_json::from_str(&r.images).unwrap_or_default(),
            stop: r.stop,
            model: r.model,
            prompt_version: r.prompt_version,
            prompt_tokens: r.prompt_tokens,
            answer_tokens: r.answer_tokens,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
            created_at: r.created_at,
        })
        .collect())
}

/// What is stored of one message; the id of its row comes back.
pub struct NewMessage<'a> {
    pub study_id: i64,
    pub role: &'static str,
    pub content: &'a str,
    /// `domain::chat::Mode` as stored ("chat", "report_draft" …).
    pub mode: &'static str,
    /// The prompts' version the question was asked with.
    pub prompt_version: &'static str,
    pub images: serde_json::Value,
    pub stop: Option<&'a str>,
    pub model: Option<&'a str>,
    pub prompt_tokens: Option<i64>,
    pub answer_tokens: Option<i64>,
    pub details: Option<serde_json::Value>,
}

pub async fn store(db: &Pool, m: NewMessage<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "INSERT INTO chat_messages (study_id, role, content, mode, images, stop, model, prompt_version, \
         prompt_tokens, answer_tokens, details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         RETURNING id",
    )
    .bind(m.study_id)
    .bind(m.role)
    .bind(m.content)
    .bind(m.mode)
    .bind(m.images.to_string())
    .bind(m.stop)
    .bind(m.model)
    .bind(m.prompt_version)
    .bind(m.prompt_tokens)
    .bind(m.answer_tokens)
    .bind(m.details.map(|d| d.to_string()))
    .bind(crate::support::clock::now_rfc3339())
    .fetch_one(db)
    .await
}
