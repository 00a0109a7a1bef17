//! Batch upload on the worklist: drop files on the panel or pick them; each file goes up in its own
//! request, one after another, with its progress bar and the server's verdict (stored, already there,
//! or refused with the reason). JPEG/PNG films carry no patient data of their own: the fields here give
//! it to every film of the batch (DICOM files keep their own).

use crate::i18n::tr;
use leptos::prelude::*;
use serde::Deserialize;

/// One file of the batch as the panel shows it.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    name: String,
    bytes: f64,
    /// 0–1 while sending.
    progress: f64,
    state: RowState,
}

#[derive(Clone, Debug, PartialEq)]
enum RowState {
    Waiting,
    Sending,
    /// The server's outcomes for the file (a zip has one per entry).
    Done(Vec<FileOutcome>),
    Failed(String),
}

/// One stored, duplicate or refused file in the upload's answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FileOutcome {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub message_zh: Option<String>,
    #[serde(default)]
    pub message_en: Option<String>,
    #[serde(default)]
    pub study_id: Option<i64>,
}

#[cfg(feature = "hydrate")]
#[derive(Deserialize)]
struct UploadAnswer {
    files: Vec<FileOutcome>,
}

fn outcome_text(o: &FileOutcome) -> String {
    match o.status.as_str() {
        "stored" => tr("已保存 / Stored").to_string(),
        "duplicate" => tr("已存在（重复上传） / Already stored (duplicate)").to_string(),
        _ => {
            let reason = crate::i18n::choose(&o.message_zh, &o.message_en);
            format!("{}{}", tr("未接收： / Not accepted: "), reason.clone().unwrap_or_default())
        }
    }
}

fn size_text(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MB", bytes / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KB", bytes / 1024.0)
    }
}

