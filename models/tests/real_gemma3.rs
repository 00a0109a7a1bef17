//! Golden tests on the real google/gemma-3-270m: trained weights, the real 262 144-token Gemma 3 tokenizer,
//! read from the Q4_K_M GGUF file itself and from the text-only Hugging Face folder that transformers' GGUF
//! loader makes of it, against transformers' f32 answers on the same (dequantized) weights.
//! tests/fixtures/make_gemma3_270m.py writes all three into target/real-models (scripts/test.sh runs it).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;

use models::Engine;
use models::generate::GenerateOptions;
use models::gguf::GgufFile;
use models::prompt::{Role, Turn};
use models::text::Logits;
use models::weights::Quantization;
use serde_json::Value;
use tch::{Device, Kind};
use tokenizers::Tokenizer;

const GGUF: &str = "gemma3-270m-gguf/gemma-3-270m-q4_k_m.gguf";
const HF_FOLDER: &str = "gemma3-270m-hf";
/// The bar: log-probs of the chosen tokens within 2e-3 of transformers' f32 run.
const LOGPROB_TOLERANCE: f64 = 2e-3;
/// Greedy tokens are compared up to the first step where transformers' best two logits are closer than
/// this: past it, f32 rounding in another order may fairly pick the other token.
const CLEAR_MARGIN: f64 = 0.005;

fn real_models() -> PathBuf {
    let dir = std::env::var_os("MEDGEMMA_X_REAL_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/real-models"));
    assert!(
        dir.join("gemma3-270m-golden.json").is_file(),
        "no real-model fixtures in {}: run scripts/test.sh, or .venv/bin/python models/tests/fixtures/make_gemma3_270m.py target/real-models",
        dir.display()
    );
    dir
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(real_models().join("gemma3-270m-golden.json")).unwrap()).unwrap()
}

fn ids(value: &Value) -> Vec<i64> {
    value.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()
}

