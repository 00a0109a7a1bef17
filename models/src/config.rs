//! The checkpoint's JSON files, with the defaults transformers applies when a key is absent.
//!
//! config.json exists in two dialects: the one MedGemma was published with (`rope_theta`,
//! `rope_local_base_freq`, `rope_scaling`, `sliding_window_pattern`) and the one transformers ≥ 5 writes
//! (`rope_parameters` per layer type, `layer_types`). Both are read.

use std::path::Path;

use serde_json::Value;

use crate::error::{EngineError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerType {
    Sliding,
    Full,
}

/// RoPE of one layer type: `inv_freq = 1 / theta^(2i/d) / linear_factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub linear_factor: f64,
}

#[derive(Clone, Debug)]
pub struct TextConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: usize,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    pub query_pre_attn_scalar: f64,
    pub rms_norm_eps: f64,
    pub sliding_window: i64,
    /// The context window: prompt and answer together (131 072 for MedGemma 4B).
    pub max_position_embeddings: i64,
    pub layer_types: Vec<LayerType>,
    pub rope_full: Rope,
    pub rope_sliding: Rope,
    pub final_logit_softcapping: Option<f64>,
    pub bos_token_id: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct VisionConfig {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: usize,
    pub num_attention_heads: i64,
    pub num_channels: i64,
    pub image_size: i64,
    pub patch_size: i64,
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    pub fn patches_per_side(&self) -> i64 {
        self.image_size / self.patch_size
    }
}

/// config.json of a Gemma 3 (MedGemma) checkpoint.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub text: TextConfig,
    /// None for a text-only model (`Gemma3ForCausalLM`, `model_type: gemma3_text`, or a GGUF file without
    /// its `mmproj` vision file): it reads no images.
    pub vision: Option<VisionConfig>,
    pub mm_tokens_per_image: i64,
    pub boi_token_id: i64,
    pub eoi_token_id: i64,
    pub image_token_id: i64,
    pub eos_token_ids: Vec<i64>,
}

/// generation_config.json: which tokens end an answer (for Gemma 3 instruct: `<eos>` and `<end_of_turn>`).
#[derive(Clone, Debug, Default)]
pub struct GenerationConfig {
    pub bos_token_id: Option<i64>,
    pub eos_token_ids: Vec<i64>,
}

/// preprocessor_config.json of the image processor.
#[derive(Clone, Debug)]
pub struct PreprocessorConfig {
    pub do_resize: bool,
    pub height: i64,
    pub width: i64,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::checkpoint(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| EngineError::checkpoint(path, format!("invalid JSON: {e}")))
}

/// Typed access to a JSON object with the file named in every error.
struct Fields<'a> {
    path: &'a Path,
    section: &'a str,
    value: &'a Value,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    fn err(&self, key: &str, what: &str) -> EngineError {
        EngineError::checkpoint(self.path, format!("{}{key}: {what}", self.section))
    }

    fn int(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| self.err(key, "expected an integer")),
        }
    }

    fn float(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.err(key, "expected a number")),
        }
    }

    fn opt_float(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|v| v.as_f64().ok_or_else(|| self.err(key, "expected a number"))).transpose()
    }

    fn string(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(v) => v.as_str().map(str::to_string).ok_or_else(|| self.err(key, "expected a string")),
        }
    }

    fn ids(&self, key: &str) -> Result<Vec<i64>> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_i64().ok_or_else(|| self.err(key, "expected integers"))).collect()
            }
            Some(v) => Ok(vec![v.as_i64().ok_or_else(|| self.err(key, "expected an integer or a list"))?]),
        }
    }
}

