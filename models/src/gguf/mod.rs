//! GGUF files (llama.cpp's single-file format): the header, the metadata, the tensor table, and the
//! tensors' bytes through a memory map.
//!
//! The layout (GGUF v2/v3, little-endian): magic `GGUF`, version u32, tensor count u64, metadata count
//! u64; each metadata entry is a key string, a value type u32 and the value; each tensor info is a name
//! string, n_dims u32, n_dims × u64 dimensions (ggml order: the first is the innermost), a type u32 and
//! an offset u64 from the data section, which starts at the next multiple of `general.alignment` (32
//! unless given). A string is a u64 length and that many UTF-8 bytes; an array is an element type u32,
//! a count u64 and the elements.
//!
//! A GGUF comes from outside the hospital like a DICOM file does: every count and length is checked
//! against the bytes that are really there before anything is allocated, so a corrupt or hostile file
//! gets a clear error, never a panic or a huge allocation.
//!
//! [`gemma3`] holds what llama.cpp's converter did to a Gemma 3 checkpoint (tensor names, norms stored as
//! 1 + w, facts left implicit), [`tokenizer`] rebuilds the tokenizer from `tokenizer.ggml.*`, and
//! [`dequant`] decodes ggml's block formats.

pub mod dequant;
pub mod gemma3;
pub mod tokenizer;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{EngineError, Result};
use dequant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
/// Arrays inside arrays: the format allows them, no model file needs more than one level.
const MAX_ARRAY_DEPTH: usize = 2;
/// A chat template is the longest string a model file carries (a few KiB); 1 MiB is far past any real one.
const MAX_STRING_BYTES: u64 = 1 << 20;
/// The largest vocabularies are ~260 k tokens; their score and type arrays have as many entries.
const MAX_ARRAY_LEN: u64 = 1 << 24;
/// A 27B model has ~800 tensors, its vision projector a few hundred.
const MAX_TENSORS: u64 = 1 << 16;
const MAX_METADATA: u64 = 1 << 16;
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// Any integer type that holds a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// One entry of the tensor table.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Dimensions in ggml order (innermost first); the torch shape is this reversed.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// From the start of the data section.
    offset: u64,
    bytes: u64,
}

impl TensorInfo {
    /// The shape as torch writes it (outermost first).
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }

    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// An opened GGUF file: metadata parsed, tensor bytes mapped and read on demand.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: HashMap<String, Value>,
    /// Tensor names in file order (error messages and `model check` list them so).
    pub tensor_names: Vec<String>,
    tensors: HashMap<String, TensorInfo>,
    mmap: Mmap,
    data_start: u64,
}

/// Reads little-endian values from the mapped bytes, refusing to run past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &str) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{what} at byte {} needs {n} bytes but the file ends {} bytes later (truncated?)",
                self.pos,
                self.remaining()
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        Ok(self.take(N as u64, what)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let at = self.pos;
        let len = self.u64(what)?;
        if len > MAX_STRING_BYTES {
            return Err(format!("{what} at byte {at} claims {len} bytes (more than {MAX_STRING_BYTES})"));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} at byte {at} is not UTF-8"))
    }

    /// A count of items that take at least `min_item_bytes` each: checked against what is left, so a
    /// lying count cannot make us reserve memory for items that are not there.
    fn count(&mut self, what: &str, limit: u64, min_item_bytes: u64) -> std::result::Result<u64, String> {
        let at = self.pos;
        let n = self.u64(what)?;
        if n > limit {
            return Err(format!("{what} at byte {at} is {n} (at most {limit} are accepted)"));
        }
        if n.saturating_mul(min_item_bytes) > self.remaining() {
            return Err(format!("{what} at byte {at} is {n}, more than the {} bytes left can hold", self.remaining()));
        }
        Ok(n)
    }

    fn value(&mut self, type_id: u32, depth: usize, what: &str) -> std::result::Result<Value, String> {
        Ok(match type_id {
            0 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return Err(format!("{what}: boolean byte {other} is neither 0 nor 1")),
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}"));
                }
                let item_type = self.u32(what)?;
                let min_bytes = value_min_bytes(item_type).ok_or_else(|| unknown_type(what, item_type))?;
                let n = self.count(what, MAX_ARRAY_LEN, min_bytes)?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(item_type, depth + 1, what)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(unknown_type(what, other)),
        })
    }
}

fn unknown_type(what: &str, type_id: u32) -> String {
    format!("{what}: unknown value type {type_id}")
}

