//! `POST /api/v1/uploads`: multipart, one or many files (DICOM, JPEG, PNG, zip archives of them), each
//! streamed to a temporary file under the data dir, then parsed, stored and recorded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::extract::multipart::Field;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use imaging::ImagingError;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::domain::ingest::{self, FileOutcome, InflateBudget, Status, UploaderIdentity};
use crate::web::AppState;
use crate::web::error::{AppError, imaging_status_of_code};
use crate::web::extract::ApiMultipart;
use crate::web::guard::AuditNote;

#[derive(Serialize)]
struct UploadResult {
    stored: usize,
    duplicates: usize,
    rejected: usize,
    files: Vec<FileOutcome>,
}

static NEXT_UPLOAD: AtomicU64 = AtomicU64::new(0);

/// Text fields may come before the files they describe (JPEG/PNG identity); at most this long each.
const MAX_FIELD_BYTES: usize = 4096;

pub async fn upload(
    State(state): State<AppState>,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, AppError> {
    let mut identity = UploaderIdentity::default();
    let mut outcomes: Vec<FileOutcome> = Vec::new();
    let max_upload_bytes = state.images.max_upload_bytes;
    let mut inflate = InflateBudget(state.images.max_upload_inflated_bytes);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            // The request ended early or ran over the request limit: what landed stays landed.
            Err(e) => return Ok(finish_early(outcomes, e.status(), &e.body_text(), max_upload_bytes)),
        };
        let field_name = field.name().unwrap_or_default().to_string();
        let Some(file_name) = field.file_name().map(display_name) else {
            identity.set(&field_name, read_text_field(field).await?)?;
            continue;
        };
        // Low-disk guard: stop before the disk fills (the database and logs need room too).
        if let Some(free) = state.disk.low() {
            return Ok(disk_full(outcomes, file_name, free));
        }
        let landed = match receive_file(&state, field).await? {
            Received::Complete(tmp) => {
                ingest::ingest_file(&state.db, &state.images, tmp, file_name, &identity, &mut inflate).await?
            }
            Received::OverLimit(seen) => vec![over_limit(file_name, seen, state.images.limits.max_file_bytes)],
            Received::RequestEnded(e) => {
                return Ok(finish_early(outcomes, e.status(), &e.body_text(), max_upload_bytes));
            }
        };
        for outcome in &landed {
            state.metrics.record_upload(outcome.status.label(), outcome.code);
        }
        outcomes.extend(landed);
    }
    if outcomes.is_empty() {
        return Err(AppError::bad_request("没有上传任何文件", "No file in the upload"));
    }
    // Once the whole upload has landed: a CT series is pre-read with all its slices.
    state.pre_reads.arrived(outcomes.iter().filter(|o| o.status == Status::Stored).filter_map(|o| o.study_id));
    Ok(summarize_audited(outcomes))
}

fn over_limit(file_name: String, seen: u64, limit: u64) -> FileOutcome {
    FileOutcome::rejected(file_name, &ImagingError::TooLarge { what: "file bytes", value: seen, limit })
}

enum Received {
    /// All of it, in this temporary file.
    Complete(PathBuf),
    /// Over the per-file limit after this many bytes; the rest of the part was read and dropped.
    OverLimit(u64),
    /// The request broke off (client gone, or over the request limit).
    RequestEnded(axum::extract::multipart::MultipartError),
}

/// Streams one file part into a temporary file of the data dir, removed unless complete. An error is the
/// server's (tmp/ not writable, disk full).
async fn receive_file(state: &AppState, field: Field<'_>) -> Result<Received, AppError> {
    let path = state.data_dir.tmp().join(format!(
        "upload-{}-{}",
        std::process::id(),
        NEXT_UPLOAD.fetch_add(1, Ordering::Relaxed)
    ));
    let received = stream_to_file(field, &path, state.images.limits.max_file_bytes).await;
    if !matches!(received, Ok(Received::Complete(_))) {
        let _ = tokio::fs::remove_file(&path).await;
    }
    Ok(received.context("cannot receive an upload into the data dir's tmp folder")?)
}

