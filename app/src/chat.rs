//! The chat panel: the study's conversation, quick prompts, a Chinese text box (Enter sends unless an input
//! method is composing; Shift+Enter is a new line), the answer streaming in, a stop button, and the heatmap
//! and boxes of the last answer handed to the image view. A question is about the image on screen; in a
//! study of several images (a CT series) the reader may ask about the whole series instead (the server
//! then samples its slices).

use crate::i18n::tr;
use leptos::prelude::*;
use serde::Deserialize;

use crate::AI_ADVISORY_LABEL;
use crate::api::{self, ApiError, History, Prompts};
use crate::viewer::Shown;

/// One line of the conversation as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub question: bool,
    pub text: String,
    /// eos / max_tokens / client_gone / …; None while streaming.
    pub stop: Option<String>,
    pub error: Option<String>,
}

/// The last answer's heatmap for one image: cells on the image's pixels and their share of attention.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Heatmap {
    pub instance_id: i64,
    /// 1-based, as the viewer's `ImageRef`.
    pub frame: i64,
    pub side: i64,
    pub grid: Vec<f32>,
    pub cells: Vec<Option<[f64; 4]>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LocatedBox {
    pub label: String,
    pub instance_id: i64,
    pub frame: i64,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// What the last answer says about the image, for the image view's overlay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    pub heatmaps: Vec<Heatmap>,
    pub boxes: Vec<LocatedBox>,
}

#[derive(Deserialize)]
struct TokenEvent {
    text: String,
}

#[derive(Deserialize)]
struct HeatmapEvent {
    images: Vec<Heatmap>,
}

#[derive(Deserialize)]
struct BoxesEvent {
    boxes: Vec<LocatedBox>,
}

#[derive(Deserialize)]
struct DoneEvent {
    text: String,
    stop: String,
    model: DoneModel,
}

#[derive(Deserialize)]
struct DoneModel {
    test_model: bool,
    #[serde(default = "reads_images_by_default")]
    reads_images: bool,
}

fn reads_images_by_default() -> bool {
    true
}

/// Stops a streaming answer (the report panel's draft uses it too).
#[cfg(feature = "hydrate")]
pub(crate) type Abort = web_sys::AbortController;
#[cfg(not(feature = "hydrate"))]
pub(crate) type Abort = ();

