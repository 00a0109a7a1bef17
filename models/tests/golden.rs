//! Golden tests against transformers' Gemma3ForConditionalGeneration on tiny random checkpoints made by
//! tests/fixtures/make_tiny_gemma3.py (scripts/test.sh generates them into target/fixtures).

mod common;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use models::Engine;
use models::generate::GenerateOptions;
use models::prompt::{Role, Turn};
use models::text::Logits;
use serde_json::Value;
use tch::{Device, Kind, Tensor};

const LOGITS_TOLERANCE: f64 = 1e-4;

/// The golden case's chat messages as (system, turns): the text items before the first image, then
/// each image with the text item right after it as its caption (the CT recipe's "SLICE n").
fn conversation(messages: &[Value]) -> (Option<String>, Vec<Turn>) {
    let mut system = None;
    let mut turns = Vec::new();
    for m in messages {
        let items = m["content"].as_array().unwrap();
        let first_image = items.iter().position(|i| i["type"] == "image").unwrap_or(items.len());
        let text: String = items[..first_image].iter().map(|i| i["text"].as_str().unwrap()).collect();
        let images = items.iter().filter(|i| i["type"] == "image").count();
        let image_captions = items
            .windows(2)
            .filter(|w| w[0]["type"] == "image" && w[1]["type"] == "text")
            .map(|w| w[1]["text"].as_str().unwrap().to_string())
            .collect();
        match m["role"].as_str().unwrap() {
            "system" => system = Some(text),
            role => turns.push(Turn {
                role: if role == "user" { Role::User } else { Role::Model },
                text,
                images,
                image_captions,
            }),
        }
    }
    (system, turns)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn check_checkpoint(name: &str) {
    let dir = common::fixture(name);
    let engine = Engine::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let golden: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let tensors: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("golden.safetensors")).unwrap().into_iter().collect();

    for case in &golden {
        let case_name = case["name"].as_str().unwrap();
        let (system, turns) = conversation(case["messages"].as_array().unwrap());
        let ids = engine.encode_chat(system.as_deref(), &turns).unwrap();
        let expected_ids: Vec<i64> =
            case["prompt_token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(ids, expected_ids, "{name}/{case_name}: prompt token ids differ");

        let pixels: Vec<Tensor> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| engine.load_image(&dir.join(f.as_str().unwrap())).unwrap())
            .collect();
        if !pixels.is_empty() {
            let diff = max_abs_diff(&Tensor::stack(&pixels, 0), &tensors[&format!("{case_name}.pixel_values")]);
            assert!(diff < 1e-6, "{name}/{case_name}: pixel values differ by {diff}");
        }

        let (logits, _) = engine.prefill(&ids, &pixels, false, Logits::All).unwrap();
        let diff = max_abs_diff(&logits, &tensors[&format!("{case_name}.logits")]);
        println!("{name}/{case_name}: {} prompt tokens, max |Δlogit| = {diff:.2e}", ids.len());
        assert!(diff < LOGITS_TOLERANCE, "{name}/{case_name}: logits differ by {diff}");

        let expected_tokens: Vec<i64> =
            case["greedy_token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let expected_logprobs: Vec<f64> =
            case["greedy_logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // Our generation stops at an eos id; the golden run does not.
        let stop_at = expected_tokens
            .iter()
            .position(|t| engine.eos_token_ids.contains(t))
            .map_or(expected_tokens.len(), |i| i + 1);
        let options = GenerateOptions {
            max_new_tokens: expected_tokens.len(),
            image_attention: true,
            ..GenerateOptions::default()
        };
        let generation = engine.generate(&ids, &pixels, &options, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(generation.token_ids, expected_tokens[..stop_at], "{name}/{case_name}: greedy tokens differ");
        for (i, (got, want)) in generation.logprobs.iter().zip(&expected_logprobs).enumerate() {
            assert!((got - want).abs() < LOGITS_TOLERANCE, "{name}/{case_name}: logprob {i} is {got}, expected {want}");
        }

        // Heatmap attention, when the golden run did not stop early (it never stops; we stop at eos).
        let expected_attention = case["image_attention"].as_array().unwrap();
        assert_eq!(generation.image_attention.len(), expected_attention.len(), "{name}/{case_name}: images");
        if stop_at == expected_tokens.len() {
            for (got, want) in generation.image_attention.iter().zip(expected_attention) {
                let want: Vec<f64> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                assert_eq!(got.grid.len() as i64, got.side * got.side);
                assert_eq!(got.grid.len(), want.len());
                for (g, w) in got.grid.iter().zip(&want) {
                    assert!((f64::from(*g) - w).abs() < 1e-6, "{name}/{case_name}: attention {g} vs {w}");
                }
            }
        }
    }
}

/// Published layout: legacy config keys, `language_model.model.*` keys, one file, linear RoPE scaling,
/// query_pre_attn_scalar ≠ head_dim, prompts longer than the sliding window.
#[test]
fn tiny_a_matches_transformers() {
    check_checkpoint("tiny-a");
}

/// transformers ≥ 5 layout: `rope_parameters`, `layer_types`, `model.language_model.*` keys, 3 shards.
#[test]
fn tiny_b_matches_transformers() {
    check_checkpoint("tiny-b");
}
