//! The signed-in person's account (password, second factor) and the administrator's page (accounts, API
//! tokens, the audit trail). Both talk to the API; the server checks every permission again.

use crate::i18n::tr;
use leptos::prelude::*;
use serde::Deserialize;

#[cfg(feature = "hydrate")]
use crate::api::ApiError;
use crate::api::{self, Me};

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
    pub last_login_at: Option<String>,
    pub totp_enabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub ts: String,
    pub actor_name: Option<String>,
    pub role: Option<String>,
    pub ip: Option<String>,
    pub action: String,
    pub patient_ref: Option<String>,
    pub outcome: String,
    pub status: Option<i64>,
    pub detail: Option<String>,
}

/// A DICOM peer, as `GET /api/v1/admin/dicom-peers` lists it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PeerRow {
    pub ae_title: String,
    pub host: String,
    pub port: i64,
    pub may_store: bool,
    pub may_query: bool,
}

/// POSTs `body` and reports the outcome in `status` ("" while pending); runs `then` on success.
fn submit(path: String, body: serde_json::Value, status: RwSignal<String>, then: impl FnOnce() + 'static) {
    status.set(String::new());
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        match api::post(&path, &body).await {
            Ok(_) => {
                status.set(tr("已保存 / saved").into());
                then();
            }
            Err(e) => status.set(e.text()),
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (path, body, then);
}

pub(crate) fn role_label(role: &str) -> &'static str {
    match role {
        "radiologist" => tr("放射科医师 / Radiologist"),
        "department_head" => tr("科室主任 / Department head"),
        "integrator" => tr("系统对接 / Integrator"),
        "admin" => tr("系统管理员 / Administrator"),
        _ => "—",
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let refresh = RwSignal::new(0u32);
    let me = LocalResource::new(move || {
        refresh.track();
        api::get::<Me>("/api/v1/auth/me".into())
    });
    let (current, new, repeat) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let password_status = RwSignal::new(String::new());
    let change_password = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if new.get_untracked() != repeat.get_untracked() {
            password_status.set(tr("两次输入的新密码不一致 / the new passwords differ").into());
            return;
        }
        let body =
            serde_json::json!({"current_password": current.get_untracked(), "new_password": new.get_untracked()});
        submit("/api/v1/auth/password".into(), body, password_status, || ());
    };
    let secret = RwSignal::new(None::<(String, String)>);
    let code = RwSignal::new(String::new());
    let totp_status = RwSignal::new(String::new());
    let start_totp = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            #[derive(Deserialize)]
            struct Setup {
                secret: String,
                otpauth_uri: String,
            }
            let setup = async {
                api::post("/api/v1/auth/totp/setup", &()).await?.json::<Setup>().await.map_err(ApiError::from)
            };
            match setup.await {
                Ok(s) => secret.set(Some((s.secret, s.otpauth_uri))),
                Err(e) => totp_status.set(e.text()),
            }
        });
    };
    let confirm_totp = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let path = if me.get().and_then(|m| m.ok()).is_some_and(|m| m.totp_enabled) { "disable" } else { "enable" };
        let body = serde_json::json!({"code": code.get_untracked().trim()});
        submit(format!("/api/v1/auth/totp/{path}"), body, totp_status, move || {
            secret.set(None);
            code.set(String::new());
            refresh.update(|n| *n += 1);
        });
    };

    view! {
        <main class="account" data-hydrated=move || hydrated.get().to_string()>
            <header class="page-header">
                <h1>{tr("账号设置 / Account")}</h1>
                <a href="/studies">{tr("工作列表 / Worklist")}</a>
                <crate::login::UserBar/>
            </header>
            <section class="panel">
                <h2>{tr("修改密码 / Change password")}</h2>
                <form class="stacked-form" on:submit=change_password>
                    <label>{tr("当前密码 / Current password")}
                        <input type="password" name="current" autocomplete="current-password" required
                            on:input=move |ev| current.set(event_target_value(&ev))/>
                    </label>
                    <label>{tr("新密码（至少 10 个字符） / New password (10 characters or more)")}
                        <input type="password" name="new" autocomplete="new-password" required
                            on:input=move |ev| new.set(event_target_value(&ev))/>
                    </label>
                    <label>{tr("再次输入新密码 / Repeat")}
                        <input type="password" name="repeat" autocomplete="new-password" required
                            on:input=move |ev| repeat.set(event_target_value(&ev))/>
                    </label>
                    <button type="submit">{tr("修改密码 / Change")}</button>
                    <p class="form-status" role="status">{move || password_status.get()}</p>
                </form>
            </section>
            <section class="panel">
                <h2>{tr("动态验证码（双因素） / One-time codes (second factor)")}</h2>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let enabled = me.await.ok().is_some_and(|m| m.totp_enabled);
                        view! {
                            <p class="totp-state">{if enabled { tr("已启用 / on") } else { tr("未启用 / off") }}</p>
                            <Show when=move || !enabled && secret.get().is_none()>
                                <button class="totp-start" on:click=start_totp>{tr("启用动态验证码 / Turn on")}</button>
                            </Show>
                        }
                    })}
                </Transition>
                <Show when=move || secret.get().is_some()>
                    <p>{tr("在身份验证器应用中手动添加以下密钥，然后输入应用显示的 6 位数字 / Add this key to an authenticator app, then enter its 6-digit code:")}</p>
                    <p class="totp-secret"><code>{move || secret.get().map(|s| group(&s.0)).unwrap_or_default()}</code></p>
                    <p class="totp-uri"><code>{move || secret.get().map(|s| s.1).unwrap_or_default()}</code></p>
                </Show>
                <Show when=move || secret.get().is_some() || me.get().and_then(|m| m.ok()).is_some_and(|m| m.totp_enabled)>
                    <form class="stacked-form" on:submit=confirm_totp>
                        <label>{tr("6 位验证码 / 6-digit code")}
                            <input name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6"
                                prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
                        </label>
                        <button type="submit">{move || if secret.get().is_some() { tr("确认启用 / Confirm") } else { tr("停用 / Turn off") }}</button>
                    </form>
                </Show>
                <p class="form-status" role="status">{move || totp_status.get()}</p>
            </section>
        </main>
    }
}

