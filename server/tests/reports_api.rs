//! The report workflow on a running server: AI draft → edits → sign (frozen, hashed) → return with a
//! comment → sign again → countersign → export (HL7 checked by hl7apy STRICT, FHIR by fhir.resources, PDF
//! by pdftotext) → amend into a new version; a content change behind the server's back blocks the
//! countersignature; tokens and radiologists cannot do what their role does not allow.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, add_user, create_token, dicom_fixture, sign_in, upload_fixture};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

fn validator(script: &str, file: &std::path::Path) -> Value {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../report/tests").join(script);
    let out = Command::new(python).args(["-W", "ignore"]).arg(script).arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn draft() -> Value {
    json!({
        "exam_id": "CZ20251015-001",
        "report_summary": "右肺上叶见一实性结节，边界清楚。",
        "findings": [{"location": "右肺上叶", "feature": "实性结节",
                      "measurements": {"long_axis": 8.2, "short_axis": 6.1, "unit": "mm"},
                      "density": "软组织密度", "boundary": "边界清楚"}],
        "recommendation": "建议12个月后低剂量CT复查。"
    })
}

#[test]
fn a_report_goes_from_ai_draft_to_countersigned_and_amended() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = Server::start(&["--data-dir", dir], &[]);
    add_user(dir, "head", "department_head", "department review 1");
    let head = sign_in(&server.url(""), "head", "department review 1");
    let his = create_token(dir, "his", "report_read,report_export");
    let doctor = server.client();

    let file = dicom_fixture("synthetic/cxr.jpg");
    let form = multipart::Form::new()
        .text("patient_id", "P-REPORT-1")
        .text("patient_name", "报告测试")
        .part("files", multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("cxr.jpg"));
    let uploaded: Value = doctor.post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let study = uploaded["files"][0]["study_id"].as_i64().unwrap();

    // The radiologist starts from the model's draft and corrects the location.
    let mut edited = draft();
    edited["findings"][0]["location"] = json!("右肺上叶尖段");
    let created = doctor
        .post(server.url(&format!("/api/v1/studies/{study}/reports")))
        .json(&json!({"report": edited, "ai_draft": draft()}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["state"], "draft");
    assert_eq!(created["changes_since_ai_draft"][0]["path"], "findings[0].location");
    assert_eq!(created["changes_since_ai_draft"][0]["before"], "右肺上叶");
    let again = doctor
        .post(server.url(&format!("/api/v1/studies/{study}/reports")))
        .json(&json!({"report": draft()}))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409, "one live report per study");

    let put = |client: &Client, report: &Value| {
        client.put(server.url(&format!("/api/v1/reports/{id}"))).json(&json!({"report": report})).send().unwrap()
    };
    edited["recommendation"] = json!("建议6个月后复查。");
    assert_eq!(put(doctor, &edited).status(), 200);
    let export = |client: &Client, format: &str| {
        client.get(server.url(&format!("/api/v1/reports/{id}/export?format={format}"))).send().unwrap()
    };
    assert_eq!(export(doctor, "pdf").status(), 409, "drafts are not exported as PDF");
    assert_eq!(export(doctor, "json").status(), 200);

    let post = |client: &Client, path: &str, body: Value| client.post(server.url(path)).json(&body).send().unwrap();
    let sign_path = format!("/api/v1/reports/{id}/sign");
    let review_path = format!("/api/v1/reports/{id}/review");
    let token = |method: &str, path: &str| {
        let request = match method {
            "GET" => Client::new().get(server.url(path)),
            _ => Client::new().post(server.url(path)).json(&json!({})),
        };
        request.bearer_auth(&his).send().unwrap().status().as_u16()
    };
    assert_eq!(token("POST", &sign_path), 403, "an integrator token cannot sign");
    assert_eq!(token("GET", &format!("/api/v1/reports/{id}")), 200, "but can read");

    let signed: Value = post(doctor, &sign_path, json!({})).json().unwrap();
    assert_eq!(signed["state"], "signed");
    let hash = signed["content_sha256"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(signed["report"]["signatures"][0]["content_hash"], hash.as_str());
    assert_eq!(signed["report"]["signatures"][0]["role"], "radiologist");
    assert_eq!(signed["report"]["status"], "signed");
    assert_eq!(put(doctor, &edited).status(), 409, "a signed report is frozen");
    assert_eq!(post(doctor, &sign_path, json!({})).status(), 409);
    assert_eq!(
        post(doctor, &review_path, json!({"decision": "countersign"})).status(),
        403,
        "radiologists do not review"
    );
    let studies: Value = server.get("/api/v1/studies").json().unwrap();
    assert_eq!(studies["studies"][0]["status"], "signed");

    // Someone edits the signed content in the database file: the countersignature is refused.
    let db = data.path().join("db/medgemma-x.sqlite3");
    let tamper = Command::new("python3")
        .args(["-c", "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); r=json.loads(c.execute('SELECT content FROM reports WHERE id=?',(int(sys.argv[2]),)).fetchone()[0]); r['recommendation']='无需复查'; c.execute('UPDATE reports SET content=? WHERE id=?',(json.dumps(r, ensure_ascii=False),int(sys.argv[2]))); c.commit()"])
        .arg(&db)
        .arg(id.to_string())
        .output()
        .unwrap();
    assert!(tamper.status.success(), "{}", String::from_utf8_lossy(&tamper.stderr));
    let refused = post(&head, &review_path, json!({"decision": "countersign"}));
    assert_eq!(refused.status(), 409);
    assert!(refused.text().unwrap().contains("does not match the hash"));

    // The head returns it (a comment is required); the radiologist corrects and signs again.
    assert_eq!(post(&head, &review_path, json!({"decision": "return"})).status(), 400);
    let returned: Value =
        post(&head, &review_path, json!({"decision": "return", "comment": "复查间隔请按指南核对"})).json().unwrap();
    assert_eq!(returned["state"], "returned");
    assert!(returned["report"].get("signatures").is_none(), "the signature is withdrawn: {returned}");
    assert_eq!(put(doctor, &edited).status(), 200);
    assert_eq!(post(doctor, &sign_path, json!({})).status(), 200);
    let reviewed: Value =
        post(&head, &review_path, json!({"decision": "countersign", "comment": "同意"})).json().unwrap();
    assert_eq!(reviewed["state"], "reviewed");
    assert_eq!(reviewed["report"]["status"], "reviewed");
    let signatures = reviewed["report"]["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 2);
    assert_eq!(signatures[1]["role"], "department_head");
    assert_eq!(signatures[0]["content_hash"], signatures[1]["content_hash"]);
    // The reviewer sees who changed what: the edits, the sign-offs, the return with its comment.
    let actions: Vec<&str> =
        reviewed["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "edit", "sign", "return", "edit", "sign", "countersign"]);
    assert_eq!(reviewed["events"][1]["changes"][0]["path"], "recommendation");
    assert_eq!(reviewed["events"][1]["username"], common::DOCTOR);
    assert_eq!(reviewed["events"][3]["comment"], "复查间隔请按指南核对");

    // Exports of the signed report, each checked by a real parser.
    let hl7 = Client::new()
        .get(server.url(&format!("/api/v1/reports/{id}/export?format=hl7")))
        .bearer_auth(&his)
        .send()
        .unwrap();
    assert_eq!(hl7.status(), 200);
    let hl7_file = data.path().join("r.hl7");
    std::fs::write(&hl7_file, hl7.bytes().unwrap()).unwrap();
    validator("validate_hl7.py", &hl7_file);
    let fhir_file = data.path().join("r.fhir.json");
    std::fs::write(&fhir_file, export(doctor, "fhir").bytes().unwrap()).unwrap();
    validator("validate_fhir.py", &fhir_file);
    let pdf = export(doctor, "pdf");
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.headers()["content-disposition"].to_str().unwrap().contains(&format!("report-{id}-v1.pdf")));
    let pdf_file = data.path().join("r.pdf");
    std::fs::write(&pdf_file, pdf.bytes().unwrap()).unwrap();
    let text = Command::new("pdftotext").arg(&pdf_file).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("右肺上叶尖段") && text.contains("建议6个月后复查"), "{text}");

    // An amendment: a new version in draft, the signed one kept.
    assert_eq!(
        post(doctor, &format!("/api/v1/reports/{id}/amend"), json!({"report": edited, "reason": ""})).status(),
        400
    );
    let mut amended = edited.clone();
    amended["report_summary"] = json!("右肺上叶尖段见一实性结节，边界清楚，较前相仿。");
    let v2 = post(doctor, &format!("/api/v1/reports/{id}/amend"), json!({"report": amended, "reason": "补充对比描述"}));
    assert_eq!(v2.status(), 201);
    let v2: Value = v2.json().unwrap();
    assert_eq!(
        (v2["version"].as_i64(), v2["supersedes"].as_i64(), v2["state"].as_str()),
        (Some(2), Some(id), Some("draft"))
    );
    assert_eq!(v2["events"][0]["action"], "amend");
    assert_eq!(v2["events"][0]["changes"][0]["path"], "report_summary");
    let versions: Value = server.get(&format!("/api/v1/studies/{study}/reports")).json().unwrap();
    let states: Vec<(i64, &str)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [(2, "draft"), (1, "superseded")]);
    assert_eq!(export(doctor, "pdf").status(), 200, "the superseded version stays exportable");
    let v2_id = v2["id"].as_i64().unwrap();
    let signed_v2: Value = post(doctor, &format!("/api/v1/reports/{v2_id}/sign"), json!({})).json().unwrap();
    assert_eq!(signed_v2["report"]["status"], "amended");

    // Every step is in the audit trail, with the patient's pseudonym.
    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=500")).send().unwrap().json().unwrap();
    let sign_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["detail"].as_str().is_some_and(|d| d.starts_with(&format!("report.sign id={id}"))));
    let sign_row = sign_row.unwrap_or_else(|| panic!("{rows:#}"));
    assert!(sign_row["patient_ref"].as_str().unwrap().starts_with("P-"));
    assert_eq!(sign_row["study_id"], study);
}