#[component]
pub fn ChatPanel(study_id: i64, overlay: RwSignal<Overlay>, shown: ReadSignal<Option<Shown>>) -> impl IntoView {
    let whole_series = RwSignal::new(false);
    let entries = RwSignal::new(Vec::<Entry>::new());
    let input = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let test_model = RwSignal::new(false);
    let text_only = RwSignal::new(false);
    let abort = StoredValue::new_local(None::<Abort>);

    // The conversation so far, once, and the latest answer's heatmap over the image (a pre-read's, when the
    // study opens after it).
    let history = LocalResource::new(move || api::get::<History>(format!("/api/v1/studies/{study_id}/chat")));
    Effect::new(move |_| {
        if let Some(Ok(h)) = history.get() {
            let latest = h.messages.iter().rev().find_map(|m| {
                let kept = m.details.as_ref()?.get("heatmaps")?.clone();
                serde_json::from_value::<Vec<Heatmap>>(kept).ok().filter(|maps| !maps.is_empty())
            });
            if let Some(heatmaps) = latest {
                overlay.update(|o| o.heatmaps = heatmaps);
            }
            entries.set(
                h.messages
                    .into_iter()
                    .filter(|m| m.role == "user" || !m.content.is_empty())
                    .map(|m| Entry { question: m.role == "user", text: m.content, stop: m.stop, error: None })
                    .collect(),
            );
        }
    });
    let prompts = LocalResource::new(|| api::get::<Prompts>("/api/v1/chat/prompts".into()));
    // Keep the newest text in view while it streams.
    let log = NodeRef::<leptos::html::Ol>::new();
    Effect::new(move |_| {
        entries.track();
        if let Some(list) = log.get() {
            list.set_scroll_top(list.scroll_height());
        }
    });

    // The last question asked here, with its mode, for the retry button.
    let last_ask = StoredValue::new(None::<(String, Option<String>)>);
    let ask = move |text: String, mode: Option<String>| {
        let text = text.trim().to_string();
        if text.is_empty() || busy.get_untracked() {
            return;
        }
        last_ask.set_value(Some((text.clone(), mode.clone())));
        busy.set(true);
        input.set(String::new());
        overlay.set(Overlay::default());
        entries.update(|e| {
            e.push(Entry { question: true, text: text.clone(), stop: Some("question".into()), error: None });
            e.push(Entry { question: false, text: String::new(), stop: None, error: None });
        });
        let images = match (whole_series.get_untracked(), shown.get_untracked()) {
            (false, Some(s)) => serde_json::json!([{ "instance_id": s.image.instance_id, "frame": s.image.frame }]),
            _ => serde_json::json!([]),
        };
        let body =
            serde_json::json!({ "message": text, "mode": mode.unwrap_or_else(|| "chat".into()), "images": images });
        let on_event =
            move |name: String, data: String| handle_event(&name, &data, entries, overlay, test_model, text_only);
        leptos::task::spawn_local(async move {
            let result = stream(study_id, body.to_string(), abort, on_event).await;
            entries.update(|e| {
                if let Some(last) = e.last_mut() {
                    if let Err(err) = result {
                        last.error = Some(err.text());
                    }
                    if last.stop.is_none() {
                        last.stop = Some("client_gone".into());
                    }
                }
            });
            abort.set_value(None);
            busy.set(false);
        });
    };

    // An answer cut short (error, stopped, timed out, server stopping) can be asked again.
    let can_retry = move || {
        !busy.get()
            && entries.with(|e| {
                e.last().is_some_and(|last| {
                    !last.question
                        && (last.error.is_some()
                            || matches!(last.stop.as_deref(), Some("client_gone" | "timeout" | "shutdown" | "error")))
                })
            })
    };
    let retry = move |_| {
        let again = last_ask.get_value().or_else(|| {
            entries.with_untracked(|e| e.iter().rev().find(|x| x.question).map(|q| (q.text.clone(), None)))
        });
        if let Some((text, mode)) = again {
            ask(text, mode);
        }
    };

    let stop = move |_| {
        abort.update_value(|a| {
            #[cfg(feature = "hydrate")]
            if let Some(controller) = a.take() {
                controller.abort();
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = a;
        });
    };

    view! {
        <section class="chat" aria-label=tr("对话 / Chat")>
            <Show when=move || test_model.get()>
                <p class="test-model-warning">{tr("当前为随机测试模型，回答无任何医学意义 / Random test model: answers mean nothing")}</p>
            </Show>
            <Show when=move || text_only.get()>
                <p class="text-only-notice">
                    {tr("当前模型为纯文本模型：图像未发送给模型，回答只依据问题、测量和报告 / Text-only model: the images are not sent; answers rest on the question, measurements and report alone")}
                </p>
            </Show>
            <ol class="chat-log" aria-live="polite" node_ref=log>
                <For
                    each=move || entries.get().into_iter().enumerate()
                    key=|(i, e)| (*i, e.text.len(), e.stop.clone(), e.error.clone())
                    children=move |(_, entry)| view! { <ChatEntry entry/> }
                />
            </ol>
            <div class="quick-prompts">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        prompts.await.map(|p| p.quick).unwrap_or_default().into_iter().map(|q| {
                            let (text, mode) = (q.text.clone(), q.mode.clone());
                            let label = match q.label_en {
                                Some(en) => crate::i18n::choose(q.label, en),
                                None => q.label,
                            };
                            view! {
                                <button class="quick-prompt" disabled=move || busy.get()
                                    on:click=move |_| ask(text.clone(), mode.clone())>{label}</button>
                            }
                        }).collect_view()
                    })}
                </Transition>
            </div>
            <Show when=move || shown.get().is_some_and(|s| s.count > 1)>
                <fieldset class="chat-scope">
                    <legend>{tr("提问图像 / Ask about")}</legend>
                    <label>
                        <input type="radio" name="chat-scope" class="scope-current"
                            prop:checked=move || !whole_series.get() on:change=move |_| whole_series.set(false)/>
                        {move || shown.get().map(|s| tr(&format!("当前第 {0}/{1} 幅 / this image ({0} of {1})", s.position, s.count)).to_string())}
                    </label>
                    <label>
                        <input type="radio" name="chat-scope" class="scope-series"
                            prop:checked=move || whole_series.get() on:change=move |_| whole_series.set(true)/>
                        {tr("整个序列（按层抽样） / whole series")}
                    </label>
                </fieldset>
            </Show>
            <div class="chat-input">
                <textarea
                    class="chat-text"
                    rows="3"
                    placeholder=tr("用中文提问，例如：右肺上叶这个结节边缘有毛刺，是否符合肺癌影像学特征？（Enter 发送，Shift+Enter 换行） / Ask a question, e.g. is this spiculated nodule in the right upper lobe suspicious for cancer? (Enter sends, Shift+Enter for a new line)")
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        // An input method composing Chinese uses Enter to pick characters: never send then.
                        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() && ev.key_code() != 229 {
                            ev.prevent_default();
                            ask(input.get_untracked(), None);
                        }
                    }
                ></textarea>
                <div class="chat-buttons">
                    <Show
                        when=move || busy.get()
                        fallback=move || view! {
                            <button class="send" on:click=move |_| ask(input.get_untracked(), None)>{tr("发送 / Send")}</button>
                        }
                    >
                        <button class="stop" on:click=stop>{tr("停止 / Stop")}</button>
                    </Show>
                    <Show when=can_retry>
                        <button class="retry" on:click=retry>{tr("重试 / Retry")}</button>
                    </Show>
                </div>
            </div>
        </section>
    }
    // Erased: nested in the study page, the full type overflows the compiler's query depth in the wasm build.
    .into_any()
}

