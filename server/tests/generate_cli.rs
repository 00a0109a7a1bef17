//! `medgemma-x generate` on the tiny golden checkpoint: the answer transformers gave, end to end.

mod common;

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_medgemma-x");

#[test]
fn generate_json_reproduces_the_transformers_greedy_answer_with_an_image() {
    let dir = common::fixture("tiny-a");
    let golden: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let case = golden.iter().find(|c| c["name"] == "one_image_zh").unwrap();
    let output = Command::new(BIN)
        .args(["generate", "--model-dir"])
        .arg(&dir)
        .args(["--system", "你是放射科医生的助手。", "--prompt", "描述这张胸片", "--image"])
        .arg(dir.join("a.png"))
        .args(["--max-new-tokens", "16", "--temperature", "0", "--device", "cpu", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["prompt_token_ids"], case["prompt_token_ids"]);
    let expected: Vec<i64> = case["greedy_token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let got: Vec<i64> = result["token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(got, expected[..got.len()], "greedy tokens differ from transformers");
    assert!(!got.is_empty());
    assert_eq!(result["logprobs"].as_array().unwrap().len(), got.len());
    for key in ["load_ms", "prefill_ms", "decode_ms", "decode_tokens_per_s"] {
        assert!(result["timings"][key].as_f64().is_some(), "timings.{key} missing: {result}");
    }
}

#[test]
fn a_missing_model_folder_is_named_in_the_error() {
    let output =
        Command::new(BIN).args(["generate", "--model-dir", "/nonexistent/medgemma", "--prompt", "x"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/medgemma/config.json"), "{stderr}");
}

/// A DICOM image goes through imaging::model_input: a 32×32 grey DICOM whose window is the identity gives
/// the model exactly the pixels of the same picture as PNG, so the greedy answers match.
#[test]
fn a_dicom_image_reaches_the_model_as_the_same_pixels_as_its_png() {
    let dir = common::fixture("tiny-a");
    let answer = |image: std::path::PathBuf| -> Value {
        let output = Command::new(BIN)
            .args(["generate", "--model-dir"])
            .arg(&dir)
            .args(["--prompt", "描述这张胸片", "--image"])
            .arg(image)
            .args(["--max-new-tokens", "8", "--temperature", "0", "--device", "cpu", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    let from_dicom = answer(common::dicom_fixture("synthetic/grey32.dcm"));
    let from_png = answer(common::dicom_fixture("synthetic/grey32.png"));
    assert_eq!(from_dicom["token_ids"], from_png["token_ids"]);
    assert_eq!(from_dicom["logprobs"], from_png["logprobs"]);
}