/// A screening CT's Lung-RADS category and a nodule's change against the prior exam are the server's,
/// computed from the findings as saved: what the client typed is replaced, they follow each edit, and the
/// signed HL7 carries them.
#[test]
fn lung_rads_follows_the_findings_of_a_screening_report() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let doctor = server.client();
    let (study, _) = upload_fixture(&server, "synthetic/ct_phantom.dcm");

    let mut report = draft();
    report["lung_cancer_screening"] = json!(true);
    report["findings"][0]["nodule_type"] = json!("solid");
    report["guideline_results"] =
        json!([{"guideline": "Lung-RADS v2022", "category": "1", "management": "typed", "basis": "typed"}]);
    let created = common::create_report(&server, study, &report);
    let id = created["id"].as_i64().unwrap();
    // 8.2 × 6.1 mm: mean 7.2 mm (6–<8 mm solid at baseline) → 3.
    let results = &created["report"]["guideline_results"];
    assert_eq!(results.as_array().unwrap().len(), 1, "{results:#}");
    assert_eq!(results[0]["category"], "3", "{results:#}");
    assert!(results[0]["basis"].as_str().unwrap().contains("右肺上叶"), "{results:#}");

    // Spiculation on a larger nodule: 4X after the edit.
    report["findings"][0]["measurements"] = json!({"long_axis": 12.0, "short_axis": 10.0, "unit": "mm"});
    report["findings"][0]["nodule_features"] = json!(["spiculation"]);
    let put = doctor.put(server.url(&format!("/api/v1/reports/{id}"))).json(&json!({"report": report})).send().unwrap();
    assert_eq!(put.status(), 200);
    let shown: Value = doctor.get(server.url(&format!("/api/v1/reports/{id}"))).send().unwrap().json().unwrap();
    assert_eq!(shown["report"]["guideline_results"][0]["category"], "4X", "{shown:#}");

    // Matched with the same nodule a year earlier (8 × 7 mm): the change is written, and the round is a
    // follow-up: grown 3.5 mm to 11 mm mean → 4B.
    report["findings"][0]["nodule_features"] = json!([]);
    report["findings"][0]["prior"] = json!({"study_date": "2024-10-15", "long_axis": 8.0, "short_axis": 7.0});
    report["findings"][0]["change"] = json!("typed by hand");
    let put = doctor.put(server.url(&format!("/api/v1/reports/{id}"))).json(&json!({"report": report})).send().unwrap();
    assert_eq!(put.status(), 200);
    let shown: Value = doctor.get(server.url(&format!("/api/v1/reports/{id}"))).send().unwrap().json().unwrap();
    let change = shown["report"]["findings"][0]["change"].as_str().unwrap();
    assert!(change.starts_with("较2024-10-15增大3.5毫米（VDT "), "{change}");
    let result = &shown["report"]["guideline_results"][0];
    assert_eq!(result["category"], "4B", "{result:#}");
    assert!(result["basis"].as_str().unwrap().contains("间隔12个月"), "{result:#}");

    assert_eq!(
        doctor.post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&json!({})).send().unwrap().status(),
        200
    );
    let hl7 =
        doctor.get(server.url(&format!("/api/v1/reports/{id}/export?format=hl7"))).send().unwrap().text().unwrap();
    assert!(hl7.contains("4B") && hl7.contains("Lung-RADS v2022") && hl7.contains("较2024-10-15增大3.5毫米"), "{hl7}");
}

