//! `medgemma-x report render`: HL7 v2.5 checked by hl7apy at STRICT level, FHIR R4 by fhir.resources
//! (FHIR 4.0.1), both real parsers from the project venv (scripts/test.sh installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_medgemma-x");

/// A signed, AI-drafted report with Chinese text, every HL7 delimiter in a value, and a line break.
const REPORT: &str = r#"{
  "exam_id": "CZ20240511-087",
  "report_summary": "右肺上叶尖段见一实性结节，大小约2.3×1.9cm，边缘呈分叶状伴毛刺。\n余肺未见异常。",
  "findings": [{
    "location": "右肺上叶尖段", "feature": "实性结节", "morphology": "分叶状",
    "measurements": {"long_axis": 23.4, "short_axis": 19.1, "unit": "mm", "basis": "肺窗 WW=1500 WL=-600"},
    "density": "软组织密度(CT值约42HU)", "boundary": "分叶状伴毛刺 | ^ & ~ \\ 测试",
    "adjacent_structures": "邻近胸膜牵拉", "nodule_type": "solid"
  }],
  "recommendation": "建议增强CT进一步评估，3个月后复查低剂量CT",
  "patient": {"id": "P000123", "name": "张三", "sex": "M", "birth_date": "19610302"},
  "study": {"accession_number": "A2024-0511-087", "modality": "CT", "study_date": "20240511", "description": "胸部CT平扫"},
  "guideline_results": [{"guideline": "Lung-RADS v2022", "category": "4X",
    "management": "诊断性胸部CT", "basis": "实性结节，基线，平均直径21.3毫米；≥15毫米 → 4B，伴毛刺征 → 4X"}],
  "status": "signed",
  "signatures": [{"role": "radiologist", "name": "李医生", "signed_at": "2024-05-11T14:30:00+08:00"}],
  "ai": {"model_name": "MedGemma", "model_version": "1.5-4b-it", "generated_at": "2024-05-11T14:22:03+08:00", "hardware": "NVIDIA RTX 4090"}
}"#;

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "no project venv at {}: run scripts/test.sh", python.display());
    python
}

/// Runs `medgemma-x report render --format FORMAT --input INPUT --out OUT EXTRA…`.
fn render_command(input: &Path, format: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["report", "render", "--format", format])
        .args(extra)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Renders REPORT as `format` into `dir`, asserting success.
fn render(dir: &Path, format: &str) -> PathBuf {
    let input = dir.join("report.json");
    std::fs::write(&input, REPORT).unwrap();
    let out = dir.join(format!("report.{format}"));
    let output = render_command(&input, format, &out, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    out
}

fn validate(script: &str, file: &Path) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../report/tests").join(script);
    let output = Command::new(python()).arg("-W").arg("ignore").arg(script).arg(file).output().unwrap();
    assert!(
        output.status.success(),
        "validation failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(file).unwrap().replace('\r', "\n")
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn hl7_oru_r01_passes_hl7apy_strict_and_carries_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let file = render(tmp.path(), "hl7");
    let summary = validate("validate_hl7.py", &file);
    assert_eq!(summary["message_type"], "ORU^R01^ORU_R01");
    assert_eq!(summary["charset"], "UNICODE UTF-8");
    let segments: Vec<&str> = summary["segments"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(&segments[..3], ["MSH", "PID", "OBR"]);
    let obx = summary["obx"].as_array().unwrap();
    let find = |code: &str| obx.iter().find(|o| o[1] == code).unwrap_or_else(|| panic!("no OBX {code}: {obx:?}"));
    assert_eq!(find("LONG_AXIS"), &serde_json::json!(["NM", "LONG_AXIS", "1", "23.4", "mm^毫米^UCUM"]));
    assert_eq!(find("SHORT_AXIS")[3], "19.1");
    assert_eq!(find("AI_LABEL")[3], "【AI辅助分析】结论仅供参考，须由执业医师复核确认");
    // Delimiters inside values are escaped, so the finding stays one field; line breaks become \.br\.
    let finding = find("FINDING")[3].as_str().unwrap();
    assert!(finding.contains(r"分叶状伴毛刺 \F\ \S\ \T\ \R\ \E\ 测试"), "{finding}");
    assert!(find("SUMMARY")[3].as_str().unwrap().contains(r"毛刺。\.br\余肺"));
    assert!(find("GUIDELINE")[3].as_str().unwrap().contains("▲ 依据："));
}

#[test]
fn fhir_bundle_validates_as_r4_with_ucum_millimetres() {
    let tmp = tempfile::tempdir().unwrap();
    let file = render(tmp.path(), "fhir");
    let summary = validate("validate_fhir.py", &file);
    assert_eq!(summary["status"], "final");
    assert!(summary["conclusion"].as_str().unwrap().starts_with("【AI辅助分析】结论仅供参考，须由执业医师复核确认"));
    assert_eq!(summary["resource_types"][0], "Patient");
    assert_eq!(summary["resource_types"][1], "DiagnosticReport");
    assert_eq!(summary["results"].as_array().unwrap().len(), 3); // finding, guideline, recommendation
    assert_eq!(summary["quantities"][0], serde_json::json!([23.4, "mm", "http://unitsofmeasure.org"]));
    // FHIR dates are YYYY-MM-DD; the report's are DICOM's YYYYMMDD (the validator lets both through).
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let resource = |kind: &str| {
        bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).find(|r| r["resourceType"] == kind)
    };
    assert_eq!(resource("Patient").unwrap()["birthDate"], "1961-03-02");
    assert_eq!(resource("DiagnosticReport").unwrap()["effectiveDateTime"], "2024-05-11");
}

#[test]
fn json_round_trips_and_bad_json_is_refused_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = render(tmp.path(), "json");
    let again: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(again["findings"][0]["measurements"]["long_axis"], 23.4);

    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"exam_id": 5}"#).unwrap();
    let out = tmp.path().join("never.hl7");
    let output = render_command(&bad, "hl7", &out, &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid report JSON"));
    assert!(!out.exists());
}

