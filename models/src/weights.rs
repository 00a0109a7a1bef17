//! A checkpoint's tensors by canonical name, read through memory maps so the file bytes are never held
//! twice: safetensors (single or sharded, any of the published key layouts; each tensor copied once,
//! straight into its dtype and device) or a GGUF file (quantized blocks decoded to f32 one tensor at a
//! time, then cast).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::gguf::dequant::{GgmlType, dequantize};
use crate::gguf::gemma3;

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
    source: Source,
    pub kind: Kind,
    pub device: Device,
    /// How the decoder's matrices are held once loaded.
    pub quantization: Quantization,
}

/// `--weights`: the decoder's matrices dense in the engine's dtype, or int8 per output channel (which ones:
/// [`Weights::quantization_of`]). Norms, embeddings, biases and the vision tower stay dense.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantization {
    #[default]
    None,
    Int8,
}

/// One tensor as its file stores it.
pub struct StoredTensor {
    /// Canonical where the engine reads it, else as stored.
    pub name: String,
    /// "BF16", "Q4_K", …
    pub kind: String,
    pub values: u64,
    pub bytes: u64,
}

/// Canonical names: "text.layers.0.mlp.up_proj.weight", "vision.…", "projector.…", "lm_head.weight".
enum Source {
    Safetensors {
        files: Vec<MappedFile>,
        /// By canonical name.
        entries: HashMap<String, Entry>,
    },
    Gguf {
        file: GgufFile,
        /// Canonical name → the file's name ("text.layers.0.mlp.up_proj.weight" → "blk.0.ffn_up.weight").
        names: HashMap<String, String>,
    },
}

/// Published MedGemma keys (`language_model.model.*`, `vision_tower.vision_model.*`), transformers ≥ 4.52
/// keys (`model.language_model.*`, `model.vision_tower.*`) and text-only keys (`model.*`, Gemma3ForCausalLM)
/// map to one canonical name. Checked in order, longest prefix first.
const PREFIXES: [(&str, &str); 10] = [
    ("model.vision_tower.vision_model.", "vision."),
    ("vision_tower.vision_model.", "vision."),
    ("model.vision_tower.", "vision."),
    ("vision_tower.", "vision."),
    ("model.multi_modal_projector.", "projector."),
    ("multi_modal_projector.", "projector."),
    ("language_model.model.", "text."),
    ("model.language_model.", "text."),
    ("language_model.lm_head.", "lm_head."),
    ("model.", "text."),
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
        Ok(Self { source: Source::Safetensors { files, entries }, kind, device, quantization: Quantization::None })
    }

    /// The tensors of an opened GGUF file (names as llama.cpp's converter wrote them for Gemma 3).
    pub fn gguf(file: GgufFile, kind: Kind, device: Device) -> Self {
        let names = file
            .tensor_names
            .iter()
            .filter_map(|stored| gemma3::canonical_name(stored).map(|canonical| (canonical, stored.clone())))
            .collect();
        Self { source: Source::Gguf { file, names }, kind, device, quantization: Quantization::None }
    }

    /// Every stored tensor, read from the headers: what `model check` counts.
    pub fn stored(&self) -> Vec<StoredTensor> {
        match &self.source {
            Source::Safetensors { files, .. } => files
                .iter()
                .flat_map(|f| f.metadata.tensors())
                .map(|(stored, info)| StoredTensor {
                    name: canonical(&stored),
                    kind: format!("{:?}", info.dtype),
                    values: info.shape.iter().map(|&d| d as u64).product(),
                    bytes: (info.data_offsets.1 - info.data_offsets.0) as u64,
                })
                .collect(),
            Source::Gguf { file, .. } => file
                .tensor_names
                .iter()
                .filter_map(|stored| file.tensor(stored).map(|info| (stored, info)))
                .map(|(stored, info)| StoredTensor {
                    name: gemma3::canonical_name(stored).unwrap_or_else(|| stored.clone()),
                    kind: info.ty.name().to_string(),
                    values: info.elements(),
                    bytes: info.ty.bytes_for(info.elements()).unwrap_or(0),
                })
                .collect(),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match &self.source {
            Source::Safetensors { entries, .. } => entries.contains_key(name),
            Source::Gguf { names, .. } => names.contains_key(name),
        }
    }

    /// The tensor `name` (canonical), checked against `shape`, in the engine's dtype and device.
    pub fn get(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        Ok(self.get_as(name, shape, self.kind)?.f_to_device(self.device)?)
    }

    /// The same on the CPU in `kind` (what quantization starts from).
    pub fn get_as(&self, name: &str, shape: &[i64], kind: Kind) -> Result<Tensor> {
        let tensor = match &self.source {
            Source::Safetensors { files, entries } => safetensors_tensor(files, entries, name, shape)?,
            Source::Gguf { file, names } => gguf_tensor(file, names, name, shape)?,
        };
        Ok(tensor.f_to_kind(kind)?)
    }

    /// How the matrix `name` is held. Quantized: the decoder layers' projections
    /// except the MLP's down projection. Measured on the real gemma-3-270m, teacher-forced over 1 150
    /// positions of our radiology text (tests/real_gemma3.rs), int8 top-1 agreement with f32 / mean KL:
    /// every projection 95.9 % / 3.6e-3; down_proj kept dense 97.5 % / 2.3e-3 (llama.cpp's Q4_K_M likewise
    /// gives ffn_down more bits); the tied embedding table quantized as well 93.3 % / 1.1e-2, so it stays
    /// dense too.
    pub fn quantization_of(&self, name: &str) -> Quantization {
        let eligible = name.starts_with("text.layers.") && !name.contains(".mlp.down_proj.");
        if eligible { self.quantization } else { Quantization::None }
    }
}

