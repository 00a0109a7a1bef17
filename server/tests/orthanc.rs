//! The DICOM node against Orthanc (Debian `orthanc`), a PACS that no one here wrote, started with a
//! generated configuration in a temp dir on free ports, as `nobody` when the tests run as root: Orthanc
//! pushes a study to us; we ask it for a patient's studies (C-FIND) and bring a prior here (C-MOVE), from
//! the command line and from the study page's API; it queries what we hold; a signed report arrives in it
//! as an Encapsulated PDF. Orthanc 1.10 has no bind-address setting: its ports listen on every interface,
//! with HTTP for loopback only (RemoteAccessAllowed false) and DICOM for the one AE at 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, dicom_fixture};
use serde_json::{Value, json};

const OUR_AE: &str = "MEDGEMMAX";
const ORTHANC_AE: &str = "ORTHANC";

/// Orthanc on free ports in a temp dir; killed on drop.
struct Orthanc {
    child: Child,
    http: String,
    dicom_port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Orthanc {
    /// Knows us as the AE `MEDGEMMAX` at 127.0.0.1:`our_dicom_port`.
    fn start(our_dicom_port: u16) -> Orthanc {
        let dir = tempfile::tempdir().unwrap();
        let (http_port, dicom_port) = (free_port(), free_port());
        let config = json!({
            "Name": "medgemma-x-test",
            "StorageDirectory": dir.path().join("storage"),
            "IndexDirectory": dir.path().join("storage"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": ORTHANC_AE,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomCheckCalledAet": true,
            "DicomCheckModalityHost": true,
            "DicomAlwaysAllowEcho": false,
            "DicomAlwaysAllowStore": false,
            "DicomModalities": { "medgemmax": { "AET": OUR_AE, "Host": "127.0.0.1", "Port": our_dicom_port } },
            "Plugins": [],
            "StableAge": 1,
            "DicomScuTimeout": 30,
            // GB 18030 in its answers, as a PACS in China is set up (Orthanc's default, Latin-1, drops Chinese).
            "DefaultEncoding": "Chinese",
            "ConcurrentJobs": 1
        });
        let file = dir.path().join("orthanc.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
        let mut command = if unsafe { libc::geteuid() } == 0 {
            // As root, Orthanc runs as nobody: its temp dir must be writable by it.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/sbin/Orthanc"]);
            c
        } else {
            Command::new("/usr/sbin/Orthanc")
        };
        let child = command
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("/usr/sbin/Orthanc (Debian orthanc) not runnable: {e}"));
        let orthanc = Orthanc { child, http: format!("http://127.0.0.1:{http_port}"), dicom_port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !reqwest::blocking::get(orthanc.url("/system")).is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "Orthanc did not start: {}", orthanc.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        orthanc
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("orthanc.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Value {
        let response = reqwest::blocking::get(self.url(path)).unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().unwrap()
    }

    fn post(&self, path: &str, body: Vec<u8>) -> Value {
        let response =
            reqwest::blocking::Client::new().post(self.url(path)).body(body).timeout(Duration::from_secs(120)).send();
        let response = response.unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}\n{}", self.log());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Stores a file in Orthanc (its REST API); answers its study's Orthanc id.
    fn upload(&self, file: &Path) -> String {
        let stored = self.post("/instances", std::fs::read(file).unwrap());
        stored["ParentStudy"].as_str().unwrap_or_else(|| panic!("{stored}")).to_string()
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn medgemma(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).args(["--data-dir", data.to_str().unwrap()]).output().unwrap()
}

/// Our server, knowing Orthanc as a peer that stores to us and that we may query; its DICOM port.
fn start_with_orthanc_peer(data: &tempfile::TempDir, extra: &[&str]) -> (Server, u16) {
    let mut args = vec!["--data-dir", data.path().to_str().unwrap(), "--dicom-bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start(&args, &[]);
    let ready: Value = reqwest::blocking::get(server.url("/readyz")).unwrap().json().unwrap();
    let listening = ready["dicom"]["listening"].as_str().unwrap_or_else(|| panic!("{ready:#}"));
    (server, listening.rsplit(':').next().unwrap().parse().unwrap())
}

fn add_orthanc_peer(data: &tempfile::TempDir, orthanc: &Orthanc) {
    let port = orthanc.dicom_port.to_string();
    let out =
        medgemma(data.path(), &["dicom", "peer", "add", ORTHANC_AE, "--host", "127.0.0.1", "--port", &port, "--query"]);
    assert!(out.status.success(), "{}", said(&out));
}

/// A copy of a fixture made another study of another patient (DCMTK's dcmodify), for priors: a Chinese
/// name and description in UTF-8.
fn restudied(fixture: &str, dir: &Path, patient_id: &str, study_uid: &str, date: &str) -> PathBuf {
    let file = dir.join(format!("{study_uid}.dcm"));
    std::fs::copy(dicom_fixture(fixture), &file).unwrap();
    let modified = Command::new("/usr/bin/dcmodify")
        .args(["-nb", "-i", &format!("(0010,0020)={patient_id}"), "-i", &format!("(0020,000d)={study_uid}")])
        .args(["-i", &format!("(0008,0020)={date}"), "-i", "(0008,0005)=ISO_IR 192", "-i", "(0010,0010)=张^三"])
        .args(["-i", "(0008,1030)=胸部正位", "-gse", "-gin"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(modified.status.success(), "{}", said(&modified));
    file
}

fn our_studies(server: &Server) -> Vec<Value> {
    let list: Value = server.get("/api/v1/studies?limit=100").json().unwrap();
    list["studies"].as_array().unwrap().clone()
}

#[test]
fn orthanc_sends_to_us_we_find_and_move_its_priors_and_it_queries_us() {
    let data = tempfile::tempdir().unwrap();
    let (server, our_port) = start_with_orthanc_peer(&data, &[]);
    let orthanc = Orthanc::start(our_port);
    add_orthanc_peer(&data, &orthanc);

    // Last year's and this year's film of one patient in the PACS.
    let films = tempfile::tempdir().unwrap();
    let prior = restudied("synthetic/cr_monochrome1.dcm", films.path(), "PRIOR-7", "1.2.826.0.1.7.1", "20250310");
    let current = restudied("synthetic/cr_monochrome1.dcm", films.path(), "PRIOR-7", "1.2.826.0.1.7.2", "20260301");
    orthanc.upload(&prior);
    let current_in_orthanc = orthanc.upload(&current);

    // Orthanc pushes today's study to us (its REST API: C-STORE to the modality).
    orthanc.post(
        "/modalities/medgemmax/store",
        json!({"Resources": [current_in_orthanc], "Synchronous": true}).to_string().into_bytes(),
    );
    let ours = our_studies(&server);
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["study_uid"], "1.2.826.0.1.7.2");
    let study_id = ours[0]["id"].as_i64().unwrap();

    // From the command line: both studies of the patient, today's marked as here.
    let found = medgemma(data.path(), &["dicom", "find", "--patient-id", "PRIOR-7", "--json"]);
    assert!(found.status.success(), "{}", said(&found));
    let found: Value = serde_json::from_slice(&found.stdout).unwrap();
    let uids: Vec<(&str, &Value)> =
        found.as_array().unwrap().iter().map(|s| (s["study_uid"].as_str().unwrap(), &s["held"])).collect();
    assert_eq!(uids, vec![("1.2.826.0.1.7.2", &json!(study_id)), ("1.2.826.0.1.7.1", &Value::Null)], "{found:#}");
    assert_eq!(found[1]["study_date"], "20250310");
    assert_eq!(found[1]["peer"], ORTHANC_AE);
    // Orthanc answers in GB 18030, which is read as such.
    assert_eq!(found[1]["description"], "胸部正位", "{found:#}");
    assert_eq!(found[1]["patient_name"], "张^三", "{found:#}");

    // From the study page: the priors on the PACS, then the prior brought here.
    let priors: Value = server.get(&format!("/api/v1/studies/{study_id}/pacs-priors")).json().unwrap();
    let priors = priors.as_array().unwrap_or_else(|| panic!("{priors}"));
    assert_eq!(priors.len(), 1, "the study itself is left out: {priors:#?}");
    assert_eq!(priors[0]["study_uid"], "1.2.826.0.1.7.1");
    let retrieve = json!({"peer": ORTHANC_AE, "study_uid": "1.2.826.0.1.7.1"});
    let moved = server
        .client()
        .post(server.url(&format!("/api/v1/studies/{study_id}/pacs-priors/retrieve")))
        .json(&retrieve)
        .send();
    let moved: Value = moved.unwrap().json().unwrap();
    assert_eq!(moved["completed"], 1, "{moved:#}");
    assert_eq!(moved["failed"], 0, "{moved:#}");
    let prior_id = moved["study_id"].as_i64().unwrap_or_else(|| panic!("not stored: {moved:#}"));
    let detail: Value = server.get(&format!("/api/v1/studies/{prior_id}")).json().unwrap();
    assert_eq!(detail["study_uid"], "1.2.826.0.1.7.1", "{detail:#}");
    assert_eq!(detail["patient_id"], "PRIOR-7");
    let priors: Value = server.get(&format!("/api/v1/studies/{study_id}/pacs-priors")).json().unwrap();
    assert_eq!(priors[0]["held"], prior_id, "{priors:#}");

    // A retrieval of a study the PACS does not have says so (no study id), and nothing is half-stored.
    let missing = medgemma(data.path(), &["dicom", "move", "--peer", ORTHANC_AE, "1.2.826.0.1.7.99"]);
    assert!(!missing.status.success(), "{}", said(&missing));
    assert_eq!(our_studies(&server).len(), 2);

    // Orthanc queries what we hold (C-FIND from its REST API): both studies, with our answers.
    let query = json!({"Level": "Study", "Query": {"PatientID": "PRIOR-7", "StudyDate": "", "ModalitiesInStudy": ""}});
    let asked = orthanc.post("/modalities/medgemmax/query", query.to_string().into_bytes());
    let answers = orthanc.get(&format!("/queries/{}/answers?expand", asked["ID"].as_str().unwrap()));
    let mut dates: Vec<&str> =
        answers.as_array().unwrap().iter().map(|a| a["0008,0020"]["Value"].as_str().unwrap()).collect();
    dates.sort_unstable();
    assert_eq!(dates, ["20250310", "20260301"], "{answers:#}");

    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=500")).send().unwrap().json().unwrap();
    let rows = rows.as_array().unwrap();
    let row =
        |action: &str| rows.iter().find(|r| r["action"] == action).unwrap_or_else(|| panic!("{action}: {rows:#?}"));
    assert_eq!(row("dicom.store")["actor_name"], ORTHANC_AE);
    assert_eq!(row("dicom.move")["outcome"], "failed", "the console's move of a missing study");
    let retrieval = row("POST /api/v1/studies/{id}/pacs-priors/retrieve");
    assert!(retrieval["detail"].as_str().unwrap().contains("completed=1"), "{retrieval:#}");
    let finds: Vec<&Value> = rows.iter().filter(|r| r["action"] == "dicom.find").collect();
    assert!(finds.iter().any(|r| r["actor_kind"] == "console"), "ours, from the console: {finds:#?}");
    assert!(finds.iter().any(|r| r["actor_name"] == ORTHANC_AE), "Orthanc's, of us: {finds:#?}");
}

/// A signed report arrives in Orthanc as an Encapsulated PDF instance of its study; the PDF in it is ours.
#[test]
fn a_signed_report_arrives_in_orthanc_as_an_encapsulated_pdf() {
    let data = tempfile::tempdir().unwrap();
    let (server, our_port) = start_with_orthanc_peer(&data, &["--dicom-reports-to", ORTHANC_AE]);
    let orthanc = Orthanc::start(our_port);
    add_orthanc_peer(&data, &orthanc);
    let films = tempfile::tempdir().unwrap();
    let film = restudied("synthetic/ct_phantom.dcm", films.path(), "REPORT-1", "1.2.826.0.1.8.1", "20260302");
    let in_orthanc = orthanc.upload(&film);
    orthanc.post(
        "/modalities/medgemmax/store",
        json!({"Resources": [in_orthanc], "Synchronous": true}).to_string().into_bytes(),
    );
    let study = our_studies(&server).remove(0);

    let report = json!({"exam_id": "CT-ORTHANC-1", "report_summary": "两肺未见结节。", "recommendation": "随访。"});
    let id = common::create_report(&server, study["id"].as_i64().unwrap(), &report)["id"].as_i64().unwrap();
    let signed = server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&json!({})).send();
    assert_eq!(signed.unwrap().status(), 200);

    let deadline = Instant::now() + Duration::from_secs(60);
    let pdf_instance = loop {
        let series = orthanc.get(&format!("/studies/{in_orthanc}/series?expand"));
        let docs: Vec<&Value> =
            series.as_array().unwrap().iter().filter(|s| s["MainDicomTags"]["Modality"] == "DOC").collect();
        if let Some(doc) = docs.first() {
            break doc["Instances"][0].as_str().unwrap().to_string();
        }
        let view: Value = server.get(&format!("/api/v1/reports/{id}")).json().unwrap();
        assert!(Instant::now() < deadline, "no report in Orthanc: {:#}\n{}", view["deliveries"], orthanc.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let tags = orthanc.get(&format!("/instances/{pdf_instance}/simplified-tags"));
    assert_eq!(tags["SOPClassUID"], "1.2.840.10008.5.1.4.1.1.104.1", "{tags:#}");
    assert_eq!(tags["StudyInstanceUID"], "1.2.826.0.1.8.1");
    assert_eq!(tags["PatientID"], "REPORT-1");
    let theirs = reqwest::blocking::get(orthanc.url(&format!("/instances/{pdf_instance}/content/0042-0011")))
        .unwrap()
        .bytes()
        .unwrap();
    assert!(theirs.starts_with(b"%PDF-"), "a PDF in the instance");
    // The document we export (the bytes differ only in the PDF's creation time and id: compare the text).
    let dir = tempfile::tempdir().unwrap();
    let text = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new("/usr/bin/pdftotext").arg(&file).arg("-").output().unwrap();
        assert!(out.status.success(), "pdftotext {name}: {}", said(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let ours = server.get(&format!("/api/v1/reports/{id}/export?format=pdf")).bytes().unwrap();
    let (theirs, ours) = (text("theirs.pdf", &theirs), text("ours.pdf", &ours));
    assert!(theirs.contains("两肺未见结节"), "{theirs}");
    assert_eq!(theirs, ours, "Orthanc holds the PDF we export");
}
