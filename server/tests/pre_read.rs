//! Pre-reads: a study that arrives gets its AI draft written in the background, so that it is there when
//! the radiologist opens the study; interactive questions go ahead of the waiting pre-reads; a study signed
//! before its pre-read ran has it cancelled; the worklist shows each state.

mod common;

use std::time::{Duration, Instant};

use common::chat::{Events, one_at_a_time, post_chat, upload_image, wait_for_model};
use common::{Server, create_report, fixture};
use serde_json::{Value, json};

fn pre_read_states(server: &Server) -> Vec<(i64, Option<String>)> {
    let list: Value = server.get("/api/v1/studies?limit=50").json().unwrap();
    list["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_i64().unwrap(), s["pre_read"].as_str().map(str::to_string)))
        .collect()
}

fn state_of(server: &Server, study: i64) -> Option<String> {
    pre_read_states(server).into_iter().find(|(id, _)| *id == study).and_then(|(_, state)| state)
}

/// Waits until no pre-read is queued or running.
fn settle(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while pre_read_states(server).iter().any(|(_, s)| matches!(s.as_deref(), Some("queued" | "running"))) {
        assert!(Instant::now() < deadline, "pre-reads still running: {:?}", pre_read_states(server));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn arriving_studies_are_drafted_in_the_background_behind_interactive_questions() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let model = fixture("tiny-a");
    // Two slots: at most one pre-read runs at a time, the other slot stays for a radiologist's question.
    let args =
        ["--data-dir", data.path().to_str().unwrap(), "--model-dir", model.to_str().unwrap(), "--chat-max-active", "2"];
    let server = Server::start(&args, &[]);
    wait_for_model(&server);

    // Four different films (the same file twice would be a duplicate, not an arrival).
    let films = ["synthetic/cxr.jpg", "synthetic/cxr16.png", "synthetic/grey32.png", "synthetic/photo_rgb.png"];
    let studies: Vec<i64> = films
        .iter()
        .enumerate()
        .map(|(n, film)| upload_image(&server, film, &format!("P-PRE-{n}"), "2025-10-15").0)
        .collect();
    let states = pre_read_states(&server);
    assert!(studies.iter().all(|s| state_of(&server, *s).is_some()), "every arriving study has a pre-read: {states:?}");

    // A radiologist's question, asked while three pre-reads wait: it is admitted at once.
    let asked = Instant::now();
    let answer =
        Events::new(post_chat(&server, studies[0], json!({"message": "描述这张胸片", "max_new_tokens": 8}))).all();
    let done = answer.last().unwrap();
    assert_eq!(done.name, "done", "{}", done.data);
    let queued_ms = done.data["timings"]["queued_ms"].as_f64().unwrap();
    println!("interactive question: queued {queued_ms:.0} ms, answered in {:.2} s", asked.elapsed().as_secs_f64());
    assert!(queued_ms < 1000.0, "the question waited {queued_ms} ms behind the pre-reads");
    let waiting: Vec<_> =
        pre_read_states(&server).into_iter().filter(|(_, s)| s.as_deref() == Some("queued")).collect();
    assert!(!waiting.is_empty(), "pre-reads were still waiting when the question went ahead");

    // The last study is signed before its pre-read ran: cancelled.
    let last = *studies.last().unwrap();
    assert_eq!(state_of(&server, last).as_deref(), Some("queued"));
    let report = json!({"exam_id": "x", "report_summary": "两肺纹理清晰。", "recommendation": "随访。"});
    let created = create_report(&server, last, &report);
    let id = created["id"].as_i64().unwrap();
    let signed =
        server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&json!({})).send().unwrap();
    assert_eq!(signed.status(), 200);
    assert_eq!(state_of(&server, last).as_deref(), Some("cancelled"));

    settle(&server);
    // Whatever the random model chose, its triage parsed under the schema and marks the row.
    let list: Value = server.get("/api/v1/studies?limit=50").json().unwrap();
    for row in list["studies"].as_array().unwrap().iter().filter(|r| r["id"] != json!(last)) {
        assert!(row["triage"]["flags"].is_array() && row["triage"]["basis"].is_string(), "{row:#}");
    }
    for study in &studies[..3] {
        assert_eq!(state_of(&server, *study).as_deref(), Some("ready"), "{:?}", pre_read_states(&server));
        // The draft is in the study's conversation, where "从AI草稿开始" finds it.
        let history: Value = server.get(&format!("/api/v1/studies/{study}/chat")).json().unwrap();
        let drafts: Vec<&Value> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant" && m["mode"] == "report_draft" && m["details"]["report"].is_object())
            .collect();
        assert_eq!(drafts.len(), 1, "{history:#}");
        // Its heatmap is kept with it, for the viewer to show when the study opens.
        let heatmap = &drafts[0]["details"]["heatmaps"][0];
        assert!(heatmap["side"].as_i64().unwrap_or(0) > 0 && heatmap["grid"].is_array(), "{:#}", drafts[0]["details"]);
    }
    let history: Value = server.get(&format!("/api/v1/studies/{last}/chat")).json().unwrap();
    assert!(
        !history["messages"].as_array().unwrap().iter().any(|m| m["details"]["report"].is_object()),
        "the signed study got no draft: {history:#}"
    );
    assert_eq!(state_of(&server, last).as_deref(), Some("cancelled"));
}

#[test]
fn pre_reads_can_be_turned_off() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let model = fixture("tiny-a");
    let args =
        ["--data-dir", data.path().to_str().unwrap(), "--model-dir", model.to_str().unwrap(), "--pre-read", "false"];
    let server = Server::start(&args, &[]);
    wait_for_model(&server);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-PRE-OFF", "2025-10-15");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state_of(&server, study), None);
    let history: Value = server.get(&format!("/api/v1/studies/{study}/chat")).json().unwrap();
    assert_eq!(history["messages"].as_array().unwrap().len(), 0, "{history:#}");
}

