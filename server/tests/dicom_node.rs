//! The DICOM listener against DCMTK (Debian `dcmtk`: `echoscu`, `storescu`, `findscu`), peers that no one
//! here wrote: verification, known and unknown AE titles, films sent in each transfer syntax a console
//! proposes, a whole folder in one association, PDUs at the smallest size, an instance over the size limit,
//! queries at the study and series levels.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, dicom_fixture};
use serde_json::Value;

const OUR_AE: &str = "MEDGEMMAX";

fn start(data: &tempfile::TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--data-dir", data.path().to_str().unwrap(), "--dicom-bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Server::start(&args, &[])
}

/// The port the server's DICOM listener took (from /readyz).
fn dicom_port(server: &Server) -> String {
    let ready: Value = reqwest::blocking::get(server.url("/readyz")).unwrap().json().unwrap();
    let listening = ready["dicom"]["listening"].as_str().unwrap_or_else(|| panic!("not listening: {ready:#}"));
    assert_eq!(ready["dicom"]["ae_title"], OUR_AE);
    listening.rsplit(':').next().unwrap().to_string()
}

fn add_peer(data: &tempfile::TempDir, ae: &str) {
    let out = Command::new(BIN)
        .args(["dicom", "peer", "add", ae, "--host", "127.0.0.1", "--port", "104"])
        .args(["--data-dir", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "peer add: {}", String::from_utf8_lossy(&out.stderr));
}

/// A DCMTK tool by its Debian path: pynetdicom in the venv installs commands of the same names.
fn dcmtk(tool: &str, args: &[&str]) -> Output {
    let path = format!("/usr/bin/{tool}");
    Command::new(&path).args(args).output().unwrap_or_else(|e| panic!("{path} (Debian dcmtk) not runnable: {e}"))
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn films(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| dicom_fixture(n).to_str().unwrap().to_string()).collect()
}

fn studies(server: &Server) -> Vec<Value> {
    let list: Value = server.get("/api/v1/studies?limit=100").json().unwrap();
    list["studies"].as_array().unwrap().clone()
}

fn audit_actions(server: &Server) -> Vec<Value> {
    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=500")).send().unwrap().json().unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str().unwrap_or("").starts_with("dicom."))
        .cloned()
        .collect()
}

/// An uncompressed 24-bit BMP, all black.
fn black_bmp(width: u32, height: u32) -> Vec<u8> {
    let pixels = (width * height * 3) as usize;
    let mut bmp = b"BM".to_vec();
    for value in [54 + pixels as u32, 0, 54, 40, width, height] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
    bmp.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    for value in [0, pixels as u32, 2835, 2835, 0, 0] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    bmp.resize(54 + pixels, 0);
    bmp
}

#[test]
fn echo_answers_known_peers_and_refuses_unknown_and_misaddressed_ones() {
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let port = dicom_port(&server);
    add_peer(&data, "CR_ROOM1");

    let known = dcmtk("echoscu", &["-aet", "CR_ROOM1", "-aec", OUR_AE, "127.0.0.1", &port]);
    assert!(known.status.success(), "C-ECHO from a known peer: {}", said(&known));

    let stranger = dcmtk("echoscu", &["-aet", "STRANGER", "-aec", OUR_AE, "127.0.0.1", &port]);
    assert!(!stranger.status.success());
    assert!(said(&stranger).contains("Calling AE Title Not Recognized"), "{}", said(&stranger));

    let misaddressed = dcmtk("echoscu", &["-aet", "CR_ROOM1", "-aec", "PACS", "127.0.0.1", &port]);
    assert!(!misaddressed.status.success());
    assert!(said(&misaddressed).contains("Called AE Title Not Recognized"), "{}", said(&misaddressed));

    let rows = audit_actions(&server);
    let outcomes: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["actor_name"].as_str().unwrap_or("?"), r["outcome"].as_str().unwrap())).collect();
    assert!(outcomes.contains(&("CR_ROOM1", "ok")), "{rows:#?}");
    assert_eq!(outcomes.iter().filter(|(_, o)| *o == "denied").count(), 2, "{rows:#?}");
    // The HTTP side never noticed.
    assert_eq!(server.get("/healthz").status(), 200);

    // The console's status shows the listener and the last associations (from the log).
    let status = Command::new(BIN).args(["status", "--data-dir", data.path().to_str().unwrap()]).output().unwrap();
    let status = said(&status);
    assert!(status.contains(&format!("DICOM：{OUR_AE} 监听 127.0.0.1:{port}")), "{status}");
    assert!(status.contains("CR_ROOM1 from 127.0.0.1: stored 0, failed 0"), "{status}");
    assert!(
        status.contains("refused from 127.0.0.1: association rejected calling AE title not recognized"),
        "{status}"
    );
}

