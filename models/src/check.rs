//! What a checkpoint folder or GGUF file holds and what it needs, read from its configs, tokenizer and
//! tensor headers without copying the weights: `medgemma-x model check` tells whoever installs a model,
//! before the server starts, whether it is one this engine runs and whether this machine can hold it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind};

use crate::config::ModelConfig;
use crate::engine::Parts;
use crate::error::Result;
use crate::gguf::{GgufFile, gemma3};
use crate::weights::Quantization;

/// The model's configuration alone (config.json, or a GGUF file's metadata): the quick look `serve` takes
/// at start, before its worker loads the weights in the background.
pub fn config(path: &Path) -> Result<ModelConfig> {
    match gemma3::find_model_file(path)? {
        Some(file) => gemma3::config(&GgufFile::open(&file)?),
        None => ModelConfig::load(&path.join("config.json")),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelCheck {
    /// "GGUF v3" or "Hugging Face folder".
    pub format: String,
    /// "gemma3" (text and images) or "gemma3_text" (text only).
    pub architecture: &'static str,
    pub reads_images: bool,
    pub layers: usize,
    pub hidden_size: i64,
    /// Prompt and answer together, tokens.
    pub context_tokens: i64,
    pub vocab_size: usize,
    pub parameters: u64,
    /// Tensors and bytes per storage type ("BF16", "Q4_K", …), most bytes first.
    pub storage: Vec<Storage>,
    pub stored_bytes: u64,
    /// Bytes the weights take once loaded, per way the engine can hold them (`--weights`).
    pub loaded_bytes: Vec<LoadedSize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Storage {
    pub kind: String,
    pub tensors: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadedSize {
    pub dtype: &'static str,
    pub bytes: u64,
}

/// Reads `path` as [`crate::Engine::load`] would, up to the point of copying tensors. Any problem a load
/// would meet in the configs, the tokenizer or the tensor table is this function's error too.
pub fn check(path: &Path) -> Result<ModelCheck> {
    let mut parts = Parts::open(path, Device::Cpu, Kind::Float)?;
    parts.weights.quantization = Quantization::Int8;
    let mut by_kind: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let (mut parameters, mut int8_bytes) = (0, 0);
    for tensor in parts.weights.stored() {
        parameters += tensor.values;
        // int8: one byte a value for the matrices it quantizes (plus a scale a row, left out here), f32 for
        // the rest, as `--weights int8` holds them on the CPU.
        int8_bytes += match parts.weights.quantization_of(&tensor.name) {
            Quantization::Int8 => tensor.values,
            Quantization::None => tensor.values * 4,
        };
        let entry = by_kind.entry(tensor.kind).or_default();
        entry.0 += 1;
        entry.1 += tensor.bytes;
    }
    let mut storage: Vec<Storage> =
        by_kind.into_iter().map(|(kind, (tensors, bytes))| Storage { kind, tensors, bytes }).collect();
    storage.sort_by_key(|s| std::cmp::Reverse(s.bytes));
    let config = &parts.config;
    Ok(ModelCheck {
        format: parts.format.clone(),
        architecture: if config.vision.is_some() { "gemma3" } else { "gemma3_text" },
        reads_images: config.vision.is_some(),
        layers: config.text.num_hidden_layers,
        hidden_size: config.text.hidden_size,
        context_tokens: config.text.max_position_embeddings,
        vocab_size: parts.tokenizer.get_vocab_size(true),
        parameters,
        stored_bytes: storage.iter().map(|s| s.bytes).sum(),
        storage,
        loaded_bytes: vec![
            LoadedSize { dtype: "f32", bytes: parameters * 4 },
            LoadedSize { dtype: "bf16", bytes: parameters * 2 },
            LoadedSize { dtype: "int8 (f32 compute)", bytes: int8_bytes },
        ],
    })
}