fn poppler(tool: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install poppler-utils)"));
    assert!(output.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn pdf_has_the_chinese_text_layer_label_units_and_an_embedded_subset_font() {
    let tmp = tempfile::tempdir().unwrap();
    let file = render(tmp.path(), "pdf");
    let text = poppler("pdftotext", &[file.as_os_str(), "-".as_ref()]);
    for expected in [
        "胸部影像诊断报告",
        "【AI辅助分析】结论仅供参考，须由执业医师复核确认",
        "右肺上叶尖段：实性结节",
        "长径23.4毫米，短径19.1毫米",
        "测量依据：肺窗 WW=1500 WL=-600",
        "▲ 依据：",
        // DICOM dates (as the server stores them) as people read them.
        "出生日期：1961-03-02",
        "检查日期：2024-05-11",
        // Times as Beijing time, to the minute (the signature's offset is +08:00 already).
        "报告医师：李医生 签名时间：2024-05-11 14:30（北京时间）",
        "生成时间：2024-05-11 14:22（北京时间） | 模型版本：MedGemma 1.5-4b-it | 硬件环境：NVIDIA RTX 4090",
    ] {
        assert!(text.contains(expected), "PDF text lacks {expected:?}:\n{text}");
    }
    // Embedded (emb), subset (sub), with a Unicode map (uni): selectable and searchable text.
    let fonts = poppler("pdffonts", &[file.as_os_str()]);
    assert!(fonts.lines().any(|l| l.contains("CID TrueType") && l.contains("yes yes yes")), "{fonts}");
    assert!(std::fs::metadata(&file).unwrap().len() < 200_000, "font not subset?");
    // And it renders.
    let png = tmp.path().join("page");
    poppler("pdftoppm", &["-r".as_ref(), "50".as_ref(), "-png".as_ref(), file.as_os_str(), png.as_os_str()]);
    assert!(tmp.path().join("page-1.png").is_file());
}

#[test]
fn a_missing_font_is_a_clear_error_and_no_file_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("report.json");
    std::fs::write(&input, REPORT).unwrap();
    let out = tmp.path().join("report.pdf");
    let output = render_command(&input, "pdf", &out, &["--font", "/nonexistent/font.ttc"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("report font not found: /nonexistent/font.ttc"));
    assert!(!out.exists());
}

#[test]
fn a_long_report_flows_onto_more_pages_each_with_label_and_footer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut report: Value = serde_json::from_str(REPORT).unwrap();
    let finding = report["findings"][0].clone();
    report["findings"] = Value::Array(vec![finding; 30]);
    let input = tmp.path().join("long.json");
    std::fs::write(&input, report.to_string()).unwrap();
    let out = tmp.path().join("long.pdf");
    assert!(render_command(&input, "pdf", &out, &[]).status.success());
    let text = poppler("pdftotext", &[out.as_os_str(), "-".as_ref()]);
    let pages = text.matches("【AI辅助分析】结论仅供参考，须由执业医师复核确认").count();
    assert!(pages >= 3, "expected several pages, got {pages}");
    assert!(text.contains(&format!("第{pages}/{pages}页")), "{text}");
    assert!(text.contains("30. 右肺上叶尖段"));
}

/// The seed's JSON as it is (no patient block) and a patient without a name still make valid HL7: the
/// required PID-3 and PID-5 carry HL7's explicit null.
#[test]
fn hl7_without_a_known_patient_name_still_validates() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, json) in [
        ("seed", r#"{"exam_id": "CZ1", "report_summary": "两肺清晰", "findings": [], "recommendation": ""}"#),
        ("nameless", r#"{"exam_id": "CZ2", "report_summary": "两肺清晰", "patient": {"id": "P-9"}}"#),
    ] {
        let input = tmp.path().join(format!("{name}.json"));
        std::fs::write(&input, json).unwrap();
        let out = tmp.path().join(format!("{name}.hl7"));
        let output = render_command(&input, "hl7", &out, &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        validate("validate_hl7.py", &out);
        assert!(std::fs::read_to_string(&out).unwrap().contains("||\"\""), "explicit null in PID");
    }
}
