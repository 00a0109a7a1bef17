//! The guard every request passes (see the module above): caller, permission, CSRF, audit.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::RequestExt;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::audit::{AuditEvent, bounded};
use crate::domain::auth::{Access, Actor, Principal, Role, access_for, tokens, users};
use crate::support::clock::now_unix;
use crate::web::AppState;
use crate::web::error::AppError;

/// The session's record of who signed in (stored server-side; the cookie holds only the session id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: i64,
    /// The account's `session_epoch` at sign-in: a password change or disable ends the session.
    pub epoch: i64,
    /// Unix seconds of sign-in (the absolute timeout counts from here).
    pub login_at: i64,
    /// Unix seconds of the last request that refreshed the idle timeout.
    pub seen_at: i64,
    /// Sent back in `X-CSRF-Token` with every state-changing request.
    pub csrf: String,
}

pub const SESSION_KEY: &str = "user";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Session lifetimes (flags `--session-idle-minutes`, `--session-max-hours`, `--secure-cookies`).
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    pub idle: Duration,
    pub absolute: Duration,
    /// Cookies only over HTTPS (set when a TLS proxy fronts the server).
    pub secure_cookies: bool,
}

/// What a handler adds to the audit row (set as a response extension): the sign-in's account, or what a
/// change did. The patient and study come from the route's parameters.
#[derive(Clone, Debug, Default)]
pub struct AuditNote {
    /// Replaces the caller (a sign-in names the account it was for).
    pub actor: Option<(i64, String, Role)>,
    pub attempted_username: Option<String>,
    pub detail: Option<String>,
}

/// Longest request target (path and query) the server reads, in bytes; a longer one gets 414.
pub const MAX_URI_BYTES: usize = 4096;
/// Longest path parameter value the audit row keeps, in characters (ids and numbers are far shorter).
const MAX_PARAM_CHARS: usize = 64;

pub fn client_ip(request_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    request_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return uri_too_long().into_response();
    }
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let ip = client_ip(request.extensions());
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let guarded = path.starts_with("/api/") || path == "/metrics";
    if !guarded && !is_page(&path) {
        return next.run(request).await; // assets, probes, the sign-in page: nobody's data
    }
    let session = request.extensions().get::<Session>().cloned();
    // A bad token is refused below like any other refusal, so it is in the audit trail too.
    let (principal, csrf, not_identified) = match identify(&state, session.as_ref(), request.headers()).await {
        Ok(Some((p, csrf))) => (Some(p), csrf, None),
        Ok(None) => (None, None, None),
        Err(e) => (None, None, Some(e)),
    };
    if !guarded {
        // A page: the shell holds no patient data (the page fetches it from the API), but without a
        // session it would only show errors; the sign-in page comes back here afterwards.
        if principal.is_none() {
            return Redirect::to(&format!("/login?next={}", encode_next(&path))).into_response();
        }
        return next.run(request).await;
    }

    // A route the router matched must have a row in the table; an unmatched API path answers 404 to
    // signed-in callers (and 401 to the rest: nothing about the API is public).
    let access = match &route {
        Some(r) => access_for(method.as_str(), r),
        None => Some(Access::SignedIn),
    };
    let refusal = not_identified
        .or_else(|| decide(access, principal.as_ref(), &method, request.headers(), csrf.as_deref()))
        .or_else(|| disk_refusal(&state, &method, route.as_deref()));

    let params = request.extract_parts::<RawPathParams>().await.ok();
    let param = |v: &str| bounded(v, MAX_PARAM_CHARS);
    let id_param = params.as_ref().and_then(|p| p.iter().find(|(k, _)| *k == "id").map(|(_, v)| param(v)));
    let target = params.as_ref().filter(|p| p.iter().next().is_some()).map(|p| {
        serde_json::Value::Object(p.iter().map(|(k, v)| (k.to_string(), param(v).into())).collect()).to_string()
    });
    let action = format!("{method} {}", route.as_deref().unwrap_or("(unknown route)"));

    let refusal_reason = refusal.as_ref().map(|e| match e {
        AppError::Forbidden { code, .. } => code.to_string(),
        other => other.to_string(),
    });
    let response = match refusal {
        Some(error) => error.into_response(),
        None => {
            if let Some(p) = &principal {
                request.extensions_mut().insert(p.clone());
            }
            if let (Some(session), Some(Actor::User { .. })) = (&session, principal.as_ref().map(|p| &p.actor)) {
                refresh_idle(session).await;
            }
            next.run(request).await
        }
    };

    let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    let (patient_ref, study_id) = match &route {
        Some(r) => {
            crate::domain::audit::subject(&state.db, &state.site_key, r, id_param.as_deref()).await.unwrap_or_default()
        }
        None => (None, None),
    };
    let event = AuditEvent {
        ip: ip.map(|i| i.to_string()),
        action,
        target,
        patient_ref,
        study_id,
        outcome: outcome(response.status()),
        status: Some(response.status().as_u16()),
        detail: note.detail.clone().or(refusal_reason),
        ..actor_of(principal.as_ref(), note)
    };
    // No trail, no access: a response whose audit row cannot be written is not sent.
    if let Err(err) = state.audit.record(event).await {
        tracing::error!(error = format!("{err:#}"), "audit trail write failed; response withheld");
        return AppError::Unavailable {
            zh: "审计日志写入失败，结果未返回（操作本身可能已生效），请联系管理员".into(),
            en: "the audit trail could not be written, so the response was withheld (the action itself may have taken effect)".into(),
        }
        .into_response();
    }
    response
}

