//! Upload, list, render, probe and measure through the running server, as the viewer and an integrator
//! would. Fixtures: imaging/tests/fixtures/make_dicom_fixtures.py (scripts/test.sh generates them).

mod common;

use std::io::Write;
use std::process::Command;

use common::{BIN, Server, create_token, dicom_fixture};
use reqwest::blocking::multipart;
use serde_json::Value;
use sha2::Digest;

fn part(path: &str) -> multipart::Part {
    let file = dicom_fixture(path);
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name(name)
}

fn upload(server: &Server, form: multipart::Form) -> (u16, Value) {
    let response = server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

fn get_json(server: &Server, path: &str) -> Value {
    let response = server.get(path);
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().unwrap()
}

fn outcome<'a>(body: &'a Value, name_suffix: &str) -> &'a Value {
    body["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().ends_with(name_suffix))
        .unwrap_or_else(|| panic!("no outcome for {name_suffix} in {body:#}"))
}

/// A zip of some fixtures, built here.
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (entry, fixture) in files {
            zip.start_file(*entry, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(&std::fs::read(dicom_fixture(fixture)).unwrap()).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn a_mixed_batch_lands_every_good_file_and_names_each_bad_one() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let exam_zip = zip_of(&[
        ("CD/IMG001", "pydicom/CT_small.dcm"),
        ("CD/IMG002", "hostile/huge_declared.dcm"),
        ("CD/DICOMDIR", "pydicom/rtplan.dcm"),
    ]);
    let form = multipart::Form::new()
        .text("patient_id", "P0002")
        .text("patient_name", "赵六")
        .text("exam_date", "2025-10-15")
        .text("pixel_spacing_mm", "0.15")
        .part("files", part("synthetic/ct_phantom.dcm"))
        .part("files", part("synthetic/name_gb18030.dcm"))
        .part("files", part("synthetic/cxr.jpg"))
        .part("files", part("hostile/truncated.dcm"))
        .part("files", part("hostile/bomb.zip"))
        .part("files", part("hostile/deep_nesting.dcm"))
        .part("files", multipart::Part::bytes(exam_zip).file_name("exam.zip"))
        .part("files", multipart::Part::bytes(b"hello, not an image".to_vec()).file_name("notes.txt"));
    let (status, body) = upload(&server, form);
    assert_eq!(status, 207, "{body:#}");
    assert_eq!((body["stored"].as_u64(), body["rejected"].as_u64()), (Some(4), Some(5)), "{body:#}");
    for (name, code) in [
        ("truncated.dcm", "truncated"),
        ("bomb.zip/IMG0001.dcm", "too_large"),
        ("deep_nesting.dcm", "nesting_too_deep"),
        ("exam.zip/CD/IMG002", "too_large"),
        ("notes.txt", "unknown_format"),
    ] {
        let f = outcome(&body, name);
        assert_eq!((f["status"].as_str(), f["code"].as_str()), (Some("rejected"), Some(code)), "{name}: {f}");
        assert!(!f["message_zh"].as_str().unwrap().is_empty() && !f["message_en"].as_str().unwrap().is_empty());
    }
    assert_eq!(outcome(&body, "exam.zip/CD/IMG001")["status"], "stored");
    // DICOMDIR is an index, not an image: skipped, not rejected.
    assert!(body["files"].as_array().unwrap().iter().all(|f| !f["name"].as_str().unwrap().ends_with("DICOMDIR")));

    // The worklist: the GB18030 name reads right; the JPEG carries the uploader's identity.
    let list = get_json(&server, "/api/v1/studies");
    assert_eq!(list["total"], 4, "{list:#}");
    let found = get_json(&server, "/api/v1/studies?q=%E7%8E%8B%E5%B0%8F"); // 王小
    assert_eq!(found["total"], 1);
    assert_eq!(found["studies"][0]["patient_name"], "王小明");
    let jpeg_study = outcome(&body, "cxr.jpg")["study_id"].as_i64().unwrap();
    let study = get_json(&server, &format!("/api/v1/studies/{jpeg_study}"));
    assert_eq!((study["patient_name"].as_str(), study["patient_id"].as_str()), (Some("赵六"), Some("P0002")));
    assert_eq!((study["study_date"].as_str(), study["source"].as_str()), (Some("20251015"), Some("upload")));
    let jpeg_instance = study["series"][0]["instances"][0]["id"].as_i64().unwrap();
    let detail = get_json(&server, &format!("/api/v1/instances/{jpeg_instance}"));
    assert_eq!(detail["spacing"]["source"], "uploader");
    assert_eq!(detail["spacing"]["caveat_zh"], "像素间距由上传者提供");

    // The same files again: idempotent.
    let form =
        multipart::Form::new().part("files", part("synthetic/ct_phantom.dcm")).part("files", part("synthetic/cxr.jpg"));
    let (status, again) = upload(&server, form);
    assert_eq!(status, 200, "{again:#}");
    assert_eq!(again["duplicates"], 2);
    assert_eq!(get_json(&server, "/api/v1/studies")["total"], 4);
}

#[test]
fn single_rejections_get_their_own_status_and_limits_hold() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        &["--data-dir", data.path().to_str().unwrap(), "--max-file-mb", "1", "--max-upload-mb", "3"],
        &[],
    );
    let one = |path: &str| upload(&server, multipart::Form::new().part("files", part(path))).0;
    assert_eq!(one("hostile/huge_declared.dcm"), 413);
    assert_eq!(one("hostile/truncated.dcm"), 422);
    assert_eq!(one("pydicom/examples_palette.dcm"), 415);

    // A file over --max-file-mb is refused; the others in the request land.
    let big = vec![7u8; 3 << 19]; // 1.5 MiB
    let form = multipart::Form::new()
        .part("files", multipart::Part::bytes(big).file_name("big.dcm"))
        .part("files", part("synthetic/cr_monochrome1.dcm"));
    let (status, body) = upload(&server, form);
    assert_eq!(status, 207, "{body:#}");
    assert_eq!(outcome(&body, "big.dcm")["code"], "too_large");
    assert_eq!(outcome(&body, "cr_monochrome1.dcm")["status"], "stored");

    // A request over --max-upload-mb stops with 413; what came before it landed. The server answers
    // without reading the rest, so a client still sending may see the connection close instead of the
    // answer (HTTP/1.1 has no way around that); either way the first file is stored and the log says why.
    let form = multipart::Form::new()
        .part("files", part("synthetic/ct_phantom.dcm"))
        .part("files", multipart::Part::bytes(vec![0u8; 4 << 20]).file_name("huge.bin"));
    match server.client().post(server.url("/api/v1/uploads")).multipart(form).send() {
        Ok(response) => {
            assert_eq!(response.status().as_u16(), 413);
            let body: Value = response.json().unwrap();
            assert_eq!(outcome(&body, "ct_phantom.dcm")["status"], "stored", "{body:#}");
        }
        Err(e) => assert!(e.is_body() || e.is_request(), "{e}"),
    }
    let studies = get_json(&server, "/api/v1/studies");
    assert!(studies["studies"].as_array().unwrap().iter().any(|s| s["patient_name"] == "PHANTOM CT"), "{studies:#}");
    let logs: String = std::fs::read_dir(data.path().join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(logs.contains("upload request ended early") && logs.contains("413"), "413 not logged");

    // Bad form fields are refused before any file is read.
    let (status, body) = upload(
        &server,
        multipart::Form::new().text("exam_date", "15/10/2025").part("files", part("synthetic/cxr.jpg")),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
}

#[test]
fn render_values_measure_and_download_match_the_file() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let form = multipart::Form::new().part("files", part("synthetic/ct_phantom_dirty_preamble.dcm"));
    let (status, body) = upload(&server, form);
    assert_eq!(status, 200, "{body:#}");
    let id = body["files"][0]["instance_id"].as_i64().unwrap();

    let detail = get_json(&server, &format!("/api/v1/instances/{id}"));
    assert_eq!(detail["metadata"]["pixel_spacing_mm"], serde_json::json!([0.7, 0.7]));
    assert_eq!(detail["spacing"]["source"], "pixel_spacing");
    let keys: Vec<&str> = detail["windows"].as_array().unwrap().iter().map(|w| w["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["file-1", "file-2", "lung", "mediastinum", "bone", "soft_tissue"]);

    // The endpoint's PNG is byte for byte what `medgemma-x dicom render` writes (one function).
    let response =
        server.get(&format!("/api/v1/instances/{id}/frames/1/image.png?window_center=-600&window_width=1500"));
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-window-width"], "1500");
    let served = response.bytes().unwrap();
    let out = data.path().join("cli.png");
    let cli = Command::new(BIN)
        .args(["dicom", "render", dicom_fixture("synthetic/ct_phantom.dcm").to_str().unwrap()])
        .args(["--window-center", "-600", "--window-width", "1500", "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cli.success());
    assert_eq!(served.as_ref(), std::fs::read(&out).unwrap().as_slice());
    let png = image::load_from_memory(&served).unwrap().to_luma8();
    // Lung (−850 HU) in the lung window: ((−850 + 600.5) / 1499 + 0.5) × 255 = 85.06 → 85.
    assert_eq!(png.get_pixel(5, 5)[0], 85);

    // Raw values: whole HU fit in i16; sent as they are even to a client that accepts gzip (compressing a
    // large frame costs more than the LAN time it saves).
    let response = server
        .client()
        .get(server.url(&format!("/api/v1/instances/{id}/frames/1/values")))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(response.headers()["x-sample-format"], "i16");
    assert_eq!(
        (response.headers()["x-rows"].to_str().unwrap(), response.headers()["x-columns"].to_str().unwrap()),
        ("256", "256")
    );
    let raw = response.bytes().unwrap();
    assert_eq!(raw.len(), 256 * 256 * 2);
    assert_eq!(i16::from_le_bytes([raw[0], raw[1]]), -850);

    // Automatic measurement from a click on the larger nodule (23.4 × 19.1 mm at 40 HU).
    let result: Value = server
        .client()
        .post(server.url(&format!("/api/v1/instances/{id}/frames/1/nodule")))
        .json(&serde_json::json!({"x": 170.0, "y": 160.0}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (long, short) =
        (result["axes"]["long_axis_mm"].as_f64().unwrap(), result["axes"]["short_axis_mm"].as_f64().unwrap());
    assert!((long - 23.4).abs() <= 0.7 && (short - 19.1).abs() <= 0.7, "{result:#}");
    assert_eq!(result["basis"]["units"], "HU");
    assert!(result["basis"]["method_zh"].as_str().unwrap().contains("阈值"));
    // A click in empty lung is refused with a reason.
    let response = server
        .client()
        .post(server.url(&format!("/api/v1/instances/{id}/frames/1/nodule")))
        .json(&serde_json::json!({"x": 20.0, "y": 230.0}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);

    // The stored file is the upload with its preamble zeroed.
    let stored = server.get(&format!("/api/v1/instances/{id}/file")).bytes().unwrap();
    let original = std::fs::read(dicom_fixture("synthetic/ct_phantom_dirty_preamble.dcm")).unwrap();
    assert!(stored[..128].iter().all(|b| *b == 0));
    assert_eq!(&stored[128..], &original[128..]);

    // Out-of-range frames and unknown instances are 404 in both languages.
    let response = server.get(&format!("/api/v1/instances/{id}/frames/2/image.png"));
    assert_eq!(response.status().as_u16(), 404);
    let response = server.get("/api/v1/instances/999999");
    assert_eq!(response.status().as_u16(), 404);
}

/// kill -9 while a batch is half uploaded, then start again: the database is intact, every stored object is
/// whole (its name is its hash), the file that had fully arrived is there, and the partial one is cleaned
/// up and reported in the log.
#[test]
fn kill_9_during_an_upload_loses_nothing_that_landed() {
    use std::io::Write as _;
    use std::net::TcpStream;

    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let mut server = Server::start(&["--data-dir", dir], &[]);
    let token = create_token(dir, "pacs-bridge", "study_upload");

    // A hand-written request: the first file whole, the second cut off in the middle.
    let first = std::fs::read(dicom_fixture("synthetic/ct_phantom.dcm")).unwrap();
    let second = std::fs::read(dicom_fixture("synthetic/cr_monochrome1.dcm")).unwrap();
    let boundary = "medgemma-x-test-boundary";
    let part = |name: &str, bytes: &[u8]| {
        let mut p = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        p.extend_from_slice(bytes);
        p.extend_from_slice(b"\r\n");
        p
    };
    let mut body = part("first.dcm", &first);
    body.extend(part("second.dcm", &second));
    body.extend(format!("--{boundary}--\r\n").into_bytes());
    let cut = body.len() - second.len() / 2;
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /api/v1/uploads HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..cut]).unwrap();
    stream.flush().unwrap();
    // Wait until the first file is recorded (its study appears), then kill the server mid-way through the second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get_json(&server, "/api/v1/studies")["total"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the first file never landed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let partial: Vec<_> = std::fs::read_dir(data.path().join("tmp")).unwrap().collect();
    assert_eq!(partial.len(), 1, "the second file is being received into tmp/");
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(stream);

    let server = Server::start(&["--data-dir", dir], &[]);
    assert_eq!(get_json(&server, "/api/v1/studies")["total"], 1);
    assert_eq!(std::fs::read_dir(data.path().join("tmp")).unwrap().count(), 0, "partial upload cleaned");
    let logs: String = std::fs::read_dir(data.path().join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(logs.contains("removed partial uploads left by an earlier crash"), "not reported in the log");
    // Every object is whole: its name is the SHA-256 of its bytes.
    for shard in std::fs::read_dir(data.path().join("objects")).unwrap() {
        for object in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = object.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(!name.starts_with('.'), "a temporary object file survived: {name}");
            let sha: String =
                sha2::Sha256::digest(std::fs::read(&path).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(sha, name);
        }
    }
    // SQLite's own check of the database file.
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(data.path().join("db/medgemma-x.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn uploads_stop_before_the_disk_fills() {
    let data = tempfile::tempdir().unwrap();
    // More free space required than any test machine has: every upload meets a "full" disk.
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap(), "--min-free-disk-mb", "1000000000"], &[]);
    let (status, body) = upload(&server, multipart::Form::new().part("files", part("synthetic/cxr.jpg")));
    assert_eq!(status, 507, "{body:#}");
    assert_eq!(body["files"][0]["code"], "disk_full");
    assert!(body["files"][0]["message_zh"].as_str().unwrap().contains("磁盘空间不足"));
    assert_eq!(get_json(&server, "/api/v1/studies")["total"], 0);
}

#[test]
fn metrics_count_requests_by_route_template_and_uploads_by_outcome() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let form =
        multipart::Form::new().part("files", part("synthetic/cxr.jpg")).part("files", part("hostile/truncated.dcm"));
    assert_eq!(upload(&server, form).0, 207);
    get_json(&server, "/api/v1/studies");
    get_json(&server, "/api/v1/studies");
    assert_eq!(server.get("/api/v1/instances/424242").status().as_u16(), 404);

    let text = server.metrics();
    let value = |series: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
    };
    assert_eq!(
        value(r#"medgemma_x_http_requests_total{method="GET",route="/api/v1/studies",status="200"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"medgemma_x_http_requests_total{method="GET",route="/api/v1/instances/{id}",status="404"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"medgemma_x_http_requests_total{method="POST",route="/api/v1/uploads",status="207"}"#),
        Some(1.0)
    );
    assert_eq!(value(r#"medgemma_x_uploaded_files_total{outcome="stored",code=""}"#), Some(1.0));
    assert_eq!(value(r#"medgemma_x_uploaded_files_total{outcome="rejected",code="truncated"}"#), Some(1.0));
    assert_eq!(value(r#"medgemma_x_http_request_duration_seconds_count{route="/api/v1/studies"}"#), Some(2.0));
    assert!(!text.contains("424242"), "concrete ids must not become labels");
}

/// The CT phantom with some of its text swapped for text of the same length, so that every element keeps
/// its length and the file stays valid: another patient's ID, another name, a new UID.
fn phantom_with(replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut bytes = std::fs::read(dicom_fixture("synthetic/ct_phantom.dcm")).unwrap();
    for (from, to) in replacements {
        assert_eq!(from.len(), to.len(), "{from} → {to}");
        let positions: Vec<usize> =
            bytes.windows(from.len()).enumerate().filter(|(_, w)| *w == from.as_bytes()).map(|(i, _)| i).collect();
        assert!(!positions.is_empty(), "{from} is not in the phantom");
        for at in positions {
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        }
    }
    bytes
}

#[test]
fn a_file_reusing_another_patients_study_or_series_uid_is_refused_never_merged() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let send = |name: &str, bytes: Vec<u8>| {
        upload(&server, multipart::Form::new().part("files", multipart::Part::bytes(bytes).file_name(name.to_string())))
    };
    let (status, body) = upload(&server, multipart::Form::new().part("files", part("synthetic/ct_phantom.dcm")));
    assert_eq!(status, 200, "{body:#}");
    let study = body["files"][0]["study_id"].as_i64().unwrap();
    // The phantom's identity, as stored: the fixture script draws new UIDs on every machine.
    let detail = get_json(&server, &format!("/api/v1/studies/{study}"));
    let sop = detail["series"][0]["instances"][0]["sop_instance_uid"].as_str().unwrap().to_string();
    let sop = sop.as_str();
    let study_uid = detail["study_uid"].as_str().unwrap().to_string();
    let study_uid = study_uid.as_str();
    // A UID of the same length with its last digit moved on by `step` (1..=9: never the UID itself).
    let other_uid = |uid: &str, step: u8| {
        let last = uid.as_bytes()[uid.len() - 1] - b'0';
        format!("{}{}", &uid[..uid.len() - 1], (last + step) % 10)
    };
    let new_sop = |step: &str| other_uid(sop, step.parse().unwrap());

    // Another patient's ID, or the same ID under another name, in the phantom's study: refused.
    let other_patient = phantom_with(&[("P0001", "P0666"), (sop, &new_sop("1"))]);
    let other_name = phantom_with(&[("PHANTOM^CT", "INTRUDER^X"), (sop, &new_sop("2"))]);
    // A new study of the same patient that reuses the phantom's series UID: refused too.
    let stolen_series = phantom_with(&[(study_uid, &other_uid(study_uid, 1)), (sop, &new_sop("3"))]);
    for (name, bytes) in
        [("other_patient.dcm", other_patient), ("other_name.dcm", other_name), ("series.dcm", stolen_series)]
    {
        let (status, body) = send(name, bytes);
        assert_eq!(status, 409, "{name}: {body:#}");
        assert_eq!(body["files"][0]["code"], "uid_conflict", "{name}: {body:#}");
        assert!(body["files"][0]["message_zh"].as_str().unwrap().contains("另一患者"), "{body:#}");
    }
    // Nothing was merged: one study, one instance, one patient.
    let list = get_json(&server, "/api/v1/studies");
    assert_eq!(list["total"], 1, "{list:#}");
    assert_eq!(list["studies"][0]["instance_count"], 1);
    assert_eq!(list["studies"][0]["patient_id"], "P0001");
    assert_eq!(get_json(&server, "/api/v1/studies?q=P0666")["total"], 0);

    // The same patient's next image of that study still lands in it.
    let (status, body) = send("next_slice.dcm", phantom_with(&[(sop, &new_sop("4"))]));
    assert_eq!((status, body["files"][0]["study_id"].as_i64()), (200, Some(study)), "{body:#}");

    // Each refusal is in the audit trail.
    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=100")).send().unwrap().json().unwrap();
    let refused = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "POST /api/v1/uploads" && r["detail"].as_str().is_some_and(|d| d.contains("uid_conflict"))
        })
        .count();
    assert_eq!(refused, 3, "{rows:#}");
}