async fn stream_to_file(mut field: Field<'_>, path: &Path, max_bytes: u64) -> anyhow::Result<Received> {
    let mut file = Some(tokio::fs::File::create(path).await?);
    let mut seen = 0u64;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Ok(Received::RequestEnded(e)),
        };
        seen += chunk.len() as u64;
        if seen > max_bytes {
            file = None; // keep draining the part so the next one can be read
            continue;
        }
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).await?;
        }
    }
    if let Some(f) = file.as_mut() {
        f.flush().await?;
    }
    Ok(if seen <= max_bytes { Received::Complete(path.to_path_buf()) } else { Received::OverLimit(seen) })
}

async fn read_text_field(mut field: Field<'_>) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| AppError::bad_request("上传请求格式错误", e.body_text()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_FIELD_BYTES {
            return Err(AppError::bad_request("表单字段过长", format!("form field over {MAX_FIELD_BYTES} bytes")));
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| AppError::bad_request("表单字段不是 UTF-8 文本", "form field is not UTF-8 text"))
}

/// The uploader's file name, for messages only: last path component, control characters removed.
fn display_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() { "(unnamed)".into() } else { clean }
}

/// [`summarize`], and files refused for claiming another patient's study or series named in the request's
/// audit row.
fn summarize_audited(files: Vec<FileOutcome>) -> Response {
    let conflicts = files.iter().filter(|f| f.code == Some(FileOutcome::UID_CONFLICT)).count();
    let mut response = summarize(files);
    if conflicts > 0 {
        let detail =
            format!("{}: {conflicts} file(s) claimed another patient's study or series UID", FileOutcome::UID_CONFLICT);
        response.extensions_mut().insert(AuditNote { detail: Some(detail), ..Default::default() });
    }
    response
}

/// 200 when every file landed, 207 when some did, the first rejection's status when none did.
fn summarize(files: Vec<FileOutcome>) -> Response {
    let count = |s: Status| files.iter().filter(|f| f.status == s).count();
    let (stored, duplicates, rejected) = (count(Status::Stored), count(Status::Duplicate), count(Status::Rejected));
    let status = if rejected == 0 {
        StatusCode::OK
    } else if stored + duplicates > 0 {
        StatusCode::MULTI_STATUS
    } else {
        files.iter().find_map(|f| f.code).map(imaging_status_of_code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    };
    (status, Json(UploadResult { stored, duplicates, rejected, files })).into_response()
}

/// The request broke off (client gone, or over the request size limit): report what landed.
fn finish_early(mut files: Vec<FileOutcome>, status: StatusCode, reason: &str, max_upload_bytes: u64) -> Response {
    tracing::info!(%status, reason, "upload request ended early");
    let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The exact size is unknown: reading stopped at the limit.
        ImagingError::TooLarge { what: "upload request bytes", value: max_upload_bytes + 1, limit: max_upload_bytes }
    } else {
        ImagingError::Truncated(format!("upload request: {reason}"))
    };
    files.push(FileOutcome::rejected("(rest of the upload)".into(), &error));
    let mut response = summarize(files);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        *response.status_mut() = status;
    }
    response
}

/// 507: the disk is nearly full. Files before this one landed; this one and the rest were not read.
fn disk_full(mut files: Vec<FileOutcome>, name: String, free: u64) -> Response {
    files.push(FileOutcome {
        name,
        status: Status::Rejected,
        code: Some("disk_full"),
        message_zh: Some(format!("服务器磁盘空间不足（剩余 {} MB），请联系管理员清理后重新上传", free >> 20)),
        message_en: Some(format!(
            "the server's disk is nearly full ({} MB free): ask the administrator, then upload again",
            free >> 20
        )),
        study_id: None,
        series_id: None,
        instance_id: None,
    });
    let mut response = summarize(files);
    *response.status_mut() = StatusCode::INSUFFICIENT_STORAGE;
    response
}
