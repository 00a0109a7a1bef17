//! Extractors that refuse in the API's JSON error shape. axum's own answer a wrong body, path or query
//! with a plain-text 4xx; these wrap them (`#[from_request(rejection(AppError))]`, as axum's
//! error-handling example does), so every refusal a client sees is `{"error": {code, message_zh,
//! message_en}}`, with axum's status (400 malformed, 415 no JSON content type, 422 wrong fields).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::web::error::AppError;

/// A JSON request body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// Path parameters (`/studies/{id}`).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// A multipart/form-data body (uploads).
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Ok(ApiMultipart(Multipart::from_request(request, state).await?))
    }
}

/// A JSON body read whatever its Content-Type says, every refusal a 400 `bad_request` naming what is
/// wrong: the chat API's contract (its clients post from scripts that seldom set the header).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(request, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::bad_request(format!("请求格式错误：{e}"), format!("invalid request body: {e}")))
    }
}

/// The address the request came from; None in in-process tests (no socket).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// axum's refusal, in our shape: its status, code `invalid_request`, its English text.
fn refused(status: axum::http::StatusCode, text: String) -> AppError {
    AppError::Rejected {
        status, code: "invalid_request", zh: "请求内容无效（格式或字段不符）".into(), en: text
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> AppError {
        refused(r.status(), r.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> AppError {
        refused(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> AppError {
        refused(r.status(), r.body_text())
    }
}

impl From<BytesRejection> for AppError {
    fn from(r: BytesRejection) -> AppError {
        refused(r.status(), r.body_text())
    }
}

impl From<axum::extract::multipart::MultipartRejection> for AppError {
    fn from(r: axum::extract::multipart::MultipartRejection) -> AppError {
        refused(r.status(), r.body_text())
    }
}