#[test]
fn storescu_sends_films_in_each_proposed_transfer_syntax_and_a_folder_in_one_association() {
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &["--dicom-accept-any"]);
    let port = dicom_port(&server);
    let send = |options: &[&str], files: &[String]| {
        let mut args = vec!["-aet", "DR_ROOM2", "-aec", OUR_AE];
        args.extend_from_slice(options);
        args.extend(["127.0.0.1", port.as_str()]);
        args.extend(files.iter().map(String::as_str));
        let out = dcmtk("storescu", &args);
        assert!(out.status.success(), "storescu {options:?}: {}", said(&out));
        said(&out)
    };
    // Explicit VR little endian proposed first; then implicit only; then JPEG lossless (the file as it is).
    send(&["-xe"], &films(&["synthetic/cr_monochrome1.dcm"]));
    send(&["-xi"], &films(&["pydicom/CT_small.dcm"]));
    send(&["-xs"], &films(&["pydicom/CT_small_jpeg_lossless_sv1.dcm"]));
    let landed = studies(&server);
    assert_eq!(landed.len(), 2, "a CR film and the CT study (sent twice, in two syntaxes): {landed:#?}");
    assert!(landed.iter().all(|s| s["source"] == "dicom"), "{landed:#?}");

    // A folder of films in one association (storescu +sd: scan the directory).
    let folder = tempfile::tempdir().unwrap();
    for name in ["synthetic/ct_phantom.dcm", "synthetic/grey32.dcm", "pydicom/MR_small.dcm"] {
        let file = dicom_fixture(name);
        std::fs::copy(&file, folder.path().join(Path::new(name).file_name().unwrap())).unwrap();
    }
    send(&["+sd", "-R"], &[folder.path().to_str().unwrap().to_string()]);
    assert_eq!(studies(&server).len(), 5);
    // The same MR slice again, RLE-compressed (-xr proposes RLE): a duplicate, answered success.
    send(&["-xr"], &films(&["pydicom/MR_small_RLE.dcm"]));
    assert_eq!(studies(&server).len(), 5);

    let rows = audit_actions(&server);
    let stores = rows.iter().filter(|r| r["action"] == "dicom.store" && r["outcome"] == "ok").count();
    assert_eq!(stores, 7, "every instance received has its audit row: {rows:#?}");
    let associations: Vec<&Value> = rows.iter().filter(|r| r["action"] == "dicom.association").collect();
    assert_eq!(associations.len(), 5, "five associations, the folder in one: {rows:#?}");
    assert!(associations.iter().all(|r| r["actor_name"] == "DR_ROOM2"), "{rows:#?}");
    assert!(associations.iter().any(|r| r["detail"].as_str().unwrap().contains("stored=3")), "{rows:#?}");
    let ready: Value = reqwest::blocking::get(server.url("/readyz")).unwrap().json().unwrap();
    assert_eq!(
        (ready["dicom"]["associations"].as_u64(), ready["dicom"]["instances_stored"].as_u64()),
        (Some(5), Some(7))
    );
}

