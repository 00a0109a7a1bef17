//! Accounts, API tokens and DICOM peers, for administrators (`/api/v1/admin/*`). Every change is in the audit trail
//! (the guard writes the row; these handlers say what changed).

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::noted;
use crate::domain::auth::users::{self, ChangeError};
use crate::domain::auth::{Permission, Principal, Role, tokens, web_admin};
use crate::domain::dicom::{self, Peer};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ApiPath};

impl From<ChangeError> for AppError {
    fn from(e: ChangeError) -> AppError {
        match e {
            ChangeError::Refused { zh, en } => AppError::BadRequest { zh, en },
            ChangeError::Other(e) => AppError::Internal(e),
        }
    }
}

pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<users::User>>, AppError> {
    Ok(Json(users::list(&state.db).await?))
}

#[derive(Deserialize)]
pub struct NewUser {
    username: String,
    display_name: String,
    role: Role,
    password: String,
}

pub async fn add_user(State(state): State<AppState>, ApiJson(new): ApiJson<NewUser>) -> Result<Response, AppError> {
    web_admin::may_create_account(new.role)?;
    let user = users::create(&state.db, &new.username, &new.display_name, new.role, &new.password).await?;
    let detail = format!("user.add {} role={}", user.username, user.role.as_str());
    Ok(noted((axum::http::StatusCode::CREATED, Json(user)), detail))
}

pub async fn disable_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, AppError> {
    if caller.key() == format!("user:{id}") {
        return Err(AppError::bad_request("不能停用自己的账号", "you cannot disable your own account"));
    }
    let user = users::set_disabled(&state.db, id, true).await?;
    Ok(noted(Json(&user), format!("user.disable {} (all sessions ended)", user.username)))
}

pub async fn enable_user(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    let user = users::set_disabled(&state.db, id, false).await?;
    Ok(noted(Json(&user), format!("user.enable {}", user.username)))
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<Response, AppError> {
    let user = users::by_id(&state.db, id).await?.ok_or_else(|| AppError::not_found("没有这个用户", "no such user"))?;
    web_admin::may_set_password(user.role)?;
    users::set_password(&state.db, id, &body.password).await?;
    Ok(noted(Json(json!({"ok": true})), format!("user.password user_id={id} (all sessions ended)")))
}

pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<Vec<tokens::TokenInfo>>, AppError> {
    Ok(Json(tokens::list(&state.db).await?))
}

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
    scopes: Vec<Permission>,
    /// RFC 3339; none = until revoked.
    expires_at: Option<String>,
}

pub async fn add_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<Response, AppError> {
    if new.name.trim().is_empty() || new.name.chars().count() > 64 {
        return Err(AppError::bad_request("令牌名称须为 1–64 个字符", "the token name must be 1–64 characters"));
    }
    tokens::check_scopes(&new.scopes).map_err(|e| AppError::bad_request(format!("令牌权限无效：{e}"), e))?;
    web_admin::may_create_token(&new.scopes)?;
    let expires_at = new.expires_at.as_deref().map(tokens::normalise_expiry).transpose()?;
    let (info, token) =
        tokens::create(&state.db, new.name.trim(), &new.scopes, caller.name(), expires_at.as_deref()).await?;
    let detail = format!("token.add id={} name={}", info.id, info.name);
    // The only time the token is shown.
    Ok(noted((axum::http::StatusCode::CREATED, Json(json!({"token": token, "info": info}))), detail))
}

pub async fn revoke_token(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    if !tokens::revoke(&state.db, id).await? {
        return Err(AppError::not_found("没有这个有效令牌", "no live token with that id"));
    }
    Ok(noted(Json(json!({"revoked": id})), format!("token.revoke id={id}")))
}

/// For a lost phone: the account signs in with its password alone until it enrols again.
pub async fn reset_totp(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Response, AppError> {
    let user = users::by_id(&state.db, id).await?.ok_or_else(|| AppError::not_found("没有这个用户", "no such user"))?;
    users::disable_totp(&state.db, id).await?;
    Ok(noted(Json(json!({"ok": true})), format!("user.totp_reset {}", user.username)))
}

pub async fn list_peers(State(state): State<AppState>) -> Result<Json<Vec<Peer>>, AppError> {
    Ok(Json(dicom::peers(&state.db).await?))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPeer {
    ae_title: String,
    host: String,
    port: u16,
    /// May send images to us (default yes).
    #[serde(default = "yes")]
    may_store: bool,
    /// May query what we hold, and is asked for priors.
    #[serde(default)]
    may_query: bool,
}

/// Adds a DICOM peer, or changes the one with its AE title (as `medgemma-x dicom peer add`).
pub async fn put_peer(State(state): State<AppState>, ApiJson(new): ApiJson<NewPeer>) -> Result<Response, AppError> {
    let peer = dicom::put_peer(&state.db, &new.ae_title, &new.host, new.port, new.may_store, new.may_query).await?;
    let detail = format!(
        "dicom.peer.add ae={} host={} port={} store={} query={}",
        peer.ae_title, peer.host, peer.port, peer.may_store, peer.may_query
    );
    Ok(noted((axum::http::StatusCode::CREATED, Json(peer)), detail))
}

pub async fn remove_peer(
    State(state): State<AppState>,
    ApiPath(ae_title): ApiPath<String>,
) -> Result<Response, AppError> {
    dicom::remove_peer(&state.db, &ae_title).await?;
    Ok(noted(axum::http::StatusCode::NO_CONTENT, format!("dicom.peer.remove ae={}", ae_title.trim())))
}
