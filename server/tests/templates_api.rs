//! Report templates and phrases on a running server: the department's starting set, a reader's own
//! (invisible to colleagues), department templates only a department head changes, codes unique, bad
//! input refused with nothing stored, every change in the audit trail.

mod common;

use common::{Server, add_user, sign_in};
use serde_json::{Value, json};

fn codes(list: &Value) -> Vec<(String, String)> {
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["scope"].as_str().unwrap().to_string(), t["code"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn templates_are_the_departments_and_each_readers_own() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = Server::start(&["--data-dir", dir], &[]);
    add_user(dir, "head", "department_head", "department review 1");
    add_user(dir, "colleague", "radiologist", "another reader 1");
    let head = sign_in(&server.url(""), "head", "department review 1");
    let colleague = sign_in(&server.url(""), "colleague", "another reader 1");
    let doctor = server.client();
    let list = |client: &reqwest::blocking::Client| -> Value {
        client.get(server.url("/api/v1/templates")).send().unwrap().json().unwrap()
    };

    // The starting set: 正常胸片 and the others, the department's.
    let start = list(doctor);
    let normal = start["templates"].as_array().unwrap().iter().find(|t| t["code"] == "zc").unwrap().clone();
    assert_eq!(normal["name"], "正常胸片");
    assert_eq!(normal["scope"], "site");
    assert!(normal["report_summary"].as_str().unwrap().contains("肋膈角锐利"));
    let nodule = start["templates"].as_array().unwrap().iter().find(|t| t["code"] == "jj").unwrap();
    assert_eq!(nodule["findings"][0]["morphology"], "类圆形", "findings keep the five-part frame");

    // A reader's own template, also under a code the department uses: theirs is found first.
    let mine = json!({"code": "ZC", "name": "我的正常胸片", "report_summary": "两肺未见异常。",
                      "recommendation": "随诊。"});
    let created = doctor.post(server.url("/api/v1/templates")).json(&mine).send().unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().unwrap();
    assert_eq!((created["scope"].as_str(), created["code"].as_str()), (Some("personal"), Some("zc")));
    let own = codes(&list(doctor));
    assert_eq!(own[0], ("personal".into(), "zc".into()), "the reader's own first: {own:?}");
    assert!(own.contains(&("site".into(), "zc".into())));
    // A colleague sees the department's, not this reader's; cannot change or delete it either.
    assert!(!codes(&list(&colleague)).iter().any(|(scope, _)| scope == "personal"));
    let id = created["id"].as_i64().unwrap();
    let theirs = colleague.put(server.url(&format!("/api/v1/templates/{id}"))).json(&mine).send().unwrap();
    assert_eq!(theirs.status(), 404);
    assert_eq!(colleague.delete(server.url(&format!("/api/v1/templates/{id}"))).send().unwrap().status(), 404);
    // The same code twice for one reader is refused.
    let again = doctor.post(server.url("/api/v1/templates")).json(&mine).send().unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().unwrap().contains("已被使用"));

    // The department's templates: a radiologist may not add or change them, a department head may.
    let site = json!({"scope": "site", "code": "qx", "name": "气胸", "report_summary": "右侧气胸。",
                      "findings": [{"location": "右侧胸腔", "feature": "气胸", "adjacent_structures": "肺组织受压约30%"}]});
    let refused = doctor.post(server.url("/api/v1/templates")).json(&site).send().unwrap();
    assert_eq!(refused.status(), 403);
    let normal_id = normal["id"].as_i64().unwrap();
    let mut edited = normal.clone();
    for key in ["id", "updated_by", "updated_at"] {
        edited.as_object_mut().unwrap().remove(key);
    }
    edited["recommendation"] = json!("胸部未见明显异常，随诊。");
    let url = server.url(&format!("/api/v1/templates/{normal_id}"));
    assert_eq!(doctor.put(&url).json(&edited).send().unwrap().status(), 403);
    assert_eq!(doctor.delete(&url).send().unwrap().status(), 403);
    let by_head = head.put(&url).json(&edited).send().unwrap();
    assert_eq!(by_head.status(), 200);
    let by_head: Value = by_head.json().unwrap();
    assert_eq!(by_head["recommendation"], "胸部未见明显异常，随诊。");
    assert_eq!(by_head["updated_by"], "head");
    assert_eq!(head.post(server.url("/api/v1/templates")).json(&site).send().unwrap().status(), 201);
    assert!(codes(&list(&colleague)).contains(&("site".into(), "qx".into())), "every reader sees it");

    // Bad input: a clear refusal (400 from the rules, 422 for JSON of the wrong shape), nothing stored.
    let before = codes(&list(doctor));
    for (body, status, says) in [
        (json!({"code": "a b", "name": "x", "report_summary": "x"}), 400, "模板代码"),
        (json!({"code": "ab", "name": "", "report_summary": "x"}), 400, "模板名称"),
        (json!({"code": "ab", "name": "空"}), 400, "没有内容"),
        (
            json!({"code": "ab", "name": "x", "findings": [{"location": "右肺", "feature": "结节",
                "measurements": {"long_axis": 8.0, "unit": "mm"}}]}),
            400,
            "测量",
        ),
        (json!({"code": "ab", "name": "x", "report_summary": "长".repeat(8001)}), 400, "过长"),
        (json!({"code": "ab", "name": "x", "report_summary": "x", "colour": "red"}), 422, "colour"),
        (json!({"scope": "ward", "code": "ab", "name": "x", "report_summary": "x"}), 422, "scope"),
    ] {
        let response = doctor.post(server.url("/api/v1/templates")).json(&body).send().unwrap();
        assert_eq!(response.status(), status, "{body}");
        let text = response.text().unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }
    assert_eq!(codes(&list(doctor)), before);

    // The reader deletes their own; the trail has every change with who made it.
    assert_eq!(doctor.delete(server.url(&format!("/api/v1/templates/{id}"))).send().unwrap().status(), 204);
    assert!(!codes(&list(doctor)).iter().any(|(scope, _)| scope == "personal"));
    let trail: Value = server.admin().get(server.url("/api/v1/audit?limit=200")).send().unwrap().json().unwrap();
    let details: Vec<(String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["actor_name"].as_str()?.to_string(), r["detail"].as_str()?.to_string())))
        .filter(|(_, d)| d.starts_with("template."))
        .collect();
    for expected in [
        ("test-doctor", "template.add scope=personal code=zc"),
        ("head", "template.edit scope=site code=zc"),
        ("head", "template.add scope=site code=qx"),
        ("test-doctor", "template.delete scope=personal code=zc"),
    ] {
        assert!(
            details.iter().any(|(who, d)| who == expected.0 && d == expected.1),
            "{expected:?} not in the trail: {details:?}"
        );
    }
}