fn missing(path: &Path, name: &str) -> EngineError {
    EngineError::checkpoint(path, format!("tensor {name} is missing from the checkpoint"))
}

/// The stored tensor, in its stored dtype, on the CPU.
fn safetensors_tensor(
    files: &[MappedFile],
    entries: &HashMap<String, Entry>,
    name: &str,
    shape: &[i64],
) -> Result<Tensor> {
    let entry = entries
        .get(name)
        .ok_or_else(|| missing(files.first().and_then(|f| f.path.parent()).unwrap_or(Path::new(".")), name))?;
    let file = &files[entry.file];
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
    let range = file.data_start + begin..file.data_start + end;
    let tensor = Tensor::f_from_data_size(&file.mmap[range.clone()], &stored_shape, kind)?;
    release(&file.mmap, range);
    Ok(tensor)
}

/// Drops the mapped pages of bytes already copied out, so that a load never holds the file's pages and
/// the copy at once: without it the resident peak of a load was twice the weights (the pages stay in the
/// page cache; touching them again reads them back).
pub(crate) fn release(mmap: &Mmap, range: std::ops::Range<usize>) {
    // SAFETY: the mapping is read-only and backed by the file: MADV_DONTNEED drops this process's view of
    // the pages, and the next access reads the same bytes back from the file. No reference into the range
    // is used after this call.
    let _ = unsafe { mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len()) };
}

/// The tensor decoded on the CPU: f32/f16/bf16 as stored, quantized blocks to f32; Gemma's norm weights
/// back from 1 + w to w.
fn gguf_tensor(file: &GgufFile, names: &HashMap<String, String>, name: &str, shape: &[i64]) -> Result<Tensor> {
    let stored = names.get(name).ok_or_else(|| missing(&file.path, name))?;
    let err = |m: String| EngineError::checkpoint(&file.path, format!("tensor {stored}: {m}"));
    let info = file.tensor(stored).ok_or_else(|| err("not in the tensor table".into()))?;
    let stored_shape = info.shape();
    if stored_shape != shape {
        return Err(err(format!("shape {stored_shape:?}, expected {shape:?}")));
    }
    let bytes = file.tensor_bytes(info);
    let tensor = match info.ty {
        GgmlType::F32 => Tensor::f_from_data_size(bytes, shape, Kind::Float)?,
        GgmlType::F16 => Tensor::f_from_data_size(bytes, shape, Kind::Half)?,
        GgmlType::BF16 => Tensor::f_from_data_size(bytes, shape, Kind::BFloat16)?,
        quantized => {
            let out = Tensor::f_empty(shape, (Kind::Float, Device::Cpu))?;
            let len = info.elements() as usize;
            // SAFETY: `out` is a new contiguous f32 CPU tensor of exactly `len` elements, and nothing else
            // refers to its storage while the slice lives.
            let values = unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, len) };
            dequantize(quantized, bytes, values);
            out
        }
    };
    file.release(info);
    Ok(if gemma3::stores_one_plus_w(stored) { tensor.f_to_kind(Kind::Float)? - 1.0 } else { tensor })
}
