//! Safetensors checkpoints, single or sharded, in either key layout, read through memory maps so the
//! file bytes are never held twice: each tensor is copied once, straight into its dtype and device.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::error::{EngineError, Result};

/// Where one tensor lives.
struct Entry {
    file: usize,
    /// The key as stored in the file, for error messages.
    stored_name: String,
}

/// One mapped safetensors file and its parsed header.
struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
    metadata: Metadata,
    /// Where the tensor data starts: after the 8-byte length and the JSON header.
    data_start: usize,
}

pub struct Weights {
    files: Vec<MappedFile>,
    /// Canonical name ("text.layers.0.mlp.up_proj.weight", "vision.…", "projector.…", "lm_head.weight").
    entries: HashMap<String, Entry>,
    pub kind: Kind,
    pub device: Device,
}

/// Published MedGemma keys (`language_model.model.*`, `vision_tower.vision_model.*`) and transformers ≥ 4.52
/// keys (`model.language_model.*`, `model.vision_tower.*`) map to one canonical name. Longest prefix first.
const PREFIXES: [(&str, &str); 9] = [
    ("model.vision_tower.vision_model.", "vision."),
    ("vision_tower.vision_model.", "vision."),
    ("model.vision_tower.", "vision."),
    ("vision_tower.", "vision."),
    ("model.multi_modal_projector.", "projector."),
    ("multi_modal_projector.", "projector."),
    ("language_model.model.", "text."),
    ("model.language_model.", "text."),
    ("language_model.lm_head.", "lm_head."),
];

fn canonical(stored: &str) -> String {
    for (from, to) in PREFIXES {
        if let Some(rest) = stored.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    stored.to_string()
}

impl Weights {
    /// Opens `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    pub fn open(dir: &Path, kind: Kind, device: Device) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let file_names: Vec<String> = if index.exists() {
            let json = crate::config::read_json(&index)?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| EngineError::checkpoint(&index, "no weight_map object"))?;
            let mut names: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_string)).collect();
            names.sort();
            names.dedup();
            names
        } else if dir.join("model.safetensors").exists() {
            vec!["model.safetensors".into()]
        } else {
            return Err(EngineError::checkpoint(dir, "no model.safetensors or model.safetensors.index.json"));
        };

        let mut files = Vec::new();
        let mut entries = HashMap::new();
        for (i, name) in file_names.iter().enumerate() {
            if name.contains('/') || name.contains("..") {
                return Err(EngineError::checkpoint(&index, format!("shard name {name:?} leaves the folder")));
            }
            let path = dir.join(name);
            let file = File::open(&path).map_err(|e| EngineError::checkpoint(&path, format!("cannot open: {e}")))?;
            // SAFETY: the checkpoint is read-only input; a file truncated while mapped would fault, which
            // is the same failure as reading it, and the server never writes model folders.
            let mmap =
                unsafe { Mmap::map(&file) }.map_err(|e| EngineError::checkpoint(&path, format!("cannot map: {e}")))?;
            let invalid = |e: safetensors::SafeTensorError| {
                EngineError::checkpoint(&path, format!("not a valid safetensors file: {e}"))
            };
            // deserialize checks the whole layout (offsets, file length); the header is then kept parsed.
            SafeTensors::deserialize(&mmap).map_err(invalid)?;
            let (header_len, metadata) = SafeTensors::read_metadata(&mmap).map_err(invalid)?;
            for stored_name in metadata.tensors().into_keys() {
                entries.insert(canonical(&stored_name), Entry { file: i, stored_name });
            }
            files.push(MappedFile { path, mmap, metadata, data_start: 8 + header_len });
        }
        Ok(Self { files, entries, kind, device })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The tensor `name` (canonical), checked against `shape`, in the engine's dtype and device.
    pub fn get(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let entry = self.entries.get(name).ok_or_else(|| {
            let dir = self.files.first().and_then(|f| f.path.parent()).unwrap_or(Path::new("."));
            EngineError::checkpoint(dir, format!("tensor {name} is missing from the checkpoint"))
        })?;
        let file = &self.files[entry.file];
        let err = |m: String| EngineError::checkpoint(&file.path, format!("tensor {}: {m}", entry.stored_name));
        let info = file.metadata.info(&entry.stored_name).ok_or_else(|| err("not in the header".into()))?;
        let stored_shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        if stored_shape != shape {
            return Err(err(format!("shape {stored_shape:?}, expected {shape:?}")));
        }
        let kind = match info.dtype {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            other => return Err(err(format!("dtype {other:?} is not supported (f32, f16, bf16 are)"))),
        };
        let (begin, end) = info.data_offsets;
        let data = &file.mmap[file.data_start + begin..file.data_start + end];
        let tensor = Tensor::f_from_data_size(data, &stored_shape, kind)?;
        Ok(tensor.f_to_device(self.device)?.f_to_kind(self.kind)?)
    }
}