impl ModelConfig {
    /// `model_type` "gemma3" (image and text, the fields in `text_config` and `vision_config`) or
    /// "gemma3_text" (text only, the fields at the top level).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_json(&read_json(path)?, path)
    }

    /// The same from a config already in memory (a GGUF file's metadata translated to config.json's
    /// fields); `path` names the file in errors.
    pub fn from_json(root: &Value, path: &Path) -> Result<Self> {
        let top = Fields { path, section: "", value: root };
        let empty = Value::Object(Default::default());
        let model_type = top.string("model_type", "")?;
        let (text, vision) = match model_type.as_str() {
            "gemma3" => {
                let text = Fields { path, section: "text_config.", value: top.get("text_config").unwrap_or(&empty) };
                let vision =
                    Fields { path, section: "vision_config.", value: top.get("vision_config").unwrap_or(&empty) };
                (TextConfig::from_fields(&text)?, Some(VisionConfig::from_fields(&vision)?))
            }
            "gemma3_text" => (TextConfig::from_fields(&top)?, None),
            _ => {
                return Err(EngineError::checkpoint(
                    path,
                    format!(
                        "unknown model_type {model_type:?}: this engine runs Gemma 3 / MedGemma (model_type \"gemma3\" \
                         or \"gemma3_text\")"
                    ),
                ));
            }
        };
        let config = Self {
            text,
            vision,
            mm_tokens_per_image: top.int("mm_tokens_per_image", 256)?,
            boi_token_id: top.int("boi_token_index", 255_999)?,
            eoi_token_id: top.int("eoi_token_index", 256_000)?,
            image_token_id: top.int("image_token_index", 262_144)?,
            eos_token_ids: top.ids("eos_token_id")?,
        };
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let t = &self.text;
        let bad = |m: String| Err(EngineError::checkpoint(path, m));
        if t.num_attention_heads <= 0
            || t.num_key_value_heads <= 0
            || t.num_attention_heads % t.num_key_value_heads != 0
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads, t.num_key_value_heads
            ));
        }
        let Some(v) = &self.vision else { return Ok(()) };
        if v.image_size % v.patch_size != 0 || v.hidden_size % v.num_attention_heads != 0 {
            return bad("vision_config: image_size must be a multiple of patch_size and hidden_size of heads".into());
        }
        let side = (self.mm_tokens_per_image as f64).sqrt() as i64;
        if side * side != self.mm_tokens_per_image || v.patches_per_side() % side != 0 {
            return bad(format!(
                "mm_tokens_per_image {} must be a square whose side divides {} patches per side",
                self.mm_tokens_per_image,
                v.patches_per_side()
            ));
        }
        Ok(())
    }

    /// Side of the square grid of soft tokens per image (16 for MedGemma's 256).
    pub fn tokens_per_side(&self) -> i64 {
        (self.mm_tokens_per_image as f64).sqrt() as i64
    }
}

impl TextConfig {
    fn from_fields(f: &Fields) -> Result<Self> {
        let num_hidden_layers = f.int("num_hidden_layers", 26)? as usize;
        let num_attention_heads = f.int("num_attention_heads", 8)?;
        let hidden_size = f.int("hidden_size", 2304)?;
        let activation = f.string("hidden_activation", "gelu_pytorch_tanh")?;
        if activation != "gelu_pytorch_tanh" {
            return Err(f.err(
                "hidden_activation",
                &format!("{activation:?} is not supported (Gemma 3 uses gelu_pytorch_tanh)"),
            ));
        }
        if f.get("attn_logit_softcapping").is_some() {
            return Err(f.err("attn_logit_softcapping", "not supported (Gemma 3 does not use it)"));
        }
        let layer_types = match f.get("layer_types") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v.as_str() {
                    Some("sliding_attention") => Ok(LayerType::Sliding),
                    Some("full_attention") => Ok(LayerType::Full),
                    _ => Err(f.err("layer_types", &format!("unknown layer type {v}"))),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(f.err("layer_types", "expected a list")),
            None => {
                let pattern = f.int("sliding_window_pattern", f.int("_sliding_window_pattern", 6)?)?.max(1) as usize;
                (0..num_hidden_layers)
                    .map(|i| if (i + 1) % pattern != 0 { LayerType::Sliding } else { LayerType::Full })
                    .collect()
            }
        };
        if layer_types.len() != num_hidden_layers {
            return Err(f.err("layer_types", &format!("{} entries for {num_hidden_layers} layers", layer_types.len())));
        }
        let (rope_full, rope_sliding) = read_rope(f)?;
        Ok(Self {
            vocab_size: f.int("vocab_size", 262_208)?,
            hidden_size,
            intermediate_size: f.int("intermediate_size", 9216)?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: f.int("num_key_value_heads", 4)?,
            head_dim: f.int("head_dim", 256)?,
            query_pre_attn_scalar: f.float("query_pre_attn_scalar", 256.0)?,
            rms_norm_eps: f.float("rms_norm_eps", 1e-6)?,
            sliding_window: f.int("sliding_window", 4096)?,
            max_position_embeddings: f.int("max_position_embeddings", 131_072)?,
            layer_types,
            rope_full,
            rope_sliding,
            final_logit_softcapping: f.opt_float("final_logit_softcapping")?,
            bos_token_id: f.get("bos_token_id").and_then(Value::as_i64),
        })
    }
}

