//! Broken checkpoints fail with a message naming the file and tensor, never a panic.

mod common;

use std::path::{Path, PathBuf};

use models::Engine;
use tch::{Device, Kind};

fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let src = common::fixture("tiny-b");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("ckpt");
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (tmp, dst)
}

fn load_error(dir: &Path) -> String {
    match Engine::load(dir, Device::Cpu, Kind::Float) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(path, config.to_string()).unwrap();
}

#[test]
fn a_missing_shard_names_the_file() {
    let (_tmp, dir) = fixture_copy();
    std::fs::remove_file(dir.join("model-00002-of-00003.safetensors")).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("model-00002-of-00003.safetensors") && err.contains("cannot open"), "{err}");
}

#[test]
fn a_truncated_shard_is_not_a_valid_safetensors_file() {
    let (_tmp, dir) = fixture_copy();
    let path = dir.join("model-00001-of-00003.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("model-00001-of-00003.safetensors") && err.contains("not a valid safetensors file"), "{err}");
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, |c| c["text_config"]["intermediate_size"] = 100.into());
    let err = load_error(&dir);
    assert!(err.contains("mlp.gate_proj.weight") && err.contains("expected [100, 64]"), "{err}");
    assert!(err.contains(".safetensors"), "file not named: {err}");
}

#[test]
fn an_unknown_model_type_is_refused() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, |c| c["model_type"] = "llama".into());
    let err = load_error(&dir);
    assert!(err.contains("config.json") && err.contains("unknown model_type \"llama\""), "{err}");
}

#[test]
fn a_missing_tensor_is_named() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, |c| {
        c["text_config"]["num_hidden_layers"] = 4.into();
        c["text_config"]["layer_types"] =
            serde_json::json!(["sliding_attention", "full_attention", "sliding_attention", "full_attention"]);
    });
    let err = load_error(&dir);
    assert!(err.contains("text.layers.3.") && err.contains("missing"), "{err}");
}