fn uri_too_long() -> AppError {
    AppError::Rejected {
        status: StatusCode::URI_TOO_LONG,
        code: "uri_too_long",
        zh: format!("请求地址过长（最多 {MAX_URI_BYTES} 字节）"),
        en: format!("request path too long ({MAX_URI_BYTES} bytes at most)"),
    }
}

/// Why a request is refused, if it is: the route's row in the table against the caller, then CSRF.
fn decide(
    access: Option<Access>,
    caller: Option<&Principal>,
    method: &Method,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Option<AppError> {
    match (access, caller) {
        (None, _) => Some(AppError::Forbidden {
            code: "no_permission_entry",
            zh: "该接口未登记权限，已拒绝".into(),
            en: "this route has no entry in the permission table; refused".into(),
        }),
        (Some(Access::Public), _) => None,
        (Some(_), None) => Some(AppError::Unauthorized),
        (Some(Access::Person), Some(caller)) if matches!(caller.actor, Actor::Token { .. }) => {
            Some(AppError::Forbidden {
                code: "forbidden",
                zh: "API 令牌不能执行此操作".into(),
                en: "API tokens cannot do this: it is a person's own account setting".into(),
            })
        }
        (Some(Access::Needs(p)), Some(caller)) if !caller.can(p) => Some(AppError::Forbidden {
            code: "forbidden",
            zh: format!("当前账号（{}）无权执行此操作", caller.role.label_zh()),
            en: format!("your role ({}) may not do this ({})", caller.role.as_str(), p.as_str()),
        }),
        (Some(_), Some(_)) => csrf_refusal(method, headers, csrf),
    }
}

/// 507 for a request that would store something while the data dir's disk is nearly full: reading goes
/// on, and so do signing in and out (small session rows). Uploads check the disk themselves, file by
/// file, so that their answer says which files landed before the disk ran low.
fn disk_refusal(state: &AppState, method: &Method, route: Option<&str>) -> Option<AppError> {
    let exempt = route.is_some_and(|r| r.starts_with("/api/v1/auth/") || r == "/api/v1/uploads");
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || exempt {
        return None;
    }
    let free_mb = state.disk.low()? >> 20;
    Some(AppError::Rejected {
        status: StatusCode::INSUFFICIENT_STORAGE,
        code: "disk_full",
        zh: format!("服务器磁盘空间不足（剩余 {free_mb} MB），暂不能保存新数据；阅片不受影响，请联系管理员清理磁盘"),
        en: format!(
            "the server's disk is nearly full ({free_mb} MB free): nothing new can be saved until the administrator frees space; reading goes on"
        ),
    })
}

/// ok / denied / failed, from the response's status.
fn outcome(status: StatusCode) -> &'static str {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS) {
        "denied"
    } else if status.is_success() || status.is_redirection() {
        "ok"
    } else {
        "failed"
    }
}

/// Who the audit row names: the caller, or the account a sign-in was for (or attempted).
fn actor_of(caller: Option<&Principal>, note: AuditNote) -> AuditEvent {
    let mut event = AuditEvent { actor_kind: "anonymous", ..Default::default() };
    if let Some(p) = caller {
        event.role = Some(p.role.as_str().to_string());
        event.actor_name = Some(p.name().to_string());
        (event.actor_kind, event.actor_id) = match &p.actor {
            Actor::User { id, .. } => ("user", Some(*id)),
            Actor::Token { id, .. } => ("token", Some(*id)),
        };
    }
    if let Some((id, name, role)) = note.actor {
        (event.actor_kind, event.actor_id, event.actor_name, event.role) =
            ("user", Some(id), Some(name), Some(role.as_str().to_string()));
    } else if let Some(name) = note.attempted_username {
        event.actor_name = Some(name);
    }
    event
}

