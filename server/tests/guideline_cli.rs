//! `medgemma-x guideline …` as an integrator calls it: a case file in, JSON out, clear errors.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_medgemma-x");

fn run(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn lung_rads_from_a_file_prints_category_management_basis_and_nodules() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("case.json");
    std::fs::write(
        &case,
        r#"{"exam": {"baseline": true}, "nodules": [
            {"id": "右肺上叶尖段", "type": "solid", "long_axis_mm": 23.4, "short_axis_mm": 19.1, "features": ["spiculation"]},
            {"id": "左肺下叶", "type": "ground_glass", "long_axis_mm": 8, "short_axis_mm": 6}]}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&["guideline", "lung-rads", "--input", case.to_str().unwrap()], "");
    assert!(ok, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["guideline"], "Lung-RADS v2022");
    assert_eq!(out["category"], "4X");
    assert_eq!(out["nodules"][0]["mean_diameter_mm"], 21.3);
    assert_eq!(out["nodules"][1]["category"], "2");
    assert!(out["basis"]["zh"].as_str().unwrap().contains("右肺上叶尖段"));
    assert!(out["management"]["zh"].as_str().unwrap().contains("诊断性胸部CT"));
}

#[test]
fn fleischner_from_standard_input() {
    let case = r#"{"patient": {"age": 52, "high_risk": false},
                   "nodules": [{"id": "a", "type": "solid", "long_axis_mm": 7, "short_axis_mm": 6}]}"#;
    let (ok, stdout, stderr) = run(&["guideline", "fleischner", "--input", "-"], case);
    assert!(ok, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["applicable"], true);
    assert_eq!(
        out["recommendations"][0]["management"]["en"],
        "Low risk: CT at 6–12 months, then consider CT at 18–24 months"
    );
}

#[test]
fn wrong_json_is_a_clear_error() {
    let (ok, _, stderr) = run(&["guideline", "lung-rads", "--input", "-"], r#"{"exam": {"baseline": "yes"}}"#);
    assert!(!ok);
    assert!(stderr.contains("invalid case JSON") && stderr.contains("line 1"), "{stderr}");
    let (ok, _, stderr) = run(&["guideline", "lung-rads", "--input", "/nonexistent/case.json"], "");
    assert!(!ok);
    assert!(stderr.contains("cannot read /nonexistent/case.json"), "{stderr}");
}
