//! Delivery to the HIS: a signed report is POSTed as HL7 v2.5 to the configured endpoint and written to the
//! reports folder (HL7 and PDF); while the HIS is down the delivery waits in the database, survives a
//! kill -9, and goes out once the server is back and the HIS answers.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, dicom_fixture};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

/// A stand-in HIS on `listener`: records each POST's content type and body, answers 200.
fn his(listener: TcpListener) -> mpsc::Receiver<(String, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("content-type:") {
                    content_type = line[13..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK").unwrap();
            let _ = tx.send((content_type, body));
        }
    });
    rx
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_signed_report_reaches_the_his_even_across_a_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let folder = data.path().join("his-folder");
    std::fs::create_dir_all(&folder).unwrap();
    // The HIS's port, closed for now: the HIS is down.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/his/oru");
    let args = ["--data-dir", &dir, "--his-url", &url, "--his-folder", folder.to_str().unwrap()];
    let mut server = Server::start(&args, &[]);

    let file = dicom_fixture("synthetic/cxr.jpg");
    let form = multipart::Form::new()
        .text("patient_id", "P-HIS-1")
        .part("files", multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("cxr.jpg"));
    let uploaded: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let study = uploaded["files"][0]["study_id"].as_i64().unwrap();
    let report =
        json!({"exam_id": "x", "report_summary": "两肺纹理清晰，未见明确结节。", "recommendation": "年度随访。"});
    let created = common::create_report(&server, study, &report);
    let id = created["id"].as_i64().unwrap();
    let signed = server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).send().unwrap();
    assert_eq!(signed.status(), 200);

    // The folder copy lands at once (HL7 and PDF); the POST fails and waits, its error recorded.
    let view = |server: &Server| server.get(&format!("/api/v1/reports/{id}")).json::<Value>().unwrap();
    let http_row =
        |v: &Value| v["deliveries"].as_array().unwrap().iter().find(|d| d["target"] == "http").cloned().unwrap();
    wait_for("the POST to fail once", || {
        let row = http_row(&view(&server));
        (row["attempts"].as_i64() >= Some(1)).then_some(row)
    });
    let folder_files = wait_for("the folder copies", || {
        let mut names: Vec<String> =
            std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        names.sort();
        (names.len() == 2).then_some(names)
    });
    assert!(
        folder_files[0].ends_with("-v1-signed.hl7") && folder_files[1].ends_with("-v1-signed.pdf"),
        "{folder_files:?}"
    );
    let row = http_row(&view(&server));
    assert_eq!(row["state"], "pending");
    assert!(row["last_error"].as_str().unwrap().contains("POST"), "{row}");
    let metrics = server.metrics();
    assert!(metrics.contains("medgemma_x_report_deliveries{state=\"pending\"} 1"), "{metrics}");

    // kill -9, the HIS comes up, the server comes back: the delivery goes out from the database.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let received = his(TcpListener::bind(("127.0.0.1", port)).expect("the HIS's port is free again"));
    let server = Server::start(&args, &[]);
    let (content_type, body) = received.recv_timeout(Duration::from_secs(30)).expect("the HIS receives the report");
    assert!(content_type.starts_with("x-application/hl7-v2+er7"), "{content_type}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("MSH|") && text.contains("ORU^R01") && text.contains("P-HIS-1"), "{text}");
    assert!(text.contains("两肺纹理清晰"));
    let file = data.path().join("received.hl7");
    std::fs::write(&file, &text).unwrap();
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../report/tests/validate_hl7.py");
    let checked = Command::new(python).args(["-W", "ignore"]).arg(script).arg(&file).output().unwrap();
    assert!(checked.status.success(), "hl7apy STRICT: {}", String::from_utf8_lossy(&checked.stderr));

    let row = wait_for("the delivery to be marked delivered", || {
        let row = http_row(&view(&server));
        (row["state"] == "delivered").then_some(row)
    });
    assert!(row["attempts"].as_i64().unwrap() >= 2 && row["delivered_at"].is_string(), "{row}");
    assert!(received.recv_timeout(Duration::from_secs(3)).is_err(), "delivered once, not again");
    let listed: Value =
        server.admin().get(server.url("/api/v1/deliveries?state=delivered")).send().unwrap().json().unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let metrics = server.metrics();
    assert!(metrics.contains("medgemma_x_report_deliveries{state=\"pending\"} 0"), "{metrics}");
    assert!(metrics.contains("medgemma_x_report_deliveries{state=\"delivered\"} 3"), "{metrics}");
}

/// Two studies with the same accession number (the DICOM fixtures all carry CZ20251015-001) each get
/// their own files in the HIS folder: one report never overwrites another's.
#[test]
fn reports_that_share_an_accession_number_get_their_own_files() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("his-folder");
    std::fs::create_dir_all(&folder).unwrap();
    let args = ["--data-dir", data.path().to_str().unwrap(), "--his-folder", folder.to_str().unwrap()];
    let server = Server::start(&args, &[]);
    let mut exams = Vec::new();
    for fixture in ["synthetic/ct_phantom.dcm", "synthetic/cr_monochrome1.dcm"] {
        let (study, _) = common::upload_fixture(&server, fixture);
        let report = json!({"exam_id": "x", "report_summary": "未见异常。", "recommendation": "随访。"});
        let created = common::create_report(&server, study, &report);
        exams.push(created["report"]["exam_id"].as_str().unwrap().to_string());
        let id = created["id"].as_i64().unwrap();
        let signed = server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).send().unwrap();
        assert_eq!(signed.status(), 200);
    }
    assert_eq!(exams, ["CZ20251015-001", "CZ20251015-001"], "both reports name the same accession number");
    let names = wait_for("four folder copies (HL7 and PDF of each report)", || {
        let mut names: Vec<String> =
            std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        names.sort();
        (names.len() == 4).then_some(names)
    });
    assert_eq!(names.iter().filter(|n| n.ends_with("-v1-signed.hl7")).count(), 2, "{names:?}");
}

#[test]
fn an_https_endpoint_is_refused_at_start_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--his-url",
            "https://his.local/oru",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS-terminating proxy"), "{err}");
}