/// The queue of pre-reads lives in memory: a restart must not lose those it left undone. Studies that
/// arrived while pre-reads were off (as when the server stopped before their turn) are pre-read once the
/// restarted server's model is ready — not the study already signed, nor the one whose draft the
/// radiologist already has.
#[test]
fn a_restart_resumes_the_pre_reads_left_undone() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let (dir, model) = (data.path().to_str().unwrap(), fixture("tiny-a"));
    let model = model.to_str().unwrap();
    let server = Server::start(&["--data-dir", dir, "--model-dir", model, "--pre-read", "false"], &[]);
    wait_for_model(&server);
    let (undone, _) = upload_image(&server, "synthetic/cxr.jpg", "P-RES-1", "2025-10-15");
    let (signed, _) = upload_image(&server, "synthetic/cxr16.png", "P-RES-2", "2025-10-15");
    let (drafted, _) = upload_image(&server, "synthetic/grey32.png", "P-RES-3", "2025-10-15");
    let report = json!({"exam_id": "x", "report_summary": "两肺纹理清晰。", "recommendation": "随访。"});
    let id = create_report(&server, signed, &report)["id"].as_i64().unwrap();
    let response = server.client().post(server.url(&format!("/api/v1/reports/{id}/sign"))).json(&json!({})).send();
    assert_eq!(response.unwrap().status(), 200);
    let asked =
        post_chat(&server, drafted, json!({"message": "生成结构化报告", "mode": "report_draft", "context": false}));
    let done = Events::new(asked).all().pop().unwrap();
    assert!(done.name == "done" && done.data["report"].is_object(), "{}", done.data);
    server.terminate();

    let server = Server::start(&["--data-dir", dir, "--model-dir", model], &[]);
    wait_for_model(&server);
    let deadline = Instant::now() + Duration::from_secs(120);
    while state_of(&server, undone).as_deref() != Some("ready") {
        assert!(Instant::now() < deadline, "not resumed: {:?}", pre_read_states(&server));
        std::thread::sleep(Duration::from_millis(200));
    }
    settle(&server);
    assert_eq!(state_of(&server, signed), None, "a signed study is not pre-read");
    assert_eq!(state_of(&server, drafted), None, "a study with its draft is not drafted again");
    let drafts_of = |study: i64| {
        let history: Value = server.get(&format!("/api/v1/studies/{study}/chat")).json().unwrap();
        let messages = history["messages"].as_array().unwrap().clone();
        messages.iter().filter(|m| m["mode"] == "report_draft" && m["details"]["report"].is_object()).count()
    };
    assert_eq!((drafts_of(undone), drafts_of(signed), drafts_of(drafted)), (1, 0, 1));
}

/// The triage answer orders the worklist: with fault-injected answers (pneumothorax for one patient,
/// normal for the others), that patient's study — not the newest — comes first, marked as the AI's; a
/// radiologist's dismissal puts it back in its place, and the decision is in the audit trail.
#[test]
fn an_urgent_triage_flag_moves_a_study_to_the_top_until_dismissed() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let model = fixture("tiny-a");
    let args = ["--data-dir", data.path().to_str().unwrap(), "--model-dir", model.to_str().unwrap()];
    let server = Server::start(&args, &[("MEDGEMMA_X_FAULT_TRIAGE_URGENT", "P-TRI-URGENT")]);
    wait_for_model(&server);
    // Oldest first: the urgent one is neither the newest by date nor the last uploaded.
    let uploads = [
        ("synthetic/cxr.jpg", "P-TRI-1", "2025-10-13"),
        ("synthetic/cxr16.png", "P-TRI-URGENT", "2025-10-14"),
        ("synthetic/grey32.png", "P-TRI-3", "2025-10-15"),
    ];
    let ids: Vec<i64> =
        uploads.iter().map(|(film, patient, date)| upload_image(&server, film, patient, date).0).collect();
    settle(&server);
    let list: Value = server.get("/api/v1/studies").json().unwrap();
    let order: Vec<i64> = list["studies"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(order, [ids[1], ids[2], ids[0]], "{list:#}");
    let first = &list["studies"][0]["triage"];
    assert_eq!(first["flags"], json!(["pneumothorax"]), "{first}");
    assert_eq!(first["urgent"], true);
    assert_eq!(first["model"], "tiny-a");
    assert!(first["basis"].as_str().unwrap().contains("故障注入"), "{first}");
    assert_eq!(list["studies"][1]["triage"]["flags"], json!([]));

    let decide = |decision: &str| {
        server
            .client()
            .post(server.url(&format!("/api/v1/studies/{}/triage", ids[1])))
            .json(&json!({ "decision": decision }))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(decide("maybe"), 422);
    assert_eq!(decide("dismissed"), 204);
    let list: Value = server.get("/api/v1/studies").json().unwrap();
    let order: Vec<i64> = list["studies"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(order, [ids[2], ids[1], ids[0]], "dismissed: back to its date's place");
    assert_eq!(list["studies"][1]["triage"]["decision"], "dismissed");
    let audit = server.admin().get(server.url("/api/v1/audit?format=csv")).send().unwrap().text().unwrap();
    assert!(audit.contains(&format!("triage.dismissed study={}", ids[1])), "{audit}");
}
