//! What llama.cpp's converter (`convert_hf_to_gguf.py`, class Gemma3Model) does to a Gemma 3 checkpoint,
//! undone: the tensor names, the RMSNorm weights stored as 1 + w, and the config facts it leaves out
//! because llama.cpp hard-codes them (`llama-model.cpp`, LLM_ARCH_GEMMA3).

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{GgufFile, Value};
use crate::config::ModelConfig;
use crate::error::{EngineError, Result};

/// llama.cpp's sliding-window pattern for Gemma 3 (`hparams.set_swa_pattern(6)`): five sliding layers,
/// then one full-attention layer.
const SLIDING_WINDOW_PATTERN: u64 = 6;
/// RoPE base of the sliding layers (`rope_freq_base_train_swa = 10000`), never stored.
const ROPE_LOCAL_BASE: f64 = 10_000.0;
/// Gemma 3 27B is the one size whose attention scale is 1/sqrt(hidden/heads) instead of 1/sqrt(head_dim)
/// (`f_attention_scale` in llama-model.cpp; `query_pre_attn_scalar` 168 in its config.json). It is the
/// size with 62 layers.
const LAYERS_27B: u64 = 62;

/// The checkpoint's config.json (`model_type: gemma3_text`), rebuilt from the metadata. The vocabulary
/// size is the embedding table's row count (a padded table may have more rows than the tokenizer has tokens).
pub fn config(file: &GgufFile) -> Result<ModelConfig> {
    let vocab_size = file
        .tensor("token_embd.weight")
        .map(|t| t.shape()[0])
        .ok_or_else(|| EngineError::checkpoint(&file.path, "no token_embd.weight tensor"))?;
    let arch = file.get("general.architecture").and_then(Value::as_str).unwrap_or("");
    if arch != "gemma3" {
        return Err(EngineError::checkpoint(
            &file.path,
            format!("general.architecture is {arch:?}: this engine runs Gemma 3 / MedGemma GGUF files (\"gemma3\")"),
        ));
    }
    let key = |name: &str| format!("{arch}.{name}");
    let required = |name: &str| -> Result<u64> {
        file.get(&key(name)).and_then(Value::as_u64).ok_or_else(|| {
            EngineError::checkpoint(&file.path, format!("metadata {} is missing or not a count", key(name)))
        })
    };
    let float = |name: &str| file.get(&key(name)).and_then(Value::as_f64);

    let layers = required("block_count")?;
    let hidden = required("embedding_length")?;
    let heads = required("attention.head_count")?;
    let head_dim = required("attention.key_length")?;
    if file.get(&key("attention.value_length")).and_then(Value::as_u64).is_some_and(|v| v != head_dim) {
        return Err(EngineError::checkpoint(&file.path, "attention.value_length differs from key_length"));
    }
    let query_pre_attn_scalar =
        if layers == LAYERS_27B && heads > 0 { (hidden / heads) as f64 } else { head_dim as f64 };
    let mut config = json!({
        "model_type": "gemma3_text",
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": required("feed_forward_length")?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": required("attention.head_count_kv")?,
        "head_dim": head_dim,
        "query_pre_attn_scalar": query_pre_attn_scalar,
        "rms_norm_eps": float("attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
        "sliding_window": required("attention.sliding_window")?,
        "max_position_embeddings": required("context_length")?,
        "rope_theta": float("rope.freq_base").unwrap_or(1_000_000.0),
        "rope_local_base_freq": ROPE_LOCAL_BASE,
        "layer_types": layer_types(file, &key("attention.sliding_window_pattern"), layers)?,
        "final_logit_softcapping": float("final_logit_softcapping"),
        "bos_token_id": file.get("tokenizer.ggml.bos_token_id").and_then(Value::as_i64),
        "eos_token_id": eos_ids(file),
    });
    if let Some(kind) = file.get(&key("rope.scaling.type")).and_then(Value::as_str)
        && kind != "none"
    {
        config["rope_scaling"] = json!({ "rope_type": kind, "factor": float("rope.scaling.factor").unwrap_or(1.0) });
    }
    ModelConfig::from_json(&config, &file.path)
}

/// Newer converters store the pattern (a period, or one flag per layer, true = sliding); older ones
/// leave it to llama.cpp's constant.
fn layer_types(file: &GgufFile, key: &str, layers: u64) -> Result<Json> {
    let sliding = |is: bool| if is { "sliding_attention" } else { "full_attention" };
    let types: Vec<&str> = match file.get(key) {
        Some(Value::Array(flags)) => flags
            .iter()
            .map(|f| f.as_bool().map(sliding))
            .collect::<Option<_>>()
            .ok_or_else(|| EngineError::checkpoint(&file.path, format!("metadata {key}: expected booleans")))?,
        other => {
            let period = other.and_then(Value::as_u64).unwrap_or(SLIDING_WINDOW_PATTERN).max(1);
            (0..layers).map(|i| sliding((i + 1) % period != 0)).collect()
        }
    };
    Ok(json!(types))
}

/// The ids that end an answer: the file's eos and end-of-turn ids, and `<end_of_turn>` itself (llama.cpp
/// ends generation at it for Gemma whether or not the file names it).
fn eos_ids(file: &GgufFile) -> Vec<i64> {
    let mut ids: Vec<i64> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| file.get(k).and_then(Value::as_i64))
        .collect();
    if let Some(tokens) = file.get("tokenizer.ggml.tokens").and_then(Value::as_array)
        && let Some(id) = tokens.iter().position(|t| t.as_str() == Some(crate::prompt::END_OF_TURN))
    {
        ids.push(id as i64);
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The engine's canonical name of a GGUF tensor (see `weights.rs`), or None for tensors the engine does
/// not read (`rope_freqs`, …).
pub fn canonical_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("text.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("text.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, name) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match name {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_q_norm.weight" => "self_attn.q_norm.weight",
        "attn_k_norm.weight" => "self_attn.k_norm.weight",
        "post_attention_norm.weight" => "post_attention_layernorm.weight",
        "ffn_norm.weight" => "pre_feedforward_layernorm.weight",
        "post_ffw_norm.weight" => "post_feedforward_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("text.layers.{layer}.{hf}"))
}

/// The converter adds 1 to every Gemma RMSNorm weight (llama.cpp multiplies by the stored weight, Gemma's
/// reference by 1 + w); the engine's norms take w, so these get 1 subtracted on loading.
pub fn stores_one_plus_w(gguf: &str) -> bool {
    gguf.ends_with("norm.weight")
}

/// The `.gguf` model file named by `path`: the file itself, or the one model file in a folder (an
/// `mmproj-*.gguf` beside it is the vision part, not the model).
pub fn find_model_file(path: &Path) -> Result<Option<std::path::PathBuf>> {
    if path.is_file() {
        return Ok(path.extension().is_some_and(|e| e == "gguf").then(|| path.to_path_buf()));
    }
    let Ok(entries) = std::fs::read_dir(path) else { return Ok(None) };
    let mut found: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".gguf") && !name.starts_with("mmproj")
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(EngineError::checkpoint(
            path,
            format!("{} .gguf model files in one folder; name the one to load", found.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_map_to_the_checkpoint_layout() {
        assert_eq!(
            canonical_name("blk.17.ffn_norm.weight").unwrap(),
            "text.layers.17.pre_feedforward_layernorm.weight"
        );
        assert_eq!(canonical_name("blk.0.attn_output.weight").unwrap(), "text.layers.0.self_attn.o_proj.weight");
        assert_eq!(canonical_name("token_embd.weight").unwrap(), "text.embed_tokens.weight");
        assert_eq!(canonical_name("rope_freqs.weight"), None);
        assert_eq!(canonical_name("blk.x.attn_q.weight"), None);
        assert!(stores_one_plus_w("blk.3.attn_q_norm.weight") && stores_one_plus_w("output_norm.weight"));
        assert!(!stores_one_plus_w("blk.3.attn_q.weight"));
    }
}