fn floats(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn check_texts(tokenizer: &Tokenizer, source: &str) {
    let golden = golden();
    for case in golden["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got: Vec<i64> = tokenizer.encode(text, false).unwrap().get_ids().iter().map(|&id| i64::from(id)).collect();
        assert_eq!(got, ids(&case["ids"]), "{source}: ids of {text:?}");
    }
}

#[test]
fn the_tokenizer_rebuilt_from_gguf_metadata_gives_transformers_ids() {
    let file = GgufFile::open(&real_models().join(GGUF)).unwrap();
    let json = models::gguf::tokenizer::tokenizer_json(&file).unwrap();
    let tokenizer = Tokenizer::from_str(&json.to_string()).unwrap();
    assert_eq!(tokenizer.get_vocab_size(true), 262_144);
    check_texts(&tokenizer, "GGUF metadata");
}

#[test]
fn the_converted_folders_tokenizer_gives_the_same_ids() {
    let tokenizer = Tokenizer::from_file(real_models().join(HF_FOLDER).join("tokenizer.json")).unwrap();
    check_texts(&tokenizer, "tokenizer.json");
}

/// Prompt ids, then greedy tokens and their log-probs, for every golden chat.
fn check_engine(engine: &Engine, source: &str) {
    assert!(!engine.reads_images(), "{source}: gemma-3-270m is text-only");
    let golden = golden();
    for chat in golden["chats"].as_array().unwrap() {
        let name = chat["name"].as_str().unwrap();
        let turn = Turn {
            role: Role::User,
            text: chat["user"].as_str().unwrap().to_string(),
            images: 0,
            image_captions: Vec::new(),
        };
        let prompt = engine.encode_chat(chat["system"].as_str(), std::slice::from_ref(&turn)).unwrap();
        assert_eq!(prompt, ids(&chat["prompt_token_ids"]), "{source}/{name}: prompt ids");

        let expected = ids(&chat["greedy_token_ids"]);
        let expected_logprobs = floats(&chat["greedy_logprobs"]);
        let margins = floats(&chat["top2_margins"]);
        // Compared while transformers' choice is clear, and up to its first eos (we stop there).
        let clear = margins.iter().position(|&m| m < CLEAR_MARGIN).unwrap_or(expected.len());
        let until = expected.iter().position(|t| engine.eos_token_ids.contains(t)).map_or(clear, |i| clear.min(i + 1));
        let options = GenerateOptions { max_new_tokens: until, ..GenerateOptions::default() };
        let generation = engine.generate(&prompt, &[], &options, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(generation.token_ids, expected[..until], "{source}/{name}: greedy tokens");
        let worst = generation
            .logprobs
            .iter()
            .zip(&expected_logprobs)
            .map(|(got, want)| (got - want).abs())
            .fold(0.0, f64::max);
        println!(
            "{source}/{name}: {} prompt tokens, {until} of 24 greedy tokens compared, max |Δlogprob| {worst:.1e}: {:?}",
            prompt.len(),
            generation.text
        );
        assert!(worst < LOGPROB_TOLERANCE, "{source}/{name}: log-probs differ by {worst}");
        assert!(until >= 8, "{source}/{name}: only {until} tokens were clear enough to compare");
    }
    let image_turn = Turn { role: Role::User, text: "看这张片".into(), images: 1, image_captions: Vec::new() };
    let refused = engine.encode_chat(None, &[image_turn]).unwrap_err().to_string();
    assert!(refused.contains("text-only"), "{refused}");
}

#[test]
fn the_gguf_file_answers_as_transformers_does() {
    let engine = Engine::load(&real_models().join(GGUF), Device::Cpu, Kind::Float).unwrap();
    check_engine(&engine, "GGUF");
}

#[test]
fn the_text_only_folder_answers_as_transformers_does() {
    let engine = Engine::load(&real_models().join(HF_FOLDER), Device::Cpu, Kind::Float).unwrap();
    check_engine(&engine, "HF folder");
}

/// Teacher-forced over our own radiology texts (tests/fixtures/radiology_{zh,en}.txt): at every position,
/// does the quantized model's most likely next token equal f32's, and how far apart are the two
/// distributions (KL)? Returns (positions, top-1 agreement).
fn agreement_with_f32(quantization: Quantization) -> (usize, f64) {
    let path = real_models().join(GGUF);
    let dense = Engine::load(&path, Device::Cpu, Kind::Float).unwrap();
    let quantized_engine = Engine::load_with(&path, Device::Cpu, Kind::Float, quantization).unwrap();
    let (mut positions, mut agree, mut kl_sum) = (0usize, 0usize, 0.0f64);
    for name in ["radiology_zh.txt", "radiology_en.txt"] {
        let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
            .unwrap();
        let mut ids = vec![2i64]; // <bos>
        ids.extend(dense.tokenizer.encode(text, false).unwrap().get_ids().iter().map(|&id| i64::from(id)));
        let (reference, _) = dense.prefill(&ids, &[], false, Logits::All).unwrap();
        let (quantized, _) = quantized_engine.prefill(&ids, &[], false, Logits::All).unwrap();
        let same = reference.argmax(-1, false).eq_tensor(&quantized.argmax(-1, false));
        let p = reference.log_softmax(-1, Kind::Float);
        let q = quantized.log_softmax(-1, Kind::Float);
        let kl = (p.exp() * (&p - &q)).sum_dim_intlist(-1, false, Kind::Float);
        let n = ids.len();
        let text_agree = same.sum(Kind::Int64).int64_value(&[]) as usize;
        println!(
            "{quantization:?} vs f32, {name}: {n} positions, top-1 agreement {:.2} %, mean KL {:.2e}",
            100.0 * text_agree as f64 / n as f64,
            kl.mean(Kind::Float).double_value(&[])
        );
        positions += n;
        agree += text_agree;
        kl_sum += kl.sum(Kind::Float).double_value(&[]);
    }
    let top1 = agree as f64 / positions as f64;
    println!(
        "{quantization:?} vs f32, both: {positions} positions, top-1 agreement {:.2} %, mean KL {:.2e}",
        100.0 * top1,
        kl_sum / positions as f64
    );
    (positions, top1)
}

#[test]
fn int8_weights_agree_with_f32_on_radiology_text() {
    let (positions, top1) = agreement_with_f32(Quantization::Int8);
    assert!(positions >= 1000, "only {positions} positions");
    assert!(top1 >= 0.97, "int8 top-1 agreement {top1}");
}

/// The real file cut short at several places (a broken download) is refused with a message that names the
/// file and says what is missing (a count the bytes left cannot hold, a truncated table or tensor), never
/// a panic or an allocation for what is not there.
#[test]
fn a_truncated_gguf_is_refused_with_a_clear_error() {
    let bytes = std::fs::read(real_models().join(GGUF)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for cut in [3, 20, 1_000, 5_000_000, bytes.len() - 100] {
        let path = tmp.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = match Engine::load(&path, Device::Cpu, Kind::Float) {
            Ok(_) => panic!("a file cut at byte {cut} loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&path.display().to_string()), "cut at {cut}: {err}");
        let named = ["truncated", "not a GGUF file", "bytes left can hold"].iter().any(|w| err.contains(w));
        assert!(named, "cut at {cut}: {err}");
    }
}
