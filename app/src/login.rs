//! The sign-in page, and the bar on every other page that says who is signed in.

use crate::i18n::tr;
use leptos::prelude::*;

use crate::api::{self, Me};
use crate::{AI_ADVISORY_LABEL, PRODUCT_NAME};

#[component]
pub fn LoginPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    // Shown once the server says this account has a second factor.
    let need_code = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match sign_in(username.get_untracked(), password.get_untracked(), code.get_untracked()).await {
                Ok(me) => {
                    let next = next_page(&me);
                    if let Some(window) = web_sys::window() {
                        let _ = window.location().set_href(&next);
                    }
                }
                Err((error_code, message)) => {
                    if error_code == "totp_required" {
                        need_code.set(true);
                    }
                    error.set(Some(message));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <main class="login" data-hydrated=move || hydrated.get().to_string()>
            <crate::i18n::LangSwitch/>
            <h1>{PRODUCT_NAME}</h1>
            <p class="tagline">{tr("基层胸部影像智能辅助系统 · 请登录 / Please sign in")}</p>
            <form class="login-form" on:submit=submit>
                <label>{tr("用户名 / Username")}
                    <input name="username" autocomplete="username" required
                        prop:value=move || username.get()
                        on:input=move |ev| username.set(event_target_value(&ev))/>
                </label>
                <label>{tr("密码 / Password")}
                    <input name="password" type="password" autocomplete="current-password" required
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))/>
                </label>
                <Show when=move || need_code.get()>
                    <label>{tr("动态验证码 / One-time code")}
                        <input name="totp" inputmode="numeric" autocomplete="one-time-code" maxlength="6"
                            prop:value=move || code.get()
                            on:input=move |ev| code.set(event_target_value(&ev))/>
                    </label>
                </Show>
                <button type="submit" disabled=move || busy.get()>{tr("登录 / Sign in")}</button>
                <Show when=move || error.get().is_some()>
                    <p class="status-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                </Show>
            </form>
            <p class="advisory">{AI_ADVISORY_LABEL}</p>
        </main>
    }
}

/// Where to go after signing in: `?next=` when it is a path of this site, else the worklist (the
/// administration page for administrators, who see no studies).
#[cfg(feature = "hydrate")]
fn next_page(me: &Me) -> String {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let next = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("next="))
        .and_then(|v| js_sys::decode_uri_component(v).ok())
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if let Some(next) = safe_next(&next) {
        next.to_string()
    } else if me.can("study_read") {
        "/studies".into()
    } else {
        "/admin".into()
    }
}

/// `next` when it is one of this app's pages, else None: a same-origin path only (one leading `/`, then
/// letters, digits, `-`, `_`, `.` and single `/`s, so no `//evil.example`, `/\evil.example`, scheme,
/// query or fragment), and a route the router knows (`/`, `/studies`, `/studies/{id}`, `/account`,
/// `/admin`; never `/login`). Anything else would make the sign-in page an open redirect.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))] // the browser build calls it
pub fn safe_next(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let segments: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    if !segments.iter().all(|s| plain(s)) {
        return None;
    }
    match segments.as_slice() {
        [] | ["studies"] | ["studies", _] | ["account"] | ["admin"] => Some(next),
        _ => None,
    }
}

/// Signs in; on failure the error code (`totp_required` asks for the code field) and the message to show.
#[cfg(feature = "hydrate")]
async fn sign_in(username: String, password: String, code: String) -> Result<Me, (String, String)> {
    #[derive(serde::Serialize)]
    struct Credentials<'a> {
        username: &'a str,
        password: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        totp: &'a str,
    }
    let network = |e: String| {
        (
            "network".to_string(),
            format!("{}{}", tr("无法连接服务器 / cannot reach the server"), crate::i18n::parenthesized(&e)),
        )
    };
    let response = gloo_net::http::Request::post("/api/v1/auth/login")
        .json(&Credentials { username: username.trim(), password: &password, totp: code.trim() })
        .map_err(|e| network(e.to_string()))?
        .send()
        .await
        .map_err(|e| network(e.to_string()))?;
    if response.ok() {
        return response.json::<Me>().await.map_err(|e| network(e.to_string()));
    }
    let retry = response.headers().get("retry-after");
    let error = api::error_of(response).await;
    let message = match (error.code.as_str(), retry) {
        ("throttled", Some(s)) => {
            tr(&format!("登录失败次数过多，请 {s} 秒后再试 / too many failed sign-ins: wait {s} s")).to_string()
        }
        _ => error.text(),
    };
    Err((error.code, message))
}

/// "王医生（放射科医师） 退出": on every page's header.
#[component]
pub fn UserBar() -> impl IntoView {
    let me = LocalResource::new(|| api::get::<Me>("/api/v1/auth/me".into()));
    let sign_out = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let _ = api::post("/api/v1/auth/logout", &()).await;
            if let Some(window) = web_sys::window() {
                let _ = window.location().set_href("/login");
            }
        });
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                me.await.ok().map(|me| view! {
                    <span class="user-bar">
                        {me.can("manage_users").then(|| view! { <a href="/admin">{tr("系统管理 / Administration")}</a> })}
                        <a class="user-name" href="/account">{me.display_name}</a>
                        <span class="user-role">{crate::i18n::parenthesized(crate::admin::role_label(&me.role))}</span>
                        <button class="sign-out" on:click=sign_out>{tr("退出 / Sign out")}</button>
                        <crate::i18n::LangSwitch/>
                    </span>
                })
            })}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_the_apps_own_pages_are_followed_after_sign_in() {
        for page in ["/", "/studies", "/studies/12", "/account", "/admin"] {
            assert_eq!(safe_next(page), Some(page), "{page}");
        }
        for hostile in [
            "/\\evil.example",
            "/\\/evil.example",
            "\\\\evil.example",
            "//evil.example",
            "///evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/javascript:alert(1)",
            "evil.example",
            "",
            "/login",
            "/studies/12/../../evil",
            "/studies/%2F%2Fevil.example",
            "/studies?next=//evil.example",
            "/studies#x",
            "/nowhere",
            "/studies/",
            "/ studies",
            "/studies/1/2",
        ] {
            assert_eq!(safe_next(hostile), None, "{hostile}");
        }
    }
}