/// A finding that cites a viewer measurement gets a key image in the PDF: the image through the window it
/// was measured in, the shape burned in, the number and its basis under it.
#[test]
fn the_pdf_shows_the_cited_measurement_as_a_key_image() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let doctor = server.client();
    let (study, instance) = upload_fixture(&server, "synthetic/ct_phantom.dcm");
    let measurement: Value = doctor
        .post(server.url(&format!("/api/v1/studies/{study}/measurements")))
        .json(&json!({"instance_id": instance, "window": {"center": -600, "width": 1500},
                      "shape": {"kind": "length", "a": {"x": 150, "y": 160}, "b": {"x": 190, "y": 160}}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut report = draft();
    // (An unknown id is refused when the report is saved: report_content_is_bounded_… below.)
    report["findings"][0]["measurement_ids"] = json!([measurement["id"].to_string()]);
    let created = common::create_report(&server, study, &report);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        doctor.post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&json!({})).send().unwrap().status(),
        200
    );
    // Removed from the viewer's list after signing: the report still cites it.
    let gone = doctor.delete(server.url(&format!("/api/v1/measurements/{}", measurement["id"]))).send().unwrap();
    assert_eq!(gone.status(), 204);

    let pdf =
        doctor.get(server.url(&format!("/api/v1/reports/{id}/export?format=pdf"))).send().unwrap().bytes().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("report.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = String::from_utf8(Command::new("pdftotext").arg(&path).arg("-").output().unwrap().stdout).unwrap();
    assert!(text.contains("关键图像"), "{text}");
    // 40 pixels at 0.7 mm; the unknown id is left out, not an error.
    assert!(text.contains("图1") && text.contains("28.0毫米") && text.contains("窗宽1500/窗位-600"), "{text}");
    assert!(!text.contains("图2"), "{text}");
    let list = String::from_utf8(Command::new("pdfimages").arg("-list").arg(&path).output().unwrap().stdout).unwrap();
    let images: Vec<&str> = list.lines().skip(2).collect();
    assert_eq!(images.len(), 1, "{list}");
    // The 256-pixel slice is enlarged twice; the line is burned in (yellow on row 160, 321 enlarged);
    // elsewhere the lung at −850 HU through the lung window it was measured in (−600/1500): grey 85.
    let status = Command::new("pdfimages").arg("-png").arg(&path).arg(out.path().join("key")).status().unwrap();
    assert!(status.success());
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let check = "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); \
                 print(im.size, im.getpixel((340, 321)), im.getpixel((340, 200)))";
    let probe = Command::new(python).args(["-c", check]).arg(out.path().join("key-000.png")).output().unwrap();
    let probe = String::from_utf8_lossy(&probe.stdout).to_string();
    assert_eq!(probe.trim(), "(512, 512) (255, 211, 61) (85, 85, 85)", "{probe}");
}

/// Whose report and whose measurement (#18 item 7): a colleague may not edit, sign or amend another
/// radiologist's report nor delete their measurement; a department head may edit a junior's draft, but
/// then cannot countersign what they edited; a countersignature racing a return records one of them.
#[test]
fn only_the_author_or_a_head_changes_a_report_and_an_editor_never_countersigns_it() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = Server::start(&["--data-dir", dir], &[]);
    add_user(dir, "colleague", "radiologist", "another reader 1");
    add_user(dir, "head", "department_head", "department review 1");
    add_user(dir, "head2", "department_head", "department review 2");
    let colleague = sign_in(&server.url(""), "colleague", "another reader 1");
    let head = sign_in(&server.url(""), "head", "department review 1");
    let head2 = sign_in(&server.url(""), "head2", "department review 2");
    let doctor = server.client();
    let (study, instance) = upload_fixture(&server, "synthetic/ct_phantom.dcm");
    let id = common::create_report(&server, study, &draft())["id"].as_i64().unwrap();
    let status = |response: reqwest::blocking::Response| response.status().as_u16();
    let put = |client: &Client, report: &Value| {
        status(
            client.put(server.url(&format!("/api/v1/reports/{id}"))).json(&json!({"report": report})).send().unwrap(),
        )
    };
    let post =
        |client: &Client, path: String, body: Value| status(client.post(server.url(&path)).json(&body).send().unwrap());
    let state = || doctor.get(server.url(&format!("/api/v1/reports/{id}"))).send().unwrap().json::<Value>().unwrap();

    // A colleague may read it, not change or sign it.
    let mut changed = draft();
    changed["recommendation"] = json!("同事改的");
    assert_eq!(put(&colleague, &changed), 403);
    assert_eq!(post(&colleague, format!("/api/v1/reports/{id}/sign"), json!({})), 403);
    assert_eq!(state()["report"]["recommendation"], draft()["recommendation"], "nothing stored");

    // The head edits the junior's draft; the author signs; the head who edited cannot countersign.
    changed["recommendation"] = json!("建议3个月后复查。");
    assert_eq!(put(&head, &changed), 200);
    assert_eq!(post(doctor, format!("/api/v1/reports/{id}/sign"), json!({})), 200);
    assert_eq!(post(&head, format!("/api/v1/reports/{id}/review"), json!({"decision": "countersign"})), 403);
    assert_eq!(state()["state"], "signed");
    // A colleague cannot amend the signed report either.
    let amend = json!({"report": draft(), "reason": "同事修订"});
    assert_eq!(post(&colleague, format!("/api/v1/reports/{id}/amend"), amend), 403);

    // Two heads at once, one countersigning, one returning: exactly one of them is recorded.
    let review_url = server.url(&format!("/api/v1/reports/{id}/review"));
    let review = |body: Value| head2.post(&review_url).json(&body).send().unwrap().status().as_u16();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| review(json!({"decision": "countersign"})));
        let b = s.spawn(|| review(json!({"decision": "return", "comment": "请复核"})));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut outcomes = [a, b];
    outcomes.sort();
    assert_eq!(outcomes, [200, 409], "one review wins, the other is refused");
    let events = state()["events"].as_array().unwrap().clone();
    let reviews = events.iter().filter(|e| e["action"] == "countersign" || e["action"] == "return").count();
    assert_eq!(reviews, 1, "{events:#?}");

    // Measurements: the colleague cannot delete the doctor's; the head can.
    let made = |client: &Client| {
        let body = json!({"instance_id": instance, "shape": {"kind": "length", "a": {"x": 20, "y": 20}, "b": {"x": 120, "y": 20}}});
        let response =
            client.post(server.url(&format!("/api/v1/studies/{study}/measurements"))).json(&body).send().unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().unwrap()["id"].as_i64().unwrap()
    };
    let delete = |client: &Client, m: i64| {
        status(client.delete(server.url(&format!("/api/v1/measurements/{m}"))).send().unwrap())
    };
    let mine = made(doctor);
    assert_eq!(delete(&colleague, mine), 403);
    let listed: Value =
        doctor.get(server.url(&format!("/api/v1/studies/{study}/measurements"))).send().unwrap().json().unwrap();
    assert_eq!(listed["measurements"].as_array().unwrap().len(), 1, "still there");
    assert_eq!(delete(&head, mine), 204);
    assert_eq!(delete(&colleague, made(&colleague)), 204, "one's own");
    assert_eq!(server.get("/healthz").status(), 200);
}

