//! Sign-in, sign-out and "who am I" (`/api/v1/auth/*`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::auth::sign_in::{self, Attempt, Refusal};
use crate::domain::auth::throttle::device_cookie;
use crate::domain::auth::{Actor, Permission, Principal, users};
use crate::support::clock::now_unix;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ApiJson, ClientIp};
use crate::web::guard::{AuditNote, SESSION_KEY, SessionUser};

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
    /// The one-time code, for accounts with a second factor.
    totp: Option<String>,
}

/// What the web app needs to know about its caller.
#[derive(Serialize)]
pub struct Me {
    /// "user" or "token".
    kind: &'static str,
    id: i64,
    username: String,
    display_name: String,
    role: &'static str,
    role_zh: &'static str,
    permissions: Vec<Permission>,
    totp_enabled: bool,
    /// Send it back as `X-CSRF-Token` on every POST (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

impl Me {
    fn of_user(user: &users::User, csrf: String) -> Me {
        Me {
            kind: "user",
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role.as_str(),
            role_zh: user.role.label_zh(),
            permissions: user.role.permissions().to_vec(),
            totp_enabled: user.totp_enabled,
            csrf_token: Some(csrf),
        }
    }
}

const DEVICE_COOKIE: &str = "mgx_device";

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    ApiJson(form): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    let attempt = Attempt {
        username: form.username.trim().to_string(),
        password: form.password,
        totp: form.totp,
        address: address_of(ip),
        device_cookie: cookie(&headers, DEVICE_COOKIE).map(str::to_string),
    };
    let username = attempt.username.clone();
    let hashes = &state.password_hashes;
    let user = match sign_in::sign_in(&state.db, &state.throttle, hashes, &state.site_key, attempt).await? {
        Ok(user) => user,
        Err(refusal) => return Ok(refused_sign_in(&refusal, username)),
    };
    // A new session id at every sign-in: an id planted before (session fixation) is worth nothing after.
    session.cycle_id().await.map_err(session_error)?;
    let csrf = hex::encode(crate::support::pseudonym::random_bytes::<32>());
    let now = now_unix();
    let record =
        SessionUser { user_id: user.id, epoch: user.session_epoch, login_at: now, seen_at: now, csrf: csrf.clone() };
    session.insert(SESSION_KEY, record).await.map_err(session_error)?;
    users::record_login(&state.db, user.id).await?;

    let mut response = Json(Me::of_user(&user, csrf)).into_response();
    response.headers_mut().append(header::SET_COOKIE, device_cookie_header(&state, user.id)?);
    response.extensions_mut().insert(AuditNote {
        actor: Some((user.id, user.username.clone(), user.role)),
        detail: Some("signed in".into()),
        ..Default::default()
    });
    Ok(response)
}

/// The refusal's answer, with the account tried (when it may be named) for the audit row.
fn refused_sign_in(refusal: &Refusal, username: String) -> Response {
    let mut response = refused(refusal).into_response();
    response.extensions_mut().insert(AuditNote {
        attempted_username: refusal.names_account().then_some(username),
        detail: Some(refusal.audit_detail().to_string()),
        ..Default::default()
    });
    response
}

/// What the sign-in page is told: the reason once the password was right, else only that it was wrong.
fn refused(refusal: &Refusal) -> AppError {
    let sign_in_refused = |code, zh: &str, en: &str| AppError::SignInRefused { code, zh: zh.into(), en: en.into() };
    match refusal {
        Refusal::Throttled { wait } => AppError::Throttled { retry_after_s: wait.as_secs().max(1) },
        Refusal::BadCredentials => sign_in_refused("bad_credentials", "用户名或密码错误", "wrong username or password"),
        Refusal::CannotSignIn { disabled } => {
            let (zh, en) = if *disabled {
                ("该账号已停用，请联系管理员", "this account is disabled; ask an administrator")
            } else {
                ("系统对接账号只能使用 API 令牌", "integrator accounts use API tokens, not passwords")
            };
            AppError::Forbidden { code: "account_cannot_sign_in", zh: zh.into(), en: en.into() }
        }
        Refusal::TotpRequired => {
            sign_in_refused("totp_required", "请输入动态验证码", "enter the one-time code from your authenticator app")
        }
        Refusal::BadTotp => {
            sign_in_refused("bad_totp", "动态验证码不正确或已使用", "the one-time code is wrong or was used already")
        }
        Refusal::UsernameTooLong => {
            AppError::bad_request("用户名过长（最多 64 个字符）", "username too long (64 characters at most)")
        }
    }
}

/// Remembers this browser for the account (it then skips the throttle's delays), for half a year.
fn device_cookie_header(state: &AppState, user_id: i64) -> Result<HeaderValue, AppError> {
    let secure = if state.sessions.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{DEVICE_COOKIE}={}; Path=/api/v1/auth/login; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        device_cookie(&state.site_key, user_id),
        180 * 24 * 3600
    );
    Ok(cookie.parse().map_err(anyhow::Error::from)?)
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("session store: {e}"))
}

