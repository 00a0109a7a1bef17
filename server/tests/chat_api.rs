//! Chat through the running server with the tiny random checkpoint (models/tests/fixtures): streamed
//! events, heatmaps on the image's pixels, history, the queue limit, cancellation, concurrent answers,
//! prior comparison, CT slices, and SIGTERM in the middle of an answer.
//!
//! Long answers are sampled (temperature 1): the random model's greedy answer repeats one byte token,
//! which never completes a character, so there would be no text to stream before the end. They ask for
//! a minimum length, or the random model would end them early.

mod common;

use std::time::{Duration, Instant};

use common::chat::{Events, Received, json_body, one_at_a_time, post_chat, start, upload_image, wait_for_model};
use common::{Server, dicom_fixture, fixture};
use reqwest::blocking::{Response, multipart};
use serde_json::{Value, json};

fn get_json(server: &Server, path: &str) -> Value {
    server.get(path).json().unwrap()
}

#[test]
fn an_answer_streams_token_by_token_with_a_heatmap_on_the_image_and_is_kept_as_history() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let (study, instance) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-1", "2025-10-15");
    let detail = get_json(&server, &format!("/api/v1/instances/{instance}"));
    let (columns, rows) =
        (detail["metadata"]["columns"].as_f64().unwrap(), detail["metadata"]["rows"].as_f64().unwrap());

    let asked = Instant::now();
    let events = Events::new(post_chat(
        &server,
        study,
        json!({"message": "右肺上叶这个结节边缘有毛刺，是否符合肺癌影像学特征？", "max_new_tokens": 300, "temperature": 1.0}),
    ))
    .all();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let tokens: Vec<&Received> = events.iter().filter(|e| e.name == "token").collect();
    assert!(tokens.len() > 10, "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(names.contains(&"heatmap"), "{names:?}");
    let done = &events.last().unwrap().data;

    // Streamed, not buffered: the first token reached us well before the answer was complete.
    let decode_ms = done["timings"]["decode_ms"].as_f64().unwrap();
    let first_to_done = (events.last().unwrap().at - tokens[0].at).as_secs_f64() * 1000.0;
    println!(
        "decode {decode_ms:.0} ms; first token → done {first_to_done:.0} ms; asked → first token {:.0} ms",
        (tokens[0].at - asked).as_secs_f64() * 1000.0
    );
    assert!(
        first_to_done > 0.5 * decode_ms,
        "tokens arrived in a burst: first→done {first_to_done:.0} ms of {decode_ms:.0} ms decoding"
    );

    let streamed: String = tokens.iter().map(|e| e.data["text"].as_str().unwrap()).collect();
    assert_eq!(streamed, done["text"].as_str().unwrap());
    assert!(matches!(done["stop"].as_str(), Some("eos" | "max_tokens")), "{done}");
    assert_eq!(done["model"]["test_model"], true);
    assert_eq!(done["model"]["name"], "tiny-a");
    assert_eq!(done["advisory"], "【AI辅助分析】结论仅供参考，须由执业医师复核确认");
    assert!(done["prompt_version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(done["timings"]["time_to_first_token_ms"].as_f64().unwrap() > 0.0);

    // The heatmap: one image, a grid summing to 1, cells that tile the image's own pixels.
    let heatmap = &events.iter().find(|e| e.name == "heatmap").unwrap().data["images"][0];
    assert_eq!(heatmap["instance_id"], instance);
    assert_eq!(heatmap["side"], 2, "tiny-a has 4 soft tokens per image");
    let grid: Vec<f64> = heatmap["grid"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((grid.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{grid:?}");
    let mut area = 0.0;
    for cell in heatmap["cells"].as_array().unwrap().iter().filter(|c| !c.is_null()) {
        let c: Vec<f64> = cell.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(c[0] >= 0.0 && c[1] >= 0.0 && c[2] <= columns && c[3] <= rows && c[0] < c[2] && c[1] < c[3], "{c:?}");
        area += (c[2] - c[0]) * (c[3] - c[1]);
    }
    assert!((area - columns * rows).abs() < 1e-6 * columns * rows, "cells cover {area} of {} pixels", columns * rows);

    // Kept: the question and the answer; the next question has them as context.
    let history = get_json(&server, &format!("/api/v1/studies/{study}/chat"));
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{history:#}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "右肺上叶这个结节边缘有毛刺，是否符合肺癌影像学特征？");
    assert_eq!(messages[1]["content"], done["text"]);
    assert_eq!(messages[1]["id"], done["message_id"]);
    let second =
        Events::new(post_chat(&server, study, json!({"message": "与上次相比呢？", "max_new_tokens": 5}))).all();
    let second_done = &second.last().unwrap().data;
    assert_eq!(second_done["history_turns"], 2, "{second_done}");
    assert!(second_done["prompt_tokens"].as_i64() > done["prompt_tokens"].as_i64());
    let no_context = Events::new(post_chat(
        &server,
        study,
        json!({"message": "与上次相比呢？", "max_new_tokens": 5, "context": false}),
    ))
    .all();
    assert_eq!(no_context.last().unwrap().data["history_turns"], 0);

    // JSON is gzipped for clients that ask, and reads back the same.
    let gzipped = server
        .client()
        .get(server.url(&format!("/api/v1/studies/{study}/chat")))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let same = json_body(gzipped);
    assert_eq!(same["messages"].as_array().unwrap().len(), 6, "{same}");

    let metrics = server.metrics();
    assert!(metrics.contains("medgemma_x_chat_time_to_first_token_seconds_count{} 3"), "{metrics}");
    assert!(metrics.contains("medgemma_x_inference_queue{state=\"active\"} 0"), "{metrics}");
}

#[test]
fn bad_questions_get_clear_errors_and_no_model_means_503() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-2", "2025-10-15");
    let (other_study, other_instance) = upload_image(&server, "synthetic/cxr16.png", "P-CHAT-3", "2025-10-16");
    let check = |server: &Server, study: i64, body: &str, status: u16, needle: &str| {
        let response = server
            .client()
            .post(server.url(&format!("/api/v1/studies/{study}/chat")))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().unwrap();
        let zh = error["error"]["message_zh"].as_str().unwrap();
        assert!(zh.contains(needle), "{body}: {error}");
    };
    check(&server, study, "{not json", 400, "请求格式错误");
    check(&server, study, r#"{"message": "   "}"#, 400, "问题不能为空");
    check(&server, study, r#"{"message": "x", "surprise": 1}"#, 400, "请求格式错误");
    check(&server, 999_999, r#"{"message": "x"}"#, 404, "没有这个检查");
    check(
        &server,
        study,
        &format!(r#"{{"message": "x", "images": [{{"instance_id": {other_instance}}}]}}"#),
        400,
        "不属于该检查",
    );
    check(&server, study, r#"{"message": "x", "images": [{"instance_id": 1, "frame": 9}]}"#, 404, "没有第 9 帧");
    // P-CHAT-3 has one study only: nothing to compare with.
    check(&server, other_study, r#"{"message": "x", "mode": "compare"}"#, 400, "没有更早的检查");
    drop(server);

    let bare = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", bare.path().to_str().unwrap()], &[]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-2", "2025-10-15");
    check(&server, study, r#"{"message": "描述这张胸片"}"#, 503, "未配置模型");
}

#[test]
fn a_full_queue_answers_503_and_a_client_that_leaves_frees_its_slot() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &["--chat-max-active", "1", "--chat-max-waiting", "1"]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-4", "2025-10-15");
    let long = json!({"message": "请详细描述", "max_new_tokens": 4000, "min_new_tokens": 4000, "temperature": 1.0});

    let mut first = Events::new(post_chat(&server, study, long.clone()));
    first.until("token");
    let waiting = post_chat(&server, study, long.clone()); // the one place in the queue
    assert_eq!(waiting.status(), 200);
    let refused = post_chat(&server, study, long.clone());
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "10");
    assert_eq!(json_body(refused)["error"]["code"], "queue_full");

    // Both leave — the waiting one first, while the first still holds the only slot, so it never starts
    // (dropped the other way round, the freed slot could admit it for a token or two before its own
    // disconnect is seen). Their slots free and a new question is answered in full.
    drop(waiting);
    std::thread::sleep(Duration::from_millis(200));
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let response = post_chat(&server, study, json!({"message": "描述这张胸片", "max_new_tokens": 8}));
        if response.status() == 200 {
            break Events::new(response).all();
        }
        assert!(Instant::now() < deadline, "the slots were not freed within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(events.last().unwrap().name, "done");
    // What the first client saw before it left is recorded, marked as cut short; the question that
    // never started is recorded as unanswered.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stops = loop {
        let history = get_json(&server, &format!("/api/v1/studies/{study}/chat"));
        let stops: Vec<String> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .map(|m| m["stop"].as_str().unwrap().to_string())
            .collect();
        if stops.len() == 3 || Instant::now() > deadline {
            break stops;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stops.len(), 3, "{stops:?}");
    assert!(stops.contains(&"client_gone".to_string()) && stops.contains(&"error".to_string()), "{stops:?}");
    assert!(stops.iter().any(|s| s == "eos" || s == "max_tokens"), "{stops:?}");
    let queue = get_json(&server, "/readyz");
    assert_eq!((queue["model"]["queue_active"].as_u64(), queue["model"]["queue_waiting"].as_u64()), (Some(0), Some(0)));
}

/// The study page's 生成结构化报告 sends no measurements: the draft is told the study's saved calibrated
/// ones (lengths and bidirectionals, with their label as the location and their basis), and they land in
/// its findings; areas and uncalibrated ones are left out.
#[test]
fn a_draft_asked_without_measurements_takes_the_saved_ones() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let file = dicom_fixture("synthetic/cxr.jpg");
    let form = multipart::Form::new()
        .text("patient_id", "P-DRAFT-SAVED")
        .text("pixel_spacing_mm", "0.5")
        .part("files", multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("cxr.jpg"));
    let body: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let (study, instance) =
        (body["files"][0]["study_id"].as_i64().unwrap(), body["files"][0]["instance_id"].as_i64().unwrap());
    let save = |shape: Value, label: &str| {
        let response = server
            .client()
            .post(server.url(&format!("/api/v1/studies/{study}/measurements")))
            .json(&json!({"instance_id": instance, "shape": shape, "label": label}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
    };
    // 24 × 14 pixels at 0.5 mm: 12.0 × 7.0 mm; an ellipse (an area) is not an axis.
    save(
        json!({"kind": "bidirectional", "long": [{"x": 10, "y": 20}, {"x": 34, "y": 20}], "short": [{"x": 22, "y": 13}, {"x": 22, "y": 27}]}),
        "右肺下叶",
    );
    save(json!({"kind": "ellipse", "center": {"x": 30, "y": 30}, "radius_x": 5, "radius_y": 4}), "左肺");

    let response =
        post_chat(&server, study, json!({"message": "生成结构化报告", "mode": "report_draft", "context": false}));
    let done = Events::new(response).all().pop().unwrap();
    assert_eq!(done.name, "done", "{}", done.data);
    let findings = done.data["report"]["findings"].as_array().unwrap().clone();
    let measured: Vec<&Value> = findings.iter().filter(|f| f["measurements"]["long_axis"] == 12.0).collect();
    assert_eq!(measured.len(), 1, "the saved measurement is in exactly one finding: {findings:#?}");
    assert_eq!(measured[0]["measurements"]["short_axis"], 7.0);
    assert_eq!(measured[0]["location"], "右肺下叶", "{findings:#?}");
    assert!(findings.iter().all(|f| f["location"] != "左肺" || f["measurements"].is_null()), "{findings:#?}");
}

/// 40 parallel drafts from one account must not make everyone else's question a 503: past its own cap
/// (`--chat-max-per-client`) one caller gets 429 with Retry-After, and another radiologist is answered.
#[test]
fn one_account_cannot_fill_the_queue_for_everyone_else() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &["--chat-max-active", "2", "--chat-max-waiting", "32", "--chat-max-per-client", "1"]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-FAIR", "2025-10-15");
    let long = json!({"message": "请详细描述", "max_new_tokens": 4000, "min_new_tokens": 4000, "temperature": 1.0});

    let mut first = Events::new(post_chat(&server, study, long.clone()));
    first.until("token");
    let burst: Vec<Response> = (0..10).map(|_| post_chat(&server, study, long.clone())).collect();
    for refused in burst {
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.headers()["retry-after"], "5");
        let body = json_body(refused);
        assert_eq!(body["error"]["code"], "too_many_questions", "{body}");
        assert!(body["error"]["message_zh"].as_str().unwrap().contains("1 个提问"), "{body}");
    }
    // A colleague's question is taken and answered while the first answer still runs.
    common::add_user(data.path().to_str().unwrap(), "colleague", "radiologist", "another sound passphrase");
    let colleague = common::sign_in(&server.url(""), "colleague", "another sound passphrase");
    let response = colleague
        .post(server.url(&format!("/api/v1/studies/{study}/chat")))
        .json(&json!({"message": "描述这张胸片", "max_new_tokens": 8}))
        .send()
        .unwrap();
    let events = Events::new(response).all();
    assert_eq!(events.last().unwrap().name, "done", "{:?}", events.iter().map(|e| &e.name).collect::<Vec<_>>());
    assert!(first.next().is_some_and(|e| e.name == "token"), "the first answer is still running");
    drop(first);
}

#[test]
fn two_conversations_progress_together() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let (study_a, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-5", "2025-10-15");
    let (study_b, _) = upload_image(&server, "synthetic/cxr16.png", "P-CHAT-6", "2025-10-15");
    let long = json!({"message": "请详细描述", "max_new_tokens": 4000, "min_new_tokens": 4000, "temperature": 1.0});
    let mut a = Events::new(post_chat(&server, study_a, long.clone()));
    a.until("token");
    let mut b = Events::new(post_chat(&server, study_b, long));
    b.until("token");
    // Both answers are in the decoding batch at once, and A keeps streaming after B has begun.
    let ready = get_json(&server, "/readyz");
    assert_eq!(ready["model"]["queue_active"], 2, "{ready}");
    assert_eq!(a.next().unwrap().name, "token", "A finished before B started: they did not run together");
    let (rest_a, rest_b) = (a.all(), b.all());
    assert_eq!(rest_a.last().unwrap().name, "done");
    assert_eq!(rest_b.last().unwrap().name, "done");
}

#[test]
fn comparison_puts_the_prior_first_and_ct_questions_see_labelled_slices() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let (prior_study, prior_instance) = upload_image(&server, "synthetic/cxr16.png", "P-CHAT-7", "2025-04-01");
    let (study, instance) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-7", "2025-10-15");
    assert_ne!(prior_study, study);
    let events = Events::new(post_chat(
        &server,
        study,
        json!({"message": "与上次相比有何变化？", "mode": "compare", "max_new_tokens": 4}),
    ))
    .all();
    let heatmap = &events.iter().find(|e| e.name == "heatmap").unwrap().data["images"];
    let order: Vec<(i64, &str)> = heatmap
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["instance_id"].as_i64().unwrap(), h["role"].as_str().unwrap()))
        .collect();
    assert_eq!(order, [(prior_instance, "prior"), (instance, "current")]);
    let shares: f64 = heatmap.as_array().unwrap().iter().map(|h| h["share"].as_f64().unwrap()).sum();
    assert!(shares > 0.0 && shares <= 1.0 + 1e-6, "{shares}");

    // A CT series of five files: all go in, in order, as labelled slices.
    let form = (1..=5).fold(multipart::Form::new(), |form, n| {
        let file = dicom_fixture(&format!("synthetic/ct_series/slice{n}.dcm"));
        form.part("files", multipart::Part::bytes(std::fs::read(file).unwrap()).file_name(format!("slice{n}.dcm")))
    });
    let body: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    assert_eq!(body["stored"], 5, "{body:#}");
    let ct_study = body["files"][0]["study_id"].as_i64().unwrap();
    let events = Events::new(post_chat(&server, ct_study, json!({"message": "请描述", "max_new_tokens": 2}))).all();
    assert_eq!(events.last().unwrap().name, "done");
    let maps = events.iter().find(|e| e.name == "heatmap").unwrap().data["images"].as_array().unwrap().clone();
    assert_eq!(maps.len(), 5);
    assert!(maps.iter().all(|m| m["role"] == "slice"));
    let detail = get_json(&server, &format!("/api/v1/studies/{ct_study}"));
    let in_order: Vec<i64> =
        detail["series"][0]["instances"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let shown: Vec<i64> = maps.iter().map(|m| m["instance_id"].as_i64().unwrap()).collect();
    assert_eq!(shown, in_order);
}

#[test]
fn sigterm_during_an_answer_ends_the_stream_cleanly_and_exits_zero() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start(&data, &[]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-CHAT-8", "2025-10-15");
    let mut events = Events::new(post_chat(
        &server,
        study,
        json!({"message": "请详细描述", "max_new_tokens": 4000, "min_new_tokens": 4000, "temperature": 1.0}),
    ));
    events.until("token");
    let pid = server.child.id();
    let reader = std::thread::spawn(move || events.all());
    std::thread::sleep(Duration::from_millis(50));
    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let rest = reader.join().unwrap();
    let last = rest.last().expect("events after SIGTERM");
    assert_eq!(last.name, "done", "pid {pid}: {:?}", rest.iter().map(|e| &e.name).collect::<Vec<_>>());
    assert_eq!(last.data["stop"], "shutdown");
}

/// "生成结构化报告": every draft, whatever the (random) model samples, parses and validates against
/// report/draft.schema.json, and the report built from it against report/report.schema.json, with the
/// viewer's measurement merged in. Twenty seeds, answered together.
#[test]
fn report_drafts_validate_against_the_schemas_on_every_seed() {
    let _serial = one_at_a_time();
    let schema = |name: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../report").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let draft_schema = jsonschema::validator_for(&schema("draft.schema.json")).unwrap();
    let report_schema = jsonschema::validator_for(&schema("report.schema.json")).unwrap();

    let data = tempfile::tempdir().unwrap();
    // One account asks all twenty: let it (the per-account cap has its own test).
    let server = start(&data, &["--chat-max-active", "20", "--chat-max-per-client", "20"]);
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-DRAFT-1", "2025-10-15");
    let measurement = json!({"location": "右肺上叶", "long_axis_mm": 12.3, "short_axis_mm": 8.1,
                             "basis": "肺窗 −600/1500；像素间距 0.15 毫米（上传者提供）"});
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|seed| {
                let url = server.url(&format!("/api/v1/studies/{study}/chat"));
                let client = server.client().clone();
                let body = json!({"message": "生成结构化报告", "mode": "report_draft", "temperature": 1.0,
                                  "seed": seed, "context": false, "measurements": [measurement]});
                scope.spawn(move || Events::new(client.post(url).json(&body).send().unwrap()).all())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().pop().unwrap())
            .map(|e| {
                assert_eq!(e.name, "done", "{}", e.data);
                e.data
            })
            .collect()
    });
    let mut distinct = std::collections::HashSet::new();
    for done in &answers {
        assert_eq!(done["stop"], "eos", "the draft must complete: {done}");
        let text = done["text"].as_str().unwrap();
        let draft: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("draft is not JSON ({e}): {text}"));
        let errors: Vec<String> = draft_schema.iter_errors(&draft).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "draft {draft}: {errors:?}");
        let report = &done["report"];
        let errors: Vec<String> = report_schema.iter_errors(report).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "report {report}: {errors:?}");
        assert_eq!(report["status"], "draft");
        assert_eq!(report["patient"]["id"], "P-DRAFT-1");
        assert_eq!(report["ai"]["model_name"], "tiny-a");
        let measured: Vec<&Value> =
            report["findings"].as_array().unwrap().iter().filter(|f| f["measurements"]["long_axis"] == 12.3).collect();
        assert_eq!(measured.len(), 1, "the viewer's measurement is in exactly one finding: {report}");
        assert_eq!(measured[0]["measurements"]["short_axis"], 8.1);
        assert_eq!(measured[0]["measurements"]["unit"], "mm");
        distinct.insert(text.to_string());
    }
    assert!(distinct.len() >= 15, "sampling should vary the drafts: {} distinct", distinct.len());
}

/// tiny-a as a text-only checkpoint (`gemma3_text`, the decoder's config at the top level): its weights
/// file is read as it is, the vision tensors in it left unused.
fn text_only_copy_of_tiny_a(into: &std::path::Path) -> std::path::PathBuf {
    let source = fixture("tiny-a");
    let dir = into.join("tiny-text");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.file_name() != "config.json" {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let multimodal: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap()).unwrap();
    let mut config = multimodal["text_config"].clone();
    config["model_type"] = json!("gemma3_text");
    config["eos_token_id"] = multimodal["eos_token_id"].clone();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn a_text_only_model_answers_from_the_text_and_says_it_reads_no_images() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let model = text_only_copy_of_tiny_a(data.path());
    let server = Server::start(
        &[
            "--data-dir",
            data.path().join("data").to_str().unwrap(),
            "--model-dir",
            model.to_str().unwrap(),
            "--pre-read",
            "false",
        ],
        &[],
    );
    wait_for_model(&server);
    let ready = get_json(&server, "/readyz");
    assert_eq!(ready["model"]["text_only"], true, "{ready}");
    assert!(ready["model"]["state"].as_str().unwrap().contains("纯文本模型，不读图像"), "{ready}");

    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-TEXT-1", "2025-10-15");
    // The page's own request names the image it shows: a text-only model is asked without it.
    let events = Events::new(post_chat(
        &server,
        study,
        json!({"message": "结节 8 mm，是否需要随访？", "max_new_tokens": 20, "temperature": 1.0}),
    ))
    .all();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(!names.contains(&"heatmap") && !names.contains(&"error"), "{names:?}");
    let done = &events.last().unwrap().data;
    // Had an image gone into the prompt, the engine would have refused it (an error event, no done).
    assert_eq!(done["model"]["reads_images"], false, "{done}");
}