#[test]
fn the_smallest_pdu_and_an_instance_over_the_size_limit() {
    let data = tempfile::tempdir().unwrap();
    // 4 KiB PDUs: a 130 KB CT slice arrives in over thirty fragments. Files over 1 MiB are refused. (The
    // association request must fit in 4 KiB too: -R proposes only the contexts the files need.)
    let server = start(&data, &["--dicom-accept-any", "--dicom-max-pdu", "4096", "--max-file-mb", "1"]);
    let port = dicom_port(&server);
    let ct = films(&["synthetic/ct_phantom.dcm"]).remove(0);
    let fragmented = dcmtk("storescu", &["-R", "-aec", OUR_AE, "127.0.0.1", &port, &ct]);
    assert!(fragmented.status.success(), "{}", said(&fragmented));
    assert_eq!(studies(&server).len(), 1);

    // The largest PDU storescu offers to receive, against ours: still one clean association.
    let largest = dcmtk(
        "storescu",
        &[
            "-R",
            "-aec",
            OUR_AE,
            "--max-pdu",
            "131072",
            "127.0.0.1",
            &port,
            &films(&["synthetic/cr_monochrome1.dcm"])[0],
        ],
    );
    assert!(largest.status.success(), "{}", said(&largest));
    assert_eq!(studies(&server).len(), 2);

    // A 1024 × 1024 RGB capture (3 MiB of pixels, made by DCMTK's img2dcm from a BMP): over the limit.
    let big = tempfile::tempdir().unwrap();
    let (bmp, file) = (big.path().join("big.bmp"), big.path().join("big.dcm"));
    std::fs::write(&bmp, black_bmp(1024, 1024)).unwrap();
    let made = dcmtk("img2dcm", &["-i", "BMP", bmp.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(made.status.success(), "{}", said(&made));
    let refused = dcmtk("storescu", &["-v", "-R", "-aec", OUR_AE, "127.0.0.1", &port, file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(said(&refused).contains("Received Store Response (Refused: OutOfResources)"), "{}", said(&refused));
    assert_eq!(studies(&server).len(), 2, "nothing of the refused instance landed");
    let rows = audit_actions(&server);
    let failed: Vec<&Value> =
        rows.iter().filter(|r| r["action"] == "dicom.store" && r["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:#?}");
    assert_eq!(failed[0]["status"], 0xA700, "{rows:#?}");
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "no half-written file stays: {leftovers:?}");
}

/// A study that arrives by C-STORE is pre-read like an upload (once its association has ended).
#[test]
fn a_study_received_by_c_store_is_pre_read() {
    let _serial = common::chat::one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let model = common::fixture("tiny-a");
    let server = start(&data, &["--dicom-accept-any", "--model-dir", model.to_str().unwrap()]);
    common::chat::wait_for_model(&server);
    let port = dicom_port(&server);
    let sent =
        dcmtk("storescu", &["-R", "-aec", OUR_AE, "127.0.0.1", &port, &films(&["synthetic/cr_monochrome1.dcm"])[0]]);
    assert!(sent.status.success(), "{}", said(&sent));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let landed = studies(&server);
        if landed.len() == 1 && landed[0]["pre_read"] == "ready" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no pre-read: {landed:#?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The PACS stand-in (pynetdicom's storage SCP on loopback, tests/fixtures/pacs_scp.py): killed on drop.
struct Pacs {
    child: std::process::Child,
    port: u16,
}

impl Pacs {
    fn start(out: &Path) -> Pacs {
        use std::io::BufRead;
        let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pacs_scp.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test.sh for the venv)", python.display()));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port =
            line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("PACS said {line:?}")).parse().unwrap();
        Pacs { child, port }
    }
}

impl Drop for Pacs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed report reaches the PACS as an Encapsulated PDF instance of its own study, in a series of its
/// own, from the delivery outbox; the PDF inside is the report's. The countersigned one follows as a second
/// instance of that series.
#[test]
fn a_signed_report_reaches_the_pacs_as_an_encapsulated_pdf() {
    let received = tempfile::tempdir().unwrap();
    let pacs = Pacs::start(received.path());
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &["--dicom-accept-any", "--dicom-reports-to", "PACS"]);
    let out = Command::new(BIN)
        .args(["dicom", "peer", "add", "PACS", "--host", "127.0.0.1", "--port", &pacs.port.to_string()])
        .args(["--data-dir", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let port = dicom_port(&server);
    let sent = dcmtk("storescu", &["-R", "-aec", OUR_AE, "127.0.0.1", &port, &films(&["synthetic/ct_phantom.dcm"])[0]]);
    assert!(sent.status.success(), "{}", said(&sent));
    let study = studies(&server).remove(0);
    let report =
        serde_json::json!({"exam_id": "CT-PACS-1", "report_summary": "两肺未见结节。", "recommendation": "随访。"});
    let id = common::create_report(&server, study["id"].as_i64().unwrap(), &report)["id"].as_i64().unwrap();
    let signed =
        server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&serde_json::json!({})).send();
    assert_eq!(signed.unwrap().status(), 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let file = loop {
        if let Some(entry) = std::fs::read_dir(received.path()).unwrap().next() {
            break entry.unwrap().path();
        }
        let view: Value = server.get(&format!("/api/v1/reports/{id}")).json().unwrap();
        assert!(std::time::Instant::now() < deadline, "nothing reached the PACS: {:#}", view["deliveries"]);
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    std::thread::sleep(std::time::Duration::from_millis(300)); // the SCP finishes writing
    let dump = dcmtk(
        "dcmdump",
        &["-q", "+P", "0008,0016", "+P", "0020,000d", "+P", "0020,000e", "+P", "0008,0060", file.to_str().unwrap()],
    );
    let dump = said(&dump);
    assert!(dump.contains("EncapsulatedPDFStorage"), "{dump}");
    assert!(dump.contains(study["study_uid"].as_str().unwrap()), "the report's own study: {dump}");
    assert!(dump.contains("DOC"), "{dump}");
    let pdf = received.path().join("report.pdf");
    let extracted = dcmtk("dcm2pdf", &[file.to_str().unwrap(), pdf.to_str().unwrap()]);
    assert!(extracted.status.success(), "{}", said(&extracted));
    // The same document as our export (its bytes differ only in the PDF's own creation time and id).
    let ours = received.path().join("ours.pdf");
    std::fs::write(&ours, server.get(&format!("/api/v1/reports/{id}/export?format=pdf")).bytes().unwrap()).unwrap();
    let text = |file: &Path| {
        let out = Command::new("/usr/bin/pdftotext").args([file.to_str().unwrap(), "-"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (theirs, ours) = (text(&pdf), text(&ours));
    assert!(
        theirs.contains(study["accession_number"].as_str().unwrap()) && theirs.contains("两肺未见结节"),
        "{theirs}"
    );
    assert_eq!(theirs, ours, "the PACS holds the PDF we export");

    let view: Value = server.get(&format!("/api/v1/reports/{id}")).json().unwrap();
    let to_pacs: Vec<&Value> =
        view["deliveries"].as_array().unwrap().iter().filter(|d| d["target"] == "dicom").collect();
    assert_eq!(to_pacs.len(), 1, "{:#}", view["deliveries"]);
    // Delivered is recorded just after the PACS answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let view: Value = server.get(&format!("/api/v1/reports/{id}")).json().unwrap();
        let state =
            view["deliveries"].as_array().unwrap().iter().find(|d| d["target"] == "dicom").unwrap()["state"].clone();
        if state == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "delivery state {state}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    common::add_user(data.path().to_str().unwrap(), "head", "department_head", "department review 1");
    let head = common::sign_in(&server.url(""), "head", "department review 1");
    let review = serde_json::json!({"decision": "countersign"});
    let countersigned = head.post(server.url(&format!("/api/v1/reports/{id}/review"))).json(&review).send().unwrap();
    assert_eq!(countersigned.status(), 200, "{}", countersigned.text().unwrap());
    let instances = || -> Vec<std::path::PathBuf> {
        let entries = std::fs::read_dir(received.path()).unwrap().map(|e| e.unwrap().path());
        entries.filter(|p| p.extension() == Some("dcm".as_ref())).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while instances().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the countersigned report did not reach the PACS");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dumps: Vec<String> = instances()
        .iter()
        .map(|p| said(&dcmtk("dcmdump", &["-q", "+P", "0020,0013", "+P", "0020,000e", p.to_str().unwrap()])))
        .collect();
    assert!(dumps.iter().any(|d| d.contains("[1]")) && dumps.iter().any(|d| d.contains("[2]")), "{dumps:#?}");
    let series = |dump: &String| dump.lines().find(|l| l.contains("(0020,000e)")).map(str::to_string);
    assert_eq!(series(&dumps[0]), series(&dumps[1]), "one series for the report: {dumps:#?}");
}

/// The values of one element in the matches of a `findscu -v` log (`(0020,000d) UI [1.2.3]` → `1.2.3`), in
/// order; the request's own dump, before the first response, is left out.
fn values_of(dump: &str, tag: &str) -> Vec<String> {
    let answers = dump.split_once("Find Response").map_or("", |(_, rest)| rest);
    answers
        .lines()
        .filter(|l| l.contains(tag))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.trim_end_matches(['\0', ' ']).to_string()))
        .collect()
}

/// DCMTK's `findscu` against our C-FIND SCP: studies by patient ID and by wildcard name, a date range,
/// the series of one study; a peer without the right to query is refused, and every query is audited.
#[test]
fn findscu_queries_what_we_hold_at_study_and_series_level() {
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &["--dicom-accept-any"]);
    let port = dicom_port(&server);
    for (ae, query, store) in [("READING_WS", true, true), ("CR_ROOM1", false, true), ("ARCHIVE_RO", true, false)] {
        let mut args = vec!["dicom", "peer", "add", ae, "--host", "127.0.0.1", "--port", "104"];
        if query {
            args.push("--query");
        }
        if !store {
            args.push("--no-store");
        }
        let out = Command::new(BIN).args(&args).args(["--data-dir", data.path().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", said(&out));
    }
    let mut args: Vec<String> =
        ["-aet", "CR_ROOM1", "-aec", OUR_AE, "127.0.0.1", &port].iter().map(|a| a.to_string()).collect();
    args.extend(films(&["pydicom/CT_small.dcm", "synthetic/cr_monochrome1.dcm"]));
    let sent = dcmtk("storescu", &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(sent.status.success(), "{}", said(&sent));
    // A peer that may query but not send is refused its C-STORE (0x0124), and nothing lands.
    let refused = dcmtk(
        "storescu",
        &["-v", "-aet", "ARCHIVE_RO", "-aec", OUR_AE, "127.0.0.1", &port, &films(&["pydicom/MR_small.dcm"])[0]],
    );
    assert!(said(&refused).contains("Store Response (Unknown Status: 0x124)"), "{:?}", said(&refused));
    let held = studies(&server);
    assert_eq!(held.len(), 2, "{held:#?}");
    let ct = held.iter().find(|s| s["modalities"][0] == "CT").unwrap_or_else(|| panic!("{held:#?}"));
    let (patient_id, study_uid) = (ct["patient_id"].as_str().unwrap(), ct["study_uid"].as_str().unwrap());

    let find = |calling: &str, keys: &[String]| {
        let mut args = vec!["-v".to_string(), "-S".into(), "-aet".into(), calling.into(), "-aec".into(), OUR_AE.into()];
        for key in keys {
            args.extend(["-k".to_string(), key.clone()]);
        }
        args.extend(["127.0.0.1".to_string(), port.clone()]);
        let out = dcmtk("findscu", &args.iter().map(String::as_str).collect::<Vec<_>>());
        (out.status.success(), said(&out))
    };
    let study_keys = |matching: &[&str]| -> Vec<String> {
        let mut keys: Vec<String> = [
            "QueryRetrieveLevel=STUDY",
            "StudyInstanceUID",
            "PatientName",
            "PatientID",
            "StudyDate",
            "ModalitiesInStudy",
            "NumberOfStudyRelatedInstances",
            "InstitutionName",
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        keys.extend(matching.iter().map(|k| k.to_string()));
        keys
    };

    let (ok, by_id) = find("READING_WS", &study_keys(&[&format!("PatientID={patient_id}")]));
    assert!(ok, "{by_id}");
    assert_eq!(values_of(&by_id, "(0020,000d)"), [study_uid.to_string()], "one match: {by_id}");
    assert_eq!(values_of(&by_id, "(0008,0061)"), ["CT".to_string()], "{by_id}");
    assert_eq!(values_of(&by_id, "(0020,1208)"), ["1".to_string()], "{by_id}");
    assert!(values_of(&by_id, "(0008,0054)").contains(&OUR_AE.to_string()), "retrieve AE: {by_id}");

    let (ok, everyone) = find("READING_WS", &study_keys(&["PatientName=*"]));
    assert!(ok, "{everyone}");
    assert_eq!(values_of(&everyone, "(0020,000d)").len(), 2, "both studies: {everyone}");
    let first_letters: String = ct["patient_name"].as_str().unwrap().chars().take(3).collect();
    let (ok, by_name) = find("READING_WS", &study_keys(&[&format!("PatientName={}*", first_letters.to_lowercase())]));
    assert!(ok, "{by_name}");
    assert!(values_of(&by_name, "(0020,000d)").contains(&study_uid.to_string()), "names ignore case: {by_name}");
    // The name as DICOM writes it (family^given), though we keep it as shown.
    let dicom_name = ct["patient_name"].as_str().unwrap().replace(' ', "^");
    let (ok, by_full_name) = find("READING_WS", &study_keys(&[&format!("PatientName={dicom_name}")]));
    assert!(ok, "{by_full_name}");
    assert_eq!(values_of(&by_full_name, "(0020,000d)"), [study_uid.to_string()], "{by_full_name}");
    let (ok, none) = find("READING_WS", &study_keys(&["StudyDate=19000101-19001231"]));
    assert!(ok, "{none}");
    assert!(values_of(&none, "(0020,000d)").is_empty(), "no match: {none}");

    let series_keys: Vec<String> = [
        "QueryRetrieveLevel=SERIES",
        &format!("StudyInstanceUID={study_uid}"),
        "SeriesInstanceUID",
        "Modality",
        "NumberOfSeriesRelatedInstances",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    let (ok, series) = find("READING_WS", &series_keys);
    assert!(ok, "{series}");
    assert_eq!(values_of(&series, "(0008,0060)"), ["CT".to_string()], "{series}");
    assert_eq!(values_of(&series, "(0020,000e)").len(), 1, "one series: {series}");

    let (_, refused) = find("CR_ROOM1", &study_keys(&["PatientName=*"]));
    assert!(refused.contains("Status: 0x124"), "not authorized: {refused:?}");
    assert!(values_of(&refused, "(0020,000d)").is_empty(), "nothing told: {refused}");

    let finds: Vec<Value> = audit_actions(&server).into_iter().filter(|r| r["action"] == "dicom.find").collect();
    assert_eq!(finds.len(), 7, "{finds:#?}");
    assert!(finds.iter().any(|r| r["outcome"] == "denied" && r["actor_name"] == "CR_ROOM1"), "{finds:#?}");
    assert!(finds.iter().all(|r| !r["detail"].as_str().unwrap().contains(patient_id)), "no IDs in the trail");
}