pub async fn logout(session: Session) -> Result<StatusCode, AppError> {
    session.flush().await.map_err(|e| anyhow::anyhow!("session store: {e}"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    session: Session,
) -> Result<Json<Me>, AppError> {
    let csrf = session
        .get::<SessionUser>(SESSION_KEY)
        .await
        .map_err(|e| anyhow::anyhow!("session store: {e}"))?
        .map(|r| r.csrf);
    let permissions = caller.permissions();
    let totp_enabled = match &caller.actor {
        Actor::User { id, .. } => users::by_id(&state.db, *id).await?.is_some_and(|u| u.totp_enabled),
        Actor::Token { .. } => false,
    };
    let (kind, id, username, display_name) = match caller.actor {
        Actor::User { id, username, display_name } => ("user", id, username, display_name),
        Actor::Token { id, name } => ("token", id, name.clone(), name),
    };
    Ok(Json(Me {
        kind,
        id,
        username,
        display_name,
        role: caller.role.as_str(),
        role_zh: caller.role.label_zh(),
        permissions,
        totp_enabled,
        csrf_token: csrf,
    }))
}

/// The signed-in user's own account (tokens have none).
async fn own_account(state: &AppState, caller: &Principal) -> Result<users::User, AppError> {
    match &caller.actor {
        Actor::User { id, .. } => users::by_id(&state.db, *id).await?.ok_or(AppError::Unauthorized),
        Actor::Token { .. } => Err(AppError::Forbidden {
            code: "forbidden",
            zh: "API 令牌没有账号设置".into(),
            en: "API tokens have no account settings".into(),
        }),
    }
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes one's own password (the current one is asked again). Every other session of the account ends;
/// this one carries on.
pub async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    session: Session,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, AppError> {
    let user = own_account(&state, &caller).await?;
    let (throttle, hashes, address) = (&state.throttle, &state.password_hashes, address_of(ip));
    match sign_in::recheck_password(throttle, hashes, &user, body.current_password, address).await? {
        Ok(()) => {}
        Err(Refusal::Throttled { wait }) => return Err(AppError::Throttled { retry_after_s: wait.as_secs().max(1) }),
        Err(_) => return Err(AppError::bad_request("当前密码不正确", "the current password is wrong")),
    }
    users::set_password(&state.db, user.id, &body.new_password).await?;
    let epoch = users::by_id(&state.db, user.id).await?.map(|u| u.session_epoch).unwrap_or_default();
    if let Some(mut record) = session.get::<SessionUser>(SESSION_KEY).await.map_err(session_error)? {
        record.epoch = epoch;
        session.insert(SESSION_KEY, record).await.map_err(session_error)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .extensions_mut()
        .insert(AuditNote { detail: Some("password changed (other sessions ended)".into()), ..Default::default() });
    Ok(response)
}

/// Starts (or restarts) second-factor enrolment: the secret to scan into an authenticator app. Not
/// required at sign-in until confirmed with `totp/enable`.
pub async fn totp_setup(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<serde_json::Value>, AppError> {
    let user = own_account(&state, &caller).await?;
    if user.totp_enabled {
        return Err(AppError::bad_request(
            "动态验证码已启用；如需更换，请先停用",
            "a second factor is already on: turn it off first to replace it",
        ));
    }
    let secret = users::start_totp(&state.db, user.id).await?;
    let uri = crate::domain::auth::totp::otpauth_uri(&secret, &user.username);
    Ok(Json(serde_json::json!({ "secret": secret, "otpauth_uri": uri })))
}

#[derive(Deserialize)]
pub struct TotpCode {
    code: String,
}

pub async fn totp_enable(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<Response, AppError> {
    let user = own_account(&state, &caller).await?;
    users::enable_totp(&state.db, &user, &body.code).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditNote { detail: Some("totp.enable".into()), ..Default::default() });
    Ok(response)
}

/// Turning the second factor off takes a current code (a stolen session alone cannot do it).
pub async fn totp_disable(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<Response, AppError> {
    let user = own_account(&state, &caller).await?;
    match sign_in::recheck_totp(&state.db, &state.throttle, &user, &body.code, address_of(ip)).await? {
        Ok(()) => {}
        Err(Refusal::Throttled { wait }) => return Err(AppError::Throttled { retry_after_s: wait.as_secs().max(1) }),
        Err(_) => return Err(AppError::bad_request("动态验证码不正确", "the one-time code is wrong")),
    }
    users::disable_totp(&state.db, user.id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditNote { detail: Some("totp.disable".into()), ..Default::default() });
    Ok(response)
}

/// The client's address for the throttle (unspecified when the connection has none, e.g. in-process tests).
fn address_of(ip: Option<std::net::IpAddr>) -> std::net::IpAddr {
    ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
}

/// One cookie's value from the Cookie header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