#[component]
fn ChatEntry(entry: Entry) -> impl IntoView {
    if entry.question {
        return view! { <li class="chat-question">{entry.text}</li> }.into_any();
    }
    let streaming = entry.stop.is_none();
    let note = match entry.stop.as_deref() {
        Some("max_tokens") => Some(tr("（已达长度上限） / (length limit reached)")),
        Some("client_gone") => Some(tr("（已停止） / (stopped)")),
        Some("timeout") => Some(tr("（超时） / (timed out)")),
        Some("shutdown") => Some(tr("（服务停止） / (server stopping)")),
        _ => None,
    };
    view! {
        <li class="chat-answer" data-streaming=streaming.to_string()>
            <div class="answer-text"><crate::markdown::Markdown text=entry.text/></div>
            {note.map(|n| view! { <p class="answer-note">{n}</p> })}
            {entry.error.map(|e| view! { <p class="answer-error">{e}</p> })}
            <p class="answer-advisory">{AI_ADVISORY_LABEL}</p>
        </li>
    }
    .into_any()
}

fn handle_event(
    name: &str,
    data: &str,
    entries: RwSignal<Vec<Entry>>,
    overlay: RwSignal<Overlay>,
    test_model: RwSignal<bool>,
    text_only: RwSignal<bool>,
) {
    let update_last = |f: &dyn Fn(&mut Entry)| {
        entries.update(|e| {
            if let Some(last) = e.last_mut() {
                f(last)
            }
        })
    };
    match name {
        "token" => {
            if let Ok(t) = serde_json::from_str::<TokenEvent>(data) {
                update_last(&|last| last.text.push_str(&t.text));
            }
        }
        "heatmap" => {
            if let Ok(h) = serde_json::from_str::<HeatmapEvent>(data) {
                overlay.update(|o| o.heatmaps = h.images);
            }
        }
        "boxes" => {
            if let Ok(b) = serde_json::from_str::<BoxesEvent>(data) {
                overlay.update(|o| o.boxes = b.boxes);
            }
        }
        "done" => {
            if let Ok(d) = serde_json::from_str::<DoneEvent>(data) {
                test_model.set(d.model.test_model);
                text_only.set(!d.model.reads_images);
                update_last(&|last| {
                    last.text = d.text.clone();
                    last.stop = Some(d.stop.clone());
                });
            }
        }
        "error" => {
            let message = serde_json::from_str::<ApiError>(data).map(|e| e.text()).unwrap_or_else(|_| data.to_string());
            update_last(&|last| {
                last.error = Some(message.clone());
                last.stop = Some("error".into());
            });
        }
        _ => {}
    }
}

/// POSTs the question and feeds each server-sent event to `on_event` as it arrives.
#[cfg(feature = "hydrate")]
pub(crate) async fn stream(
    study_id: i64,
    body: String,
    abort: StoredValue<Option<Abort>, LocalStorage>,
    on_event: impl Fn(String, String),
) -> Result<(), ApiError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let network = |e: wasm_bindgen::JsValue| ApiError {
        code: "network".into(),
        message_zh: "连接中断".into(),
        message_en: format!("connection lost ({e:?})"),
    };
    let controller = web_sys::AbortController::new().map_err(network)?;
    let signal = controller.signal();
    abort.set_value(Some(controller));
    let csrf = api::csrf_token().await?;
    let response = gloo_net::http::Request::post(&format!("/api/v1/studies/{study_id}/chat"))
        .header("content-type", "application/json")
        .header(api::CSRF_HEADER, &csrf)
        .abort_signal(Some(&signal))
        .body(body)
        .map_err(|e| network(e.to_string().into()))?
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(_) if signal.aborted() => return Ok(()),
        Err(e) => return Err(network(e.to_string().into())),
    };
    if !response.ok() {
        return Err(api::error_of(response).await);
    }
    let body = response.body().ok_or_else(|| network("no body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buffer = Vec::new();
    loop {
        let chunk = match JsFuture::from(reader.read()).await {
            Ok(chunk) => chunk,
            // Stopped by the user: the server sees the connection close and frees the slot.
            Err(_) if signal.aborted() => return Ok(()),
            Err(e) => return Err(network(e)),
        };
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            return Ok(());
        }
        if let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) {
            buffer.extend(js_sys::Uint8Array::new(&value).to_vec());
        }
        for (name, data) in crate::sse::take_events(&mut buffer) {
            on_event(name, data);
        }
    }
}

#[cfg(not(feature = "hydrate"))]
pub(crate) async fn stream(
    _study_id: i64,
    _body: String,
    _abort: StoredValue<Option<Abort>, LocalStorage>,
    _on_event: impl Fn(String, String),
) -> Result<(), ApiError> {
    Ok(())
}