/// A report's content is checked when it is saved (#18 item 4): a finding citing one measurement 100 000
/// times (the PDF exporter and the delivery worker would draw each), another study's measurement or an
/// unknown one, and over-long text are refused with 400, and nothing of them is stored.
#[test]
fn report_content_is_bounded_and_cites_only_the_studys_own_measurements() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let doctor = server.client();
    let (study, instance) = upload_fixture(&server, "synthetic/ct_phantom.dcm");
    let (other_study, other_instance) = upload_fixture(&server, "synthetic/cr_monochrome1.dcm");
    let measure = |study: i64, instance: i64| {
        let body = json!({"instance_id": instance, "shape": {"kind": "length", "a": {"x": 20, "y": 20}, "b": {"x": 120, "y": 20}}});
        let response =
            doctor.post(server.url(&format!("/api/v1/studies/{study}/measurements"))).json(&body).send().unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().unwrap()["id"].as_i64().unwrap().to_string()
    };
    let own = measure(study, instance);
    let foreign = measure(other_study, other_instance);
    let citing = |ids: Value| {
        let mut report = draft();
        report["findings"][0]["measurement_ids"] = ids;
        report
    };
    let create = |report: Value| {
        doctor
            .post(server.url(&format!("/api/v1/studies/{study}/reports")))
            .json(&json!({"report": report}))
            .send()
            .unwrap()
    };
    let refused = |report: Value, needle: &str| {
        let response = create(report);
        assert_eq!(response.status(), 400);
        let body: Value = response.json().unwrap();
        assert!(body["error"]["message_zh"].as_str().unwrap().contains(needle), "{needle}: {body}");
    };
    refused(citing(json!(vec![own.clone(); 100_000])), "测量");
    refused(citing(json!([own.clone(), own.clone()])), "重复");
    refused(citing(json!([foreign])), "不属于该检查");
    refused(citing(json!(["999999"])), "不属于该检查");
    refused(citing(json!(["not-a-number"])), "不属于该检查");
    let mut long = draft();
    long["report_summary"] = json!("很".repeat(20_000));
    refused(long, "过长");
    let mut many = draft();
    many["findings"] = json!(vec![draft()["findings"][0].clone(); 500]);
    refused(many, "所见");
    let reports: Value =
        doctor.get(server.url(&format!("/api/v1/studies/{study}/reports"))).send().unwrap().json().unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 0, "nothing stored: {reports}");

    // The study's own measurement, cited once, is a report like any other; editing is checked the same way.
    let created = create(citing(json!([own.clone()])));
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().unwrap()["id"].as_i64().unwrap();
    let edit = doctor
        .put(server.url(&format!("/api/v1/reports/{id}")))
        .json(&json!({"report": citing(json!(vec![own; 1000]))}))
        .send()
        .unwrap();
    assert_eq!(edit.status(), 400);
    assert_eq!(server.get("/healthz").status(), 200);
}