/// The caller, from an `Authorization: Bearer` token or the session cookie; with the session's CSRF
/// token. A bad token is an error (the integrator must learn it), a stale session is just no caller.
async fn identify(
    state: &AppState,
    session: Option<&Session>,
    headers: &HeaderMap,
) -> Result<Option<(Principal, Option<String>)>, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 9110 §11.1): "Bearer", "bearer", "BEARER".
        let token = value
            .to_str()
            .ok()
            .filter(|v| v.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer ")))
            .map_or("", |v| v[7..].trim());
        return match tokens::authenticate(&state.db, token).await? {
            Some(t) => Ok(Some((
                Principal {
                    actor: Actor::Token { id: t.id, name: t.name },
                    role: Role::Integrator,
                    scopes: Some(t.scopes),
                },
                None,
            ))),
            None => Err(AppError::Unauthorized),
        };
    }
    let Some(session) = session else { return Ok(None) };
    let Some(record) =
        session.get::<SessionUser>(SESSION_KEY).await.map_err(|e| anyhow::anyhow!("session store: {e}"))?
    else {
        return Ok(None);
    };
    let user = users::by_id(&state.db, record.user_id).await?;
    let alive = now_unix() - record.login_at < state.sessions.absolute.as_secs() as i64;
    match user {
        Some(user)
            if !user.disabled && user.session_epoch == record.epoch && alive && user.role.signs_in_with_password() =>
        {
            Ok(Some((
                Principal {
                    actor: Actor::User { id: user.id, username: user.username, display_name: user.display_name },
                    role: user.role,
                    scopes: None,
                },
                Some(record.csrf),
            )))
        }
        _ => {
            // Ended by the absolute timeout, a password change, a disable or a deleted account.
            let _ = session.flush().await;
            Ok(None)
        }
    }
}

/// State changes by a session must carry the session's CSRF token (a token-authenticated request has
/// no ambient credential for a forged page to borrow, so it needs none).
fn csrf_refusal(method: &Method, headers: &HeaderMap, csrf: Option<&str>) -> Option<AppError> {
    use subtle::ConstantTimeEq;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let expected = csrf?; // token callers have none and need none
    let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if sent.len() == expected.len() && bool::from(sent.ct_eq(expected.as_bytes())) {
        return None;
    }
    Some(AppError::Forbidden {
        code: "csrf",
        zh: "请求缺少有效的安全令牌，请刷新页面后重试".into(),
        en: "missing or wrong CSRF token (X-CSRF-Token); reload the page and try again".into(),
    })
}

/// Moves the idle deadline at most once a minute (each move is a database write).
async fn refresh_idle(session: &Session) {
    if let Ok(Some(mut record)) = session.get::<SessionUser>(SESSION_KEY).await
        && now_unix() - record.seen_at >= 60
    {
        record.seen_at = now_unix();
        let _ = session.insert(SESSION_KEY, record).await;
    }
}

/// Pages of the app (not assets, probes, the API or the login page itself).
fn is_page(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    !(path.starts_with("/pkg/") || path == "/login" || path == "/healthz" || path == "/readyz" || last.contains('.'))
}

/// The path to come back to after signing in, percent-encoded for a query parameter.
fn encode_next(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_told_from_assets_and_probes() {
        assert!(is_page("/"));
        assert!(is_page("/studies/12"));
        assert!(!is_page("/login"));
        assert!(!is_page("/pkg/medgemma-x.wasm"));
        assert!(!is_page("/favicon.svg"));
        assert!(!is_page("/healthz"));
        assert_eq!(encode_next("/studies/12"), "/studies/12");
        assert_eq!(encode_next("/a b&c"), "/a%20b%26c");
    }

    #[test]
    fn csrf_is_needed_only_for_state_changes_by_sessions() {
        let mut headers = HeaderMap::new();
        assert!(csrf_refusal(&Method::GET, &headers, Some("abc")).is_none());
        assert!(csrf_refusal(&Method::POST, &headers, None).is_none(), "tokens need none");
        assert!(csrf_refusal(&Method::POST, &headers, Some("abc")).is_some());
        headers.insert(CSRF_HEADER, "abd".parse().unwrap());
        assert!(csrf_refusal(&Method::POST, &headers, Some("abc")).is_some());
        headers.insert(CSRF_HEADER, "abc".parse().unwrap());
        assert!(csrf_refusal(&Method::POST, &headers, Some("abc")).is_none());
    }
}
