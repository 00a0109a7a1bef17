//! The viewer's measurements saved with a study: the server measures the drawn shape again on the stored
//! image (CT phantom of imaging/tests/fixtures/make_dicom_fixtures.py: 256×256, 0.7 mm, a 23.4 × 19.1 mm
//! nodule of 40 HU at (170, 160) in lung at −850 HU), keeps the basis, lists, deletes.

mod common;

use common::{Server, upload_fixture as upload};
use serde_json::{Value, json};

fn save(server: &Server, study: i64, body: Value) -> (u16, Value) {
    let response =
        server.client().post(server.url(&format!("/api/v1/studies/{study}/measurements"))).json(&body).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn close(a: &Value, b: f64, tolerance: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() <= tolerance)
}

#[test]
fn measurements_are_measured_by_the_server_saved_listed_and_deleted() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let (study, instance) = upload(&server, "synthetic/ct_phantom.dcm");

    // 100 pixels along a row at 0.7 mm: 70 mm, with the window shown and the spacing as its basis.
    let (status, length) = save(
        &server,
        study,
        json!({"instance_id": instance, "shape": {"kind": "length", "a": {"x": 20, "y": 20}, "b": {"x": 120, "y": 20}},
               "window": {"center": -600, "width": 1500}, "label": " 测试线 "}),
    );
    assert_eq!(status, 201, "{length:#}");
    assert!(close(&length["outcome"]["length"], 70.0, 1e-9), "{length:#}");
    assert_eq!(length["outcome"]["calibrated"], true);
    assert_eq!(length["basis"]["spacing"]["source"], "pixel_spacing");
    assert_eq!(length["basis"]["window"], json!({"center": -600.0, "width": 1500.0}));
    assert_eq!((length["label"].as_str(), length["frame"].as_i64()), (Some("测试线"), Some(1)));
    assert_eq!(length["created_by"], common::DOCTOR);
    assert_eq!(length["image"], json!({"columns": 256, "rows": 256}));

    // Bidirectional across the large nodule; the mean diameter to one decimal.
    let (status, bi) = save(
        &server,
        study,
        json!({"instance_id": instance, "shape": {"kind": "bidirectional",
               "long": [{"x": 150, "y": 150}, {"x": 170, "y": 150}], "short": [{"x": 160, "y": 140}, {"x": 160, "y": 150}]}}),
    );
    assert_eq!(status, 201, "{bi:#}");
    assert!(close(&bi["outcome"]["long_axis"], 14.0, 1e-9) && close(&bi["outcome"]["short_axis"], 7.0, 1e-9), "{bi:#}");
    assert_eq!(bi["outcome"]["mean_diameter"], 10.5);

    // An ellipse inside the nodule reads its 40 HU; one in the lung −850 HU.
    let (status, roi) = save(
        &server,
        study,
        json!({"instance_id": instance, "shape": {"kind": "ellipse", "center": {"x": 170, "y": 160}, "radius_x": 5, "radius_y": 4}}),
    );
    assert_eq!(status, 201, "{roi:#}");
    assert!(close(&roi["outcome"]["roi"]["mean"], 40.0, 1.0), "{roi:#}");
    assert!(close(&roi["outcome"]["roi"]["area_mm2"], std::f64::consts::PI * 20.0 * 0.49, 1e-9), "{roi:#}");
    assert_eq!(roi["basis"]["units"], "HU");
    let (_, lung) = save(
        &server,
        study,
        json!({"instance_id": instance, "shape": {"kind": "ellipse", "center": {"x": 30, "y": 220}, "radius_x": 6, "radius_y": 6}}),
    );
    assert!(close(&lung["outcome"]["roi"]["mean"], -850.0, 1.0), "{lung:#}");

    // Refusals, each with a reason and nothing saved.
    let bad = [
        (
            json!({"instance_id": instance, "shape": {"kind": "length", "a": {"x": 0, "y": 0}, "b": {"x": 300, "y": 0}}}),
            422,
            "bad_shape",
        ),
        (
            json!({"instance_id": instance, "shape": {"kind": "length", "a": {"x": 5, "y": 5}, "b": {"x": 5, "y": 5}}}),
            422,
            "bad_shape",
        ),
        (
            json!({"instance_id": instance, "frame": 2, "shape": {"kind": "length", "a": {"x": 0, "y": 0}, "b": {"x": 1, "y": 0}}}),
            404,
            "not_found",
        ),
        (json!({"instance_id": instance, "shape": {"kind": "angle"}}), 422, "invalid_request"),
        (
            json!({"instance_id": 999999, "shape": {"kind": "length", "a": {"x": 0, "y": 0}, "b": {"x": 1, "y": 0}}}),
            404,
            "not_found",
        ),
        (
            json!({"instance_id": instance, "window": {"center": 0, "width": 0},
                "shape": {"kind": "length", "a": {"x": 0, "y": 0}, "b": {"x": 1, "y": 0}}}),
            400,
            "bad_request",
        ),
    ];
    for (body, status, code) in bad {
        let (got, answer) = save(&server, study, body.clone());
        assert_eq!(got, status, "{body} → {answer:#}");
        assert_eq!(answer["error"]["code"], code, "{answer:#}");
        assert!(answer["error"]["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{answer:#}");
    }
    // An image of another study is not measured under this one.
    let (other_study, other_instance) = upload(&server, "synthetic/cr_monochrome1.dcm");
    let (status, _) = save(
        &server,
        study,
        json!({"instance_id": other_instance, "shape": {"kind": "length", "a": {"x": 0, "y": 0}, "b": {"x": 1, "y": 0}}}),
    );
    assert_eq!(status, 400);

    // The CR has ImagerPixelSpacing only: the caveat comes with the number.
    let (status, cr) = save(
        &server,
        other_study,
        json!({"instance_id": other_instance, "shape": {"kind": "length", "a": {"x": 50, "y": 100}, "b": {"x": 100, "y": 100}}}),
    );
    assert_eq!(status, 201, "{cr:#}");
    assert!(close(&cr["outcome"]["length"], 10.0, 1e-9), "{cr:#}");
    assert_eq!(cr["basis"]["spacing"]["caveat_zh"], "探测器平面，未校正放大");

    let list: Value = server.get(&format!("/api/v1/studies/{study}/measurements")).json().unwrap();
    let ids: Vec<i64> = list["measurements"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        [
            length["id"].as_i64().unwrap(),
            bi["id"].as_i64().unwrap(),
            roi["id"].as_i64().unwrap(),
            lung["id"].as_i64().unwrap()
        ]
    );

    // Delete: gone from the list, still in the database with who and when; twice → 404.
    let delete = |id: &Value| {
        server.client().delete(server.url(&format!("/api/v1/measurements/{id}"))).send().unwrap().status().as_u16()
    };
    assert_eq!(delete(&bi["id"]), 204);
    assert_eq!(delete(&bi["id"]), 404);
    let list: Value = server.get(&format!("/api/v1/studies/{study}/measurements")).json().unwrap();
    assert_eq!(list["measurements"].as_array().unwrap().len(), 3);
    assert_eq!(server.get("/api/v1/studies/999999/measurements").status().as_u16(), 404);
    // The audit trail ties the delete to the study (and so to the patient's pseudonym).
    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=200")).send().unwrap().json().unwrap();
    let deleted = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "DELETE /api/v1/measurements/{id}" && r["status"] == 204);
    let deleted = deleted.unwrap_or_else(|| panic!("no audit row for the delete: {rows:#}"));
    assert_eq!((deleted["study_id"].as_i64(), deleted["actor_name"].as_str()), (Some(study), Some(common::DOCTOR)));
    assert!(deleted["patient_ref"].as_str().is_some_and(|p| p.starts_with("P-")), "{deleted:#}");
    drop(server);
    let db = query(data.path(), "SELECT deleted_by FROM measurements WHERE deleted_at IS NOT NULL");
    assert_eq!(db.trim(), common::DOCTOR);
}

/// The values endpoint says which window the server renders with, so the browser draws the same picture.
#[test]
fn values_carry_the_default_window_and_the_photometric_inversion() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    let (_, ct) = upload(&server, "synthetic/ct_phantom.dcm");
    let (_, cr) = upload(&server, "synthetic/cr_monochrome1.dcm");
    let response = server.get(&format!("/api/v1/instances/{ct}/frames/1/values"));
    let h = response.headers();
    assert_eq!((h["x-window-center"].to_str().unwrap(), h["x-window-width"].to_str().unwrap()), ("-600", "1500"));
    assert_eq!(h["x-inverted"], "false");
    assert_eq!(h["x-sample-format"], "i16");
    let response = server.get(&format!("/api/v1/instances/{cr}/frames/1/values"));
    let h = response.headers();
    assert_eq!((h["x-window-center"].to_str().unwrap(), h["x-window-width"].to_str().unwrap()), ("2048", "4096"));
    assert_eq!(h["x-inverted"], "true");
}

/// One query through Python's sqlite3 (the server is stopped).
fn query(data_dir: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"])
        .arg(data_dir.join("db/medgemma-x.sqlite3"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