/// The panel; `on_done` runs after each batch (the worklist reloads).
#[component]
pub fn UploadPanel(on_done: Callback<()>) -> impl IntoView {
    let rows = RwSignal::new(Vec::<Row>::new());
    let busy = RwSignal::new(false);
    let over = RwSignal::new(false);
    let patient_id = RwSignal::new(String::new());
    let patient_name = RwSignal::new(String::new());
    let exam_date = RwSignal::new(String::new());
    let spacing = RwSignal::new(String::new());
    let input = NodeRef::<leptos::html::Input>::new();

    let start = move |files: Vec<BrowserFile>| {
        if files.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        let first = rows.get_untracked().len();
        rows.update(|r| {
            r.extend(files.iter().map(|f| Row {
                name: f.name(),
                bytes: f.size(),
                progress: 0.0,
                state: RowState::Waiting,
            }))
        });
        let fields: Vec<(&'static str, String)> = [
            ("patient_id", patient_id.get_untracked()),
            ("patient_name", patient_name.get_untracked()),
            ("exam_date", exam_date.get_untracked()),
            ("pixel_spacing_mm", spacing.get_untracked()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
        leptos::task::spawn_local(async move {
            for (i, file) in files.into_iter().enumerate() {
                let index = first + i;
                let set = move |f: &dyn Fn(&mut Row)| rows.update(|r| f(&mut r[index]));
                set(&|r| r.state = RowState::Sending);
                let result = send(file, &fields, move |p| rows.update(|r| r[index].progress = p)).await;
                set(&|r| {
                    r.progress = 1.0;
                    r.state = match &result {
                        Ok(files) => RowState::Done(files.clone()),
                        Err(e) => RowState::Failed(e.clone()),
                    }
                });
            }
            busy.set(false);
            on_done.run(());
        });
    };

    view! {
        <section class="upload" aria-label=tr("上传 / Upload")>
            <div class="drop-zone" class:drop-over=move || over.get()
                on:dragover=move |ev| { ev.prevent_default(); over.set(true); }
                on:dragleave=move |_| over.set(false)
                on:drop=move |ev: leptos::ev::DragEvent| {
                    ev.prevent_default();
                    over.set(false);
                    start(dropped_files(&ev));
                }>
                <p>{tr("将 DICOM、JPEG、PNG 或 zip 文件拖到这里，或  / Drop DICOM, JPEG, PNG or zip files here, or ")}
                    <label class="file-pick">
                        {tr("选择文件 / Choose files")}
                        <input type="file" class="file-input" multiple node_ref=input
                            accept=".dcm,.dicom,.jpg,.jpeg,.png,.zip,application/dicom,image/jpeg,image/png,application/zip"
                            on:change=move |_| {
                                start(picked_files(&input));
                            }/>
                    </label>
                </p>
                <details class="film-identity">
                    <summary>{tr("JPEG/PNG 胶片的患者信息（DICOM 文件自带，无需填写） / Patient details for JPEG/PNG films (DICOM files carry their own)")}</summary>
                    <div class="identity-fields">
                        <label>{tr("患者ID  / Patient ID ")}<input class="upload-patient-id" prop:value=move || patient_id.get()
                            on:input=move |ev| patient_id.set(event_target_value(&ev))/></label>
                        <label>{tr("姓名  / Name ")}<input class="upload-patient-name" prop:value=move || patient_name.get()
                            on:input=move |ev| patient_name.set(event_target_value(&ev))/></label>
                        <label>{tr("检查日期  / Exam date ")}<input type="date" class="upload-exam-date" prop:value=move || exam_date.get()
                            on:input=move |ev| exam_date.set(event_target_value(&ev))/></label>
                        <label>{tr("像素间距（毫米，可选）  / Pixel spacing (mm, optional) ")}<input class="upload-spacing" inputmode="decimal"
                            prop:value=move || spacing.get() on:input=move |ev| spacing.set(event_target_value(&ev))/></label>
                    </div>
                </details>
            </div>
            <ul class="upload-list">
                {move || rows.get().into_iter().map(|r| {
                    let state_class = match &r.state {
                        RowState::Waiting => "upload-waiting",
                        RowState::Sending => "upload-sending",
                        RowState::Done(files) if files.iter().all(|f| f.status != "rejected") => "upload-done",
                        RowState::Done(_) | RowState::Failed(_) => "upload-failed",
                    };
                    let detail = match &r.state {
                        RowState::Waiting => tr("等待中 / Waiting").to_string(),
                        RowState::Sending => format!("{:.0}%", r.progress * 100.0),
                        RowState::Done(files) if files.len() == 1 => outcome_text(&files[0]),
                        RowState::Done(files) => files.iter().map(|f| format!("{}：{}", f.name, outcome_text(f))).collect::<Vec<_>>().join(tr("； / ; ")),
                        RowState::Failed(e) => e.clone(),
                    };
                    let study = match &r.state {
                        RowState::Done(files) => files.iter().find_map(|f| f.study_id),
                        _ => None,
                    };
                    view! {
                        <li class=format!("upload-row {state_class}")>
                            <span class="upload-name">{r.name.clone()}</span>
                            <span class="upload-size">{size_text(r.bytes)}</span>
                            <progress max="1" value=r.progress.to_string()></progress>
                            <span class="upload-detail">{detail}</span>
                            {study.map(|id| view! { <a class="upload-open" href=format!("/studies/{id}")>{tr("打开 / Open")}</a> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

#[cfg(feature = "hydrate")]
type BrowserFile = web_sys::File;

/// On the server nothing is uploaded; the type keeps the component whole.
#[cfg(not(feature = "hydrate"))]
struct BrowserFile;

#[cfg(not(feature = "hydrate"))]
impl BrowserFile {
    fn name(&self) -> String {
        String::new()
    }
    fn size(&self) -> f64 {
        0.0
    }
}

#[cfg(feature = "hydrate")]
fn file_list(list: Option<web_sys::FileList>) -> Vec<BrowserFile> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default()
}

#[cfg(feature = "hydrate")]
fn dropped_files(ev: &leptos::ev::DragEvent) -> Vec<BrowserFile> {
    file_list(ev.data_transfer().and_then(|d| d.files()))
}

#[cfg(not(feature = "hydrate"))]
fn dropped_files(_ev: &leptos::ev::DragEvent) -> Vec<BrowserFile> {
    Vec::new()
}

#[cfg(feature = "hydrate")]
fn picked_files(input: &NodeRef<leptos::html::Input>) -> Vec<BrowserFile> {
    let Some(input) = input.get_untracked() else { return Vec::new() };
    let files = file_list(input.files());
    // The same file picked again must fire `change` again.
    input.set_value("");
    files
}

#[cfg(not(feature = "hydrate"))]
fn picked_files(_input: &NodeRef<leptos::html::Input>) -> Vec<BrowserFile> {
    Vec::new()
}

/// POSTs one file as multipart with XMLHttpRequest (fetch reports no upload progress), reporting the
/// share sent to `progress`; the server's outcomes, or the error to show.
#[cfg(feature = "hydrate")]
async fn send(
    file: BrowserFile,
    fields: &[(&str, String)],
    progress: impl Fn(f64) + 'static,
) -> Result<Vec<FileOutcome>, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let js = |e: wasm_bindgen::JsValue| format!("{}{e:?}", tr("浏览器错误： / browser error: "));
    let csrf = crate::api::csrf_token().await.map_err(|e| e.text())?;
    let form = web_sys::FormData::new().map_err(js)?;
    for (name, value) in fields {
        form.append_with_str(name, value).map_err(js)?;
    }
    form.append_with_blob_and_filename("files", &file, &file.name()).map_err(js)?;
    let xhr = web_sys::XmlHttpRequest::new().map_err(js)?;
    xhr.open("POST", "/api/v1/uploads").map_err(js)?;
    xhr.set_request_header(crate::api::CSRF_HEADER, &csrf).map_err(js)?;
    let on_progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |ev: web_sys::ProgressEvent| {
        if ev.length_computable() && ev.total() > 0.0 {
            progress(ev.loaded() / ev.total());
        }
    });
    xhr.upload().map_err(js)?.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    // Resolves on load (any HTTP status), rejects when the request could not be made.
    let finished = js_sys::Promise::new(&mut |resolve, reject| {
        xhr.set_onload(Some(&resolve));
        xhr.set_onerror(Some(&reject));
        xhr.set_onabort(Some(&reject));
    });
    xhr.send_with_opt_form_data(Some(&form)).map_err(js)?;
    let sent = wasm_bindgen_futures::JsFuture::from(finished).await;
    drop(on_progress);
    if sent.is_err() {
        return Err(tr("网络中断，文件未上传 / network error: not uploaded").into());
    }
    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    if status == 401 {
        crate::api::go_to_login();
    }
    if let Ok(answer) = serde_json::from_str::<UploadAnswer>(&text) {
        return Ok(answer.files);
    }
    Err(serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::from_value::<crate::api::ApiError>(v["error"].clone()).ok())
        .map(|e| e.text())
        .unwrap_or_else(|| tr(&format!("服务器返回 {status} / the server answered {status}")).to_string()))
}

#[cfg(not(feature = "hydrate"))]
async fn send(
    _file: BrowserFile,
    _fields: &[(&str, String)],
    _progress: impl Fn(f64) + 'static,
) -> Result<Vec<FileOutcome>, String> {
    Ok(Vec::new())
}
