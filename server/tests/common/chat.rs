//! Chat through a running server with the tiny random checkpoint: starting it with the model, uploading
//! an image, asking, and reading the answer's server-sent events.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reqwest::blocking::{Response, multipart};
use serde_json::Value;

use super::{Server, dicom_fixture, fixture};

/// One model server at a time: libtorch's worker threads spin while they wait, and several servers
/// decoding at once on a small machine slow each other down several times over.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pre-reads off (the chat tests count the questions and answers they cause; tests/pre_read.rs turns
/// them on), then `extra`.
pub fn model_args(data: &tempfile::TempDir, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--data-dir".into(),
        data.path().to_str().unwrap().into(),
        "--model-dir".into(),
        fixture("tiny-a").to_str().unwrap().into(),
        "--pre-read".into(),
        "false".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

pub fn start(data: &tempfile::TempDir, extra: &[&str]) -> Server {
    start_with_env(data, extra, &[])
}

pub fn start_with_env(data: &tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let args = model_args(data, extra);
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), env);
    wait_for_model(&server);
    server
}

pub fn wait_for_model(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready: Value = reqwest::blocking::get(server.url("/readyz")).unwrap().json().unwrap();
        if ready["model"]["loaded"] == true {
            assert_eq!(ready["model"]["test_model"], true, "{ready}");
            assert!(ready["model"]["state"].as_str().unwrap().contains("随机测试模型"), "{ready}");
            return;
        }
        assert!(Instant::now() < deadline, "model not loaded within 30 s: {ready}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Uploads a JPEG/PNG fixture as a study of patient `patient` on `date`; returns (study id, instance id).
pub fn upload_image(server: &Server, fixture_name: &str, patient: &str, date: &str) -> (i64, i64) {
    let file = dicom_fixture(fixture_name);
    let form = multipart::Form::new()
        .text("patient_id", patient.to_string())
        .text("patient_name", "测试患者")
        .text("exam_date", date.to_string())
        .part(
            "files",
            multipart::Part::bytes(std::fs::read(&file).unwrap())
                .file_name(file.file_name().unwrap().to_string_lossy().to_string()),
        );
    let body: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let f = &body["files"][0];
    assert_eq!(f["status"], "stored", "{body:#}");
    (f["study_id"].as_i64().unwrap(), f["instance_id"].as_i64().unwrap())
}

/// As a browser posts: it accepts gzip, which must not apply to the event stream.
pub fn post_chat(server: &Server, study: i64, body: Value) -> Response {
    server
        .client()
        .post(server.url(&format!("/api/v1/studies/{study}/chat")))
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .unwrap()
}

/// A JSON body, gzipped or not (`post` accepts gzip, as a browser does).
pub fn json_body(response: Response) -> Value {
    let gzipped = response.headers().get("content-encoding").is_some_and(|e| e == "gzip");
    let mut text = String::new();
    if gzipped {
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(response), &mut text).unwrap();
    } else {
        text = response.text().unwrap();
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Reads server-sent events one at a time, noting when each arrived.
pub struct Events {
    reader: BufReader<Response>,
}

pub struct Received {
    pub name: String,
    pub data: Value,
    pub at: Instant,
}

impl Events {
    pub fn new(response: Response) -> Events {
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        assert!(response.headers().get("content-encoding").is_none(), "tokens must not wait in a compressor");
        Events { reader: BufReader::new(response) }
    }

    pub fn next(&mut self) -> Option<Received> {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if name.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment's end
                }
                let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("event {name}: {e}: {data}"));
                return Some(Received { name, data, at: Instant::now() });
            }
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }

    pub fn all(mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.next()).collect()
    }

    /// Events up to and including the first of `name`.
    pub fn until(&mut self, name: &str) -> Vec<Received> {
        let mut seen = Vec::new();
        while let Some(event) = self.next() {
            let stop = event.name == name;
            seen.push(event);
            if stop {
                return seen;
            }
        }
        panic!("the stream ended before a {name} event: {:?}", seen.iter().map(|e| &e.name).collect::<Vec<_>>());
    }
}