/// The fewest bytes a value of this type takes (a string at least its length; an array its type and count).
fn value_min_bytes(type_id: u32) -> Option<u64> {
    Some(match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |m: String| EngineError::checkpoint(path, m);
        let file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        // SAFETY: model files are read-only input; a file truncated while mapped faults like a failed
        // read would, and the server never writes model files.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| err(format!("cannot map: {e}")))?;
        let (version, metadata, tensor_names, tensors, data_start) = parse(&mmap).map_err(err)?;
        Ok(Self { path: path.to_path_buf(), version, metadata, tensor_names, tensors, mmap, data_start })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The raw bytes of a tensor (checked to lie inside the file when it was opened).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.mmap[self.range(info)]
    }

    /// Drops the mapped pages of a tensor already decoded (see `weights::release`).
    pub(crate) fn release(&self, info: &TensorInfo) {
        crate::weights::release(&self.mmap, self.range(info));
    }

    fn range(&self, info: &TensorInfo) -> std::ops::Range<usize> {
        let start = (self.data_start + info.offset) as usize;
        start..start + info.bytes as usize
    }
}

type Parsed = (u32, HashMap<String, Value>, Vec<String>, HashMap<String, TensorInfo>, u64);

fn parse(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut c = Cursor { bytes, pos: 0 };
    if c.take(4, "magic").ok() != Some(MAGIC.as_slice()) {
        return Err("not a GGUF file (it does not begin with the bytes GGUF)".into());
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (2 and 3 are; a big-endian file reads as a huge one)"
        ));
    }
    let tensor_count = c.u64("tensor count")?;
    let metadata_count = c.u64("metadata count")?;
    if tensor_count > MAX_TENSORS || metadata_count > MAX_METADATA {
        return Err(format!("{tensor_count} tensors and {metadata_count} metadata entries: more than any model has"));
    }

    let mut metadata = HashMap::new();
    for _ in 0..metadata_count {
        let key = c.string("metadata key")?;
        let what = format!("metadata {key}");
        let type_id = c.u32(&what)?;
        let value = c.value(type_id, 0, &what)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata key {key} appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 16 => a,
            _ => return Err(format!("general.alignment {v:?} is not a power of two up to 65536")),
        },
    };

    let mut tensor_names = Vec::with_capacity(tensor_count.min(c.remaining() / 32) as usize);
    let mut infos = Vec::with_capacity(tensor_names.capacity());
    for _ in 0..tensor_count {
        let name = c.string("tensor name")?;
        let what = format!("tensor {name}");
        let n_dims = c.u32(&what)?;
        if !(1..=MAX_DIMS).contains(&n_dims) {
            return Err(format!("{what}: {n_dims} dimensions (1 to {MAX_DIMS} are possible)"));
        }
        let dims = (0..n_dims).map(|_| c.u64(&what)).collect::<std::result::Result<Vec<_>, _>>()?;
        let ty = GgmlType::from_id(c.u32(&what)?).map_err(|e| format!("{what}: {e}"))?;
        let offset = c.u64(&what)?;
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| if d == 0 { None } else { n.checked_mul(d) })
            .ok_or_else(|| format!("{what}: dimensions {dims:?} are zero or overflow"))?;
        if dims[0] % ty.block_elements() as u64 != 0 {
            return Err(format!("{what}: rows of {} values are not whole {} blocks", dims[0], ty.name()));
        }
        let bytes = ty.bytes_for(elements).ok_or_else(|| format!("{what}: {elements} values overflow the size"))?;
        if offset % alignment != 0 {
            return Err(format!("{what}: offset {offset} is not a multiple of the alignment {alignment}"));
        }
        tensor_names.push(name);
        infos.push(TensorInfo { dims, ty, offset, bytes });
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let data_len = (bytes.len() as u64).saturating_sub(data_start);
    let mut tensors = HashMap::with_capacity(infos.len());
    for (name, info) in tensor_names.iter().zip(infos) {
        let end = info.offset.checked_add(info.bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(format!(
                "tensor {name}: bytes {}..{} lie past the end of the data section ({data_len} bytes; truncated?)",
                info.offset,
                info.offset.saturating_add(info.bytes)
            ));
        }
        if tensors.insert(name.clone(), info).is_some() {
            return Err(format!("tensor {name} appears twice"));
        }
    }
    Ok((version, metadata, tensor_names, tensors, data_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF file written by hand: metadata entries (already encoded) and F32 tensors.
    pub(crate) fn write(metadata: &[(&str, u32, Vec<u8>)], tensors: &[(&str, Vec<u64>, Vec<f32>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        for (key, ty, value) in metadata {
            string(&mut out, key);
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(value);
        }
        let mut offset = 0u64;
        for (name, dims, values) in tensors {
            string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += (values.len() as u64 * 4).div_ceil(32) * 32;
        }
        out.resize(out.len().div_ceil(32) * 32, 0);
        for (_, _, values) in tensors {
            let start = out.len();
            out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            out.resize(start + (values.len() * 4).div_ceil(32) * 32, 0);
        }
        out
    }

    fn string_value(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn parse_err(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => panic!("parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_small_file_reads_back() {
        let bytes = write(
            &[
                ("general.architecture", 8, string_value("gemma3")),
                ("gemma3.block_count", 4, 2u32.to_le_bytes().into()),
            ],
            &[("a", vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), ("b", vec![2], vec![7.0, 8.0])],
        );
        let (version, metadata, names, tensors, data_start) = parse(&bytes).unwrap();
        assert_eq!(version, 3);
        assert_eq!(metadata["general.architecture"].as_str(), Some("gemma3"));
        assert_eq!(metadata["gemma3.block_count"].as_u64(), Some(2));
        assert_eq!(names, ["a", "b"]);
        assert_eq!(tensors["a"].shape(), [2, 3]);
        let b = &tensors["b"];
        let start = (data_start + b.offset) as usize;
        assert_eq!(&bytes[start..start + 8], [7.0f32.to_le_bytes(), 8.0f32.to_le_bytes()].concat());
    }

    #[test]
    fn lying_lengths_are_refused_before_allocating() {
        // A string claiming 4 GiB, an array claiming 2^24 strings in a few bytes, a tensor count past the cap.
        let mut huge_string = b"GGUF".to_vec();
        huge_string.extend_from_slice(&3u32.to_le_bytes());
        huge_string.extend_from_slice(&0u64.to_le_bytes());
        huge_string.extend_from_slice(&1u64.to_le_bytes());
        huge_string.extend_from_slice(&(4u64 << 30).to_le_bytes());
        assert!(parse_err(&huge_string).contains("claims 4294967296 bytes"), "{}", parse_err(&huge_string));

        let mut array = Vec::new();
        array.extend_from_slice(&8u32.to_le_bytes());
        array.extend_from_slice(&(1u64 << 24).to_le_bytes());
        let bytes = write(&[("tokenizer.ggml.tokens", 9, array)], &[]);
        assert!(parse_err(&bytes).contains("more than the"), "{}", parse_err(&bytes));

        let mut many = write(&[], &[]);
        many[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_err(&many).contains("more than any model has"));
    }

    #[test]
    fn truncation_and_bad_headers_are_named() {
        let bytes = write(&[], &[("w", vec![8], vec![0.5; 8])]);
        let cut = &bytes[..bytes.len() - 4];
        assert!(parse_err(cut).contains("past the end of the data section"), "{}", parse_err(cut));
        assert!(parse_err(&bytes[..30]).contains("truncated"), "{}", parse_err(&bytes[..30]));
        assert!(parse_err(b"PK\x03\x04 a zip").contains("not a GGUF file"));
        let mut v1 = bytes.clone();
        v1[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(parse_err(&v1).contains("version 1 is not supported"));
    }

    #[test]
    fn bad_tensor_entries_are_refused() {
        let mut zero_dim = write(&[], &[("w", vec![8], vec![0.5; 8])]);
        // name length (8) + "w" (1) + n_dims (4) from the tensor table's start at byte 24.
        zero_dim[24 + 13..24 + 21].copy_from_slice(&0u64.to_le_bytes());
        assert!(parse_err(&zero_dim).contains("zero or overflow"), "{}", parse_err(&zero_dim));

        let mut q2k = write(&[], &[("w", vec![8], vec![0.5; 8])]);
        q2k[24 + 21..24 + 25].copy_from_slice(&10u32.to_le_bytes());
        assert!(parse_err(&q2k).contains("Q2_K"), "{}", parse_err(&q2k));

        let twice = write(&[], &[("w", vec![8], vec![0.5; 8]), ("w", vec![8], vec![0.5; 8])]);
        assert!(parse_err(&twice).contains("appears twice"));
    }
}