/// "ABCDEFGH…" → "ABCD EFGH …", easier to type into a phone.
fn group(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let refresh = RwSignal::new(0u32);
    let users = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<UserRow>>("/api/v1/admin/users".into())
    });
    let tokens = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<TokenRow>>("/api/v1/admin/tokens".into())
    });
    let audit = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<AuditRow>>("/api/v1/audit?limit=50".into())
    });
    let reload = move || refresh.update(|n| *n += 1);
    let status = RwSignal::new(String::new());

    let (username, display_name, role, password) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new("admin".to_string()),
        RwSignal::new(String::new()),
    );
    let add_user = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({"username": username.get_untracked().trim(), "display_name": display_name.get_untracked().trim(),
                                      "role": role.get_untracked(), "password": password.get_untracked()});
        submit("/api/v1/admin/users".into(), body, status, reload);
    };
    let act = move |path: String| submit(path, serde_json::Value::Null, status, reload);

    let token_name = RwSignal::new(String::new());
    let scopes: Vec<(&'static str, &'static str, RwSignal<bool>)> = vec![
        ("study_upload", tr("上传影像 / upload"), RwSignal::new(true)),
        ("read_metrics", tr("监控指标 / metrics"), RwSignal::new(false)),
    ];
    let new_token = RwSignal::new(None::<String>);
    let chosen = scopes.iter().map(|(key, _, on)| (*key, *on)).collect::<Vec<_>>();
    let add_token = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let picked: Vec<&str> = chosen.iter().filter(|(_, on)| on.get_untracked()).map(|(k, _)| *k).collect();
        let body = serde_json::json!({"name": token_name.get_untracked().trim(), "scopes": picked});
        status.set(String::new());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            #[derive(Deserialize)]
            struct Made {
                token: String,
            }
            let made =
                async { api::post("/api/v1/admin/tokens", &body).await?.json::<Made>().await.map_err(ApiError::from) };
            match made.await {
                Ok(m) => {
                    new_token.set(Some(m.token));
                    reload();
                }
                Err(e) => status.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = body;
    };
    let verification = RwSignal::new(None::<String>);
    let verify = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            #[derive(Deserialize)]
            struct Verification {
                rows: i64,
                ok: bool,
                first_bad_id: Option<i64>,
                problem: Option<String>,
            }
            let text = match api::get::<Verification>("/api/v1/audit/verify".into()).await {
                Ok(v) if v.ok => {
                    tr(&format!("哈希链完整：{} 条记录 / chain intact: {} rows", v.rows, v.rows)).to_string()
                }
                Ok(v) => format!(
                    "{} {}: {}",
                    tr("哈希链断裂，第一处问题在记录 / chain broken at row"),
                    v.first_bad_id.unwrap_or_default(),
                    v.problem.unwrap_or_default()
                ),
                Err(e) => e.text(),
            };
            verification.set(Some(text));
        });
    };

    view! {
        <main class="admin" data-hydrated=move || hydrated.get().to_string()>
            <header class="page-header">
                <h1>{tr("系统管理 / Administration")}</h1>
                <a href="/account">{tr("账号设置 / Account")}</a>
                <crate::login::UserBar/>
            </header>
            <p class="form-status" role="status">{move || status.get()}</p>
            <section class="panel">
                <h2>{tr("账号 / Accounts")}</h2>
                <Transition fallback=|| view! { <p class="status-pending">{tr("加载中… / Loading…")}</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Err(e) => view! { <p class="status-error">{e.text()}</p> }.into_any(),
                            Ok(list) => view! {
                                <table class="users">
                                    <thead><tr><th>{tr("用户名 / Username")}</th><th>{tr("姓名 / Name")}</th><th>{tr("角色 / Role")}</th><th>{tr("状态 / State")}</th><th>{tr("双因素 / 2FA")}</th><th>{tr("最近登录 / Last sign-in")}</th><th></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|u| {
                                            let id = u.id;
                                            let toggle = if u.disabled { "enable" } else { "disable" };
                                            view! {
                                                <tr data-username=u.username.clone()>
                                                    <td>{u.username.clone()}</td>
                                                    <td>{u.display_name.clone()}</td>
                                                    <td>{role_label(&u.role)}</td>
                                                    <td class="user-state">{if u.disabled { tr("已停用 / disabled") } else { tr("正常 / active") }}</td>
                                                    <td>{if u.totp_enabled { tr("已启用 / on") } else { "—" }}</td>
                                                    <td>{u.last_login_at.as_deref().map_or_else(|| "—".into(), api::display_time)}</td>
                                                    <td>
                                                        <button class="user-toggle" on:click=move |_| act(format!("/api/v1/admin/users/{id}/{toggle}"))>
                                                            {if u.disabled { tr("启用 / Enable") } else { tr("停用 / Disable") }}
                                                        </button>
                                                        <Show when=move || u.totp_enabled>
                                                            <button on:click=move |_| act(format!("/api/v1/admin/users/{id}/totp/reset"))>{tr("重置双因素 / Reset 2FA")}</button>
                                                        </Show>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
                <h3>{tr("添加账号 / Add an account")}</h3>
                <form class="inline-form add-user" on:submit=add_user>
                    <input name="username" placeholder=tr("用户名 / username") required on:input=move |ev| username.set(event_target_value(&ev))/>
                    <input name="display_name" placeholder=tr("姓名 / name") required on:input=move |ev| display_name.set(event_target_value(&ev))/>
                    <select name="role" on:change=move |ev| role.set(event_target_value(&ev))>
                        <option value="admin">{tr("系统管理员 / Administrator")}</option>
                    </select>
                    <input name="password" type="password" autocomplete="new-password" placeholder=tr("初始密码（≥10 位） / Initial password (≥ 10 characters)") required
                        on:input=move |ev| password.set(event_target_value(&ev))/>
                    <button type="submit">{tr("添加 / Add")}</button>
                </form>
                <p class="hint console-only">{tr("放射科医师、科室主任账号及其密码重置须在服务器控制台完成（管理员不经网页接触患者数据） / Radiologist and department-head accounts, and their password resets, are made at the server's console (an administrator gets no path to patient data through the web)")}
                    " " <code>"medgemma-x user add NAME --role radiologist"</code></p>
            </section>
            <section class="panel">
                <h2>{tr("接口令牌 / API tokens")}</h2>
                <form class="inline-form add-token" on:submit=add_token>
                    <input name="token_name" placeholder=tr("名称，如 HIS / name") required on:input=move |ev| token_name.set(event_target_value(&ev))/>
                    {scopes.into_iter().map(|(key, label, on)| view! {
                        <label class="scope"><input type="checkbox" name=key prop:checked=move || on.get()
                            on:change=move |ev| on.set(event_target_checked(&ev))/>{label}</label>
                    }).collect_view()}
                    <button type="submit">{tr("生成令牌 / Create")}</button>
                </form>
                <p class="hint console-only">{tr("可读取或导出报告的令牌须在服务器控制台创建 / Tokens that read or export reports are made at the server's console:")}
                    " " <code>"medgemma-x token create NAME --scopes study_upload,report_read,report_export"</code></p>
                <Show when=move || new_token.get().is_some()>
                    <p class="new-token">{tr("新令牌（仅显示这一次，请立即复制） / shown once: ")}<code>{move || new_token.get().unwrap_or_default()}</code></p>
                </Show>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        tokens.await.ok().map(|list| view! {
                            <table class="tokens">
                                <thead><tr><th>{tr("编号 / ID")}</th><th>{tr("名称 / Name")}</th><th>{tr("权限 / Scopes")}</th><th>{tr("创建 / Created")}</th><th>{tr("最近使用 / Last used")}</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| {
                                        let id = t.id;
                                        let live = t.revoked_at.is_none();
                                        view! {
                                            <tr>
                                                <td>{t.id}</td><td>{t.name}</td><td>{t.scopes.join(", ")}</td>
                                                <td>{api::display_time(&t.created_at)}</td><td>{t.last_used_at.as_deref().map_or_else(|| "—".into(), api::display_time)}</td>
                                                <td>{if live {
                                                    view! { <button on:click=move |_| act(format!("/api/v1/admin/tokens/{id}/revoke"))>{tr("吊销 / Revoke")}</button> }.into_any()
                                                } else {
                                                    view! { <span>{tr("已吊销 / revoked")}</span> }.into_any()
                                                }}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
                </Transition>
            </section>
            <DicomPeers status/>
            <section class="panel">
                <h2>{tr("审计日志 / Audit trail")}</h2>
                <p>
                    <button class="audit-verify" on:click=verify>{tr("校验哈希链 / Verify the chain")}</button>
                    " "<a href="/api/v1/audit?format=csv&limit=1000000" download="audit.csv">{tr("导出 CSV / Export CSV")}</a>
                </p>
                <p class="audit-verification" role="status">{move || verification.get().unwrap_or_default()}</p>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        audit.await.ok().map(|rows| view! {
                            <table class="audit">
                                <thead><tr><th>"#"</th><th>{tr("时间 / Time")}</th><th>{tr("人员 / Actor")}</th><th>{tr("地址 / Address")}</th><th>{tr("操作 / Action")}</th><th>{tr("患者（假名） / Patient (pseudonym)")}</th><th>{tr("结果 / Outcome")}</th><th>{tr("说明 / Detail")}</th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|r| view! {
                                        <tr>
                                            <td>{r.id}</td><td>{api::display_time(&r.ts)}</td>
                                            <td>{r.actor_name.unwrap_or_default()}" "{r.role.map(|x| role_label(&x)).unwrap_or("")}</td>
                                            <td>{r.ip.unwrap_or_default()}</td><td>{r.action}</td>
                                            <td>{r.patient_ref.unwrap_or_default()}</td>
                                            <td>{r.outcome}" "{r.status.map(|s| s.to_string()).unwrap_or_default()}</td>
                                            <td>{r.detail.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
                </Transition>
            </section>
        </main>
    }
}

/// The DICOM nodes that may associate with us (modalities that send, the PACS we also ask for priors):
/// the same table as `medgemma-x dicom peer add|list|remove`.
#[component]
fn DicomPeers(status: RwSignal<String>) -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let peers = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<PeerRow>>("/api/v1/admin/dicom-peers".into())
    });
    let reload = move || refresh.update(|n| *n += 1);
    let (ae_title, host, port) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new("104".to_string()));
    let (may_store, may_query) = (RwSignal::new(true), RwSignal::new(false));
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(port) = port.get_untracked().trim().parse::<u16>() else {
            status.set(tr("端口须为 1–65535 / the port must be 1–65535").into());
            return;
        };
        let body = serde_json::json!({"ae_title": ae_title.get_untracked().trim(), "host": host.get_untracked().trim(),
                                      "port": port, "may_store": may_store.get_untracked(), "may_query": may_query.get_untracked()});
        submit("/api/v1/admin/dicom-peers".into(), body, status, reload);
    };
    let remove = move |ae: String| {
        status.set(String::new());
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/v1/admin/dicom-peers/{}", api::encode_query(&ae))).await {
                Ok(()) => {
                    status.set(tr("已删除 / removed").into());
                    reload();
                }
                Err(e) => status.set(e.text()),
            }
        });
    };
    let yes_no = |on: bool| if on { tr("是 / yes") } else { "—" };
    view! {
        <section class="panel dicom-peers">
            <h2>{tr("DICOM 节点 / DICOM peers")}</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    peers.await.ok().map(|list| view! {
                        <table class="peers">
                            <thead><tr><th>{tr("AE 名称 / AE title")}</th><th>{tr("主机 / Host")}</th><th>{tr("端口 / Port")}</th><th>{tr("可发送 / Stores")}</th><th>{tr("可查询 / Queries")}</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|p| {
                                    let (ae, row_ae) = (p.ae_title.clone(), p.ae_title.clone());
                                    view! {
                                        <tr data-ae=row_ae>
                                            <td>{p.ae_title}</td><td>{p.host}</td><td>{p.port}</td>
                                            <td>{yes_no(p.may_store)}</td><td>{yes_no(p.may_query)}</td>
                                            <td><button class="peer-remove" on:click=move |_| remove(ae.clone())>{tr("删除 / Remove")}</button></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    })
                })}
            </Transition>
            <form class="inline-form add-peer" on:submit=add>
                <input name="ae_title" placeholder=tr("AE 名称，如 DR_ROOM1 / AE title") required maxlength="16" on:input=move |ev| ae_title.set(event_target_value(&ev))/>
                <input name="host" placeholder=tr("主机或 IP / host") required on:input=move |ev| host.set(event_target_value(&ev))/>
                <input name="port" inputmode="numeric" prop:value=move || port.get() on:input=move |ev| port.set(event_target_value(&ev))/>
                <label class="scope"><input type="checkbox" name="may_store" prop:checked=move || may_store.get()
                    on:change=move |ev| may_store.set(event_target_checked(&ev))/>{tr("可发送影像 / may send images")}</label>
                <label class="scope"><input type="checkbox" name="may_query" prop:checked=move || may_query.get()
                    on:change=move |ev| may_query.set(event_target_checked(&ev))/>{tr("可查询（PACS） / may query (PACS)")}</label>
                <button type="submit">{tr("添加 / Add")}</button>
            </form>
            <p class="hint">{tr("本机 AE 名称与端口见 /readyz；在设备或 PACS 中把本机添加为目的节点 / Our AE title and port are in /readyz; add us as a destination on the modality or in the PACS")}</p>
        </section>
    }
}