/// (full-attention RoPE, sliding-attention RoPE) from either config dialect.
fn read_rope(f: &Fields) -> Result<(Rope, Rope)> {
    let parse = |params: Option<&Value>, default_theta: f64, key: &str| -> Result<Rope> {
        let Some(params) = params else { return Ok(Rope { theta: default_theta, linear_factor: 1.0 }) };
        let p = Fields { path: f.path, section: f.section, value: params };
        let theta = p.float("rope_theta", default_theta)?;
        match p.string("rope_type", "default")?.as_str() {
            "default" => Ok(Rope { theta, linear_factor: 1.0 }),
            "linear" => Ok(Rope { theta, linear_factor: p.float("factor", 1.0)? }),
            other => Err(f.err(key, &format!("rope_type {other:?} is not supported (default and linear are)"))),
        }
    };
    if let Some(params) = f.get("rope_parameters") {
        let full = parse(params.get("full_attention"), 1_000_000.0, "rope_parameters.full_attention")?;
        let sliding = parse(params.get("sliding_attention"), 10_000.0, "rope_parameters.sliding_attention")?;
        return Ok((full, sliding));
    }
    let theta = f.float("rope_theta", 1_000_000.0)?;
    let mut full = Rope { theta, linear_factor: 1.0 };
    if let Some(scaling) = f.get("rope_scaling") {
        let mut scaling = scaling.clone();
        scaling["rope_theta"] = theta.into();
        full = parse(Some(&scaling), theta, "rope_scaling")?;
    }
    let sliding = Rope { theta: f.float("rope_local_base_freq", 10_000.0)?, linear_factor: 1.0 };
    Ok((full, sliding))
}

impl VisionConfig {
    fn from_fields(f: &Fields) -> Result<Self> {
        let activation = f.string("hidden_act", "gelu_pytorch_tanh")?;
        if activation != "gelu_pytorch_tanh" {
            return Err(f.err("hidden_act", &format!("{activation:?} is not supported")));
        }
        Ok(Self {
            hidden_size: f.int("hidden_size", 768)?,
            intermediate_size: f.int("intermediate_size", 3072)?,
            num_hidden_layers: f.int("num_hidden_layers", 12)? as usize,
            num_attention_heads: f.int("num_attention_heads", 12)?,
            num_channels: f.int("num_channels", 3)?,
            image_size: f.int("image_size", 224)?,
            patch_size: f.int("patch_size", 16)?,
            layer_norm_eps: f.float("layer_norm_eps", 1e-6)?,
        })
    }
}

impl GenerationConfig {
    /// Absent file: no extra ids (config.json's eos ids still apply).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let root = read_json(path)?;
        let f = Fields { path, section: "", value: &root };
        Ok(Self { bos_token_id: f.get("bos_token_id").and_then(Value::as_i64), eos_token_ids: f.ids("eos_token_id")? })
    }
}

impl PreprocessorConfig {
    pub fn load(path: &Path, vision: &VisionConfig) -> Result<Self> {
        let root = if path.exists() { read_json(path)? } else { Value::Object(Default::default()) };
        let f = Fields { path, section: "", value: &root };
        let size = f.get("size");
        let side = |key: &str| -> Result<i64> {
            match size.and_then(|s| s.get(key)) {
                None => Ok(vision.image_size),
                Some(v) => v.as_i64().ok_or_else(|| f.err("size", "expected integers")),
            }
        };
        let triple = |key: &str, default: f64| -> Result<[f64; 3]> {
            match f.get(key) {
                None => Ok([default; 3]),
                Some(Value::Array(v)) if v.len() == 3 => {
                    let mut out = [0.0; 3];
                    for (o, x) in out.iter_mut().zip(v) {
                        *o = x.as_f64().ok_or_else(|| f.err(key, "expected numbers"))?;
                    }
                    Ok(out)
                }
                Some(v) => v.as_f64().map(|x| [x; 3]).ok_or_else(|| f.err(key, "expected 3 numbers")),
            }
        };
        let flag = |key: &str| f.get(key).and_then(Value::as_bool).unwrap_or(true);
        Ok(Self {
            do_resize: flag("do_resize"),
            height: side("height")?,
            width: side("width")?,
            do_rescale: flag("do_rescale"),
            rescale_factor: f.float("rescale_factor", 1.0 / 255.0)?,
            do_normalize: flag("do_normalize"),
            image_mean: triple("image_mean", 0.5)?,
            image_std: triple("image_std", 0.5)?,
        })
    }
}
