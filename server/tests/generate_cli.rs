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

fn model_check(path: &std::path::Path, json: bool) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command.args(["model", "check"]).arg(path);
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

/// The tiny checkpoint read from its headers: what it holds, counted independently from the file.
#[test]
fn model_check_reads_a_checkpoint_folder_from_its_headers() {
    let dir = common::fixture("tiny-a");
    let (code, stdout, stderr) = model_check(&dir, true);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let model = &report["model"];
    assert_eq!(model["format"], "Hugging Face folder");
    assert_eq!(model["architecture"], "gemma3");
    assert_eq!(model["reads_images"], true);
    // Stored bytes = the safetensors file less its 8-byte length and JSON header.
    let file = std::fs::read(dir.join("model.safetensors")).unwrap();
    let header = u64::from_le_bytes(file[..8].try_into().unwrap());
    assert_eq!(model["stored_bytes"].as_u64().unwrap(), file.len() as u64 - 8 - header);
    let parameters = model["parameters"].as_u64().unwrap();
    assert_eq!(model["storage"][0]["kind"], "F32");
    assert_eq!(parameters * 4, model["stored_bytes"].as_u64().unwrap(), "an f32 checkpoint stores 4 bytes a value");
    assert_eq!(model["loaded_bytes"][1]["dtype"], "bf16");
    assert_eq!(model["loaded_bytes"][1]["bytes"].as_u64().unwrap(), parameters * 2);
    assert_eq!(report["runs_here"], true);

    let (code, text, _) = model_check(&dir, false);
    assert_eq!(code, Some(0));
    for needle in ["图文模型 / text and images", "结论 / verdict: 可以运行"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

/// The real gemma-3-270m GGUF (target/real-models, made by models/tests/fixtures/make_gemma3_270m.py):
/// 268 098 176 parameters as transformers counts them, text only, its storage types named.
#[test]
fn model_check_describes_the_real_gguf_file_and_refuses_a_broken_one() {
    let gguf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/real-models/gemma3-270m-gguf/gemma-3-270m-q4_k_m.gguf");
    assert!(gguf.is_file(), "no {}: run scripts/test.sh", gguf.display());
    let (code, stdout, stderr) = model_check(&gguf, true);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["model"]["format"], "GGUF v3");
    assert_eq!(report["model"]["architecture"], "gemma3_text");
    assert_eq!(report["model"]["parameters"], 268_098_176);
    assert_eq!(report["model"]["vocab_size"], 262_144);
    let kinds: Vec<&str> =
        report["model"]["storage"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    for kind in ["Q8_0", "Q5_0", "Q4_K", "Q6_K", "F32"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    // int8 holds the decoder projections but down_proj in a byte a value, the rest (embeddings, norms,
    // down_proj) in f32: less than f32, more than a quarter of it.
    let loaded = &report["model"]["loaded_bytes"];
    let (f32_bytes, int8_bytes) = (loaded[0]["bytes"].as_u64().unwrap(), loaded[2]["bytes"].as_u64().unwrap());
    assert_eq!(loaded[2]["dtype"], "int8 (f32 compute)");
    assert!(int8_bytes < f32_bytes && int8_bytes > f32_bytes / 4, "{loaded}");
    let (_, text, _) = model_check(&gguf, false);
    assert!(text.contains("纯文本模型，不读图像"), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.gguf");
    std::fs::write(&broken, &std::fs::read(&gguf).unwrap()[..4096]).unwrap();
    let (code, _, stderr) = model_check(&broken, false);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("broken.gguf") && stderr.contains("bytes left can hold"), "{stderr}");
}
