//! A loaded MedGemma checkpoint: tokenizer, vision tower, projector and decoder, ready to generate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use tch::{Device, Kind, Tensor};
use tokenizers::Tokenizer;

use crate::config::{GenerationConfig, ModelConfig, PreprocessorConfig};
use crate::error::{EngineError, Result};
use crate::prompt::{self, TemplateTokens, Turn};
use crate::text::{AttentionMask, KvCache, Logits, PromptAttention, Sequence, TextModel};
use crate::vision::{Projector, VisionTower};
use crate::weights::{Quantization, Weights};

/// The `make_way` of work that nothing interrupts.
pub fn never() -> bool {
    false
}

pub struct Engine {
    pub config: ModelConfig,
    /// The image processor's settings; None for a text-only model.
    pub preprocessor: Option<PreprocessorConfig>,
    /// Ids that end an answer: config.json's and generation_config.json's eos ids together.
    pub eos_token_ids: Vec<i64>,
    pub template: TemplateTokens,
    pub tokenizer: Tokenizer,
    /// Byte-fallback tokens (`<0xE4>` …): a character split over them is only final once a token of
    /// another kind follows.
    pub byte_token_ids: HashSet<i64>,
    /// Special tokens: decoding drops them.
    pub silent_token_ids: HashSet<i64>,
    /// MedGemma 1.5's thinking markers (`<unused94>`, `<unused95>`), when the tokenizer has them: what
    /// lies between is the model's reasoning, kept out of the answer.
    pub thinking_markers: Option<(i64, i64)>,
    pub text: TextModel,
    /// The vision tower and projector; None for a text-only model.
    vision: Option<(VisionTower, Projector)>,
    pub device: Device,
    pub kind: Kind,
    /// The checkpoint folder, or the GGUF file.
    pub path: PathBuf,
    /// Where the tokenizer's JSON comes from (constrained generation reads its vocabulary).
    tokenizer_json: TokenizerJson,
    /// Built on the first constrained generation (a trie over the whole vocabulary).
    constraint_factory: OnceLock<std::result::Result<Arc<llguidance::ParserFactory>, String>>,
}

enum TokenizerJson {
    /// A checkpoint folder's tokenizer.json, read when first needed.
    File(PathBuf),
    /// Rebuilt from a GGUF file's metadata when it was loaded; kept as text (a fraction of its size as a
    /// parsed value) and parsed when first needed.
    Built(String),
}

/// What a checkpoint provides before the engine is assembled from it: configs and tokenizer read, tensors
/// mapped but not yet copied (what `check` inspects without loading the model).
pub(crate) struct Parts {
    pub config: ModelConfig,
    generation: GenerationConfig,
    preprocessor: Option<PreprocessorConfig>,
    pub tokenizer: Tokenizer,
    tokenizer_json: TokenizerJson,
    pub weights: Weights,
    /// "GGUF v3" or "Hugging Face folder".
    pub format: String,
}

impl Engine {
    /// Loads a Hugging Face checkpoint folder, or a GGUF file (`path` names the file, or a folder that
    /// holds one model `.gguf`).
    pub fn load(path: &Path, device: Device, kind: Kind) -> Result<Self> {
        Self::load_with(path, device, kind, Quantization::None)
    }

    /// As [`Engine::load`], with the decoder's matrices held as `quantization` says (computing in `kind`).
    pub fn load_with(path: &Path, device: Device, kind: Kind, quantization: Quantization) -> Result<Self> {
        let _guard = tch::no_grad_guard();
        if quantization == Quantization::Int8 && device != Device::Cpu {
            // libtorch's int8 kernel has been checked on the CPU only; a GPU holds bf16 until it is measured there.
            return Err(EngineError::Input("int8 weights run on the CPU in this version; on a GPU use bf16".into()));
        }
        let mut parts = Parts::open(path, device, kind)?;
        parts.weights.quantization = quantization;
        Self::assemble(path, parts)
    }

    fn assemble(path: &Path, parts: Parts) -> Result<Self> {
        let Parts { config, generation, preprocessor, tokenizer, tokenizer_json, weights, .. } = parts;
        let tokenizer_path = match &tokenizer_json {
            TokenizerJson::File(file) => file.clone(),
            TokenizerJson::Built(_) => path.to_path_buf(),
        };
        let token = |id: i64, what: &str| {
            tokenizer.id_to_token(id as u32).ok_or_else(|| {
                EngineError::checkpoint(
                    &tokenizer_path,
                    format!("{what} id {id} from the config is not in the vocabulary"),
                )
            })
        };
        let bos_id = generation
            .bos_token_id
            .or(config.text.bos_token_id)
            .ok_or_else(|| EngineError::checkpoint(path, "no bos_token_id in generation_config.json or the config"))?;
        for marker in [prompt::START_OF_TURN, prompt::END_OF_TURN] {
            if tokenizer.token_to_id(marker).is_none() {
                return Err(EngineError::checkpoint(
                    &tokenizer_path,
                    format!("no {marker} token: not a Gemma 3 chat tokenizer"),
                ));
            }
        }
        let template = match config.vision {
            Some(_) => TemplateTokens {
                bos: token(bos_id, "bos")?,
                start_of_image: token(config.boi_token_id, "boi_token_index")?,
                image: token(config.image_token_id, "image_token_index")?,
                end_of_image: token(config.eoi_token_id, "eoi_token_index")?,
                image_tokens: config.mm_tokens_per_image as usize,
            },
            // A text-only prompt never holds an image (encode_chat refuses one).
            None => TemplateTokens {
                bos: token(bos_id, "bos")?,
                start_of_image: String::new(),
                image: String::new(),
                end_of_image: String::new(),
                image_tokens: 0,
            },
        };
        let mut eos_token_ids = config.eos_token_ids.clone();
        eos_token_ids.extend(&generation.eos_token_ids);
        eos_token_ids.sort_unstable();
        eos_token_ids.dedup();

        let byte_token_ids = tokenizer
            .get_vocab(true)
            .into_iter()
            .filter(|(token, _)| token.len() == 6 && token.starts_with("<0x") && token.ends_with('>'))
            .map(|(_, id)| i64::from(id))
            .collect();

        let silent_token_ids = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| i64::from(id))
            .collect();
        let id_of = |token: &str| tokenizer.token_to_id(token).map(i64::from);
        let thinking_markers = id_of(prompt::THINKING_START).zip(id_of(prompt::THINKING_END));

        let text = TextModel::load(&weights, &config.text)?;
        let vision = match &config.vision {
            Some(vision) => Some((VisionTower::load(&weights, vision)?, Projector::load(&weights, &config, vision)?)),
            None => None,
        };
        Ok(Self {
            config,
            preprocessor,
            eos_token_ids,
            template,
            tokenizer,
            byte_token_ids,
            silent_token_ids,
            thinking_markers,
            text,
            vision,
            device: weights.device,
            kind: weights.kind,
            path: path.to_path_buf(),
            tokenizer_json,
            constraint_factory: OnceLock::new(),
        })
    }

    /// Whether the model reads images (a text-only model answers about text alone).
    pub fn reads_images(&self) -> bool {
        self.vision.is_some()
    }

    /// Token ids of a conversation, rendered with the chat template and ready for the answer.
    pub fn encode_chat(&self, system: Option<&str>, turns: &[Turn]) -> Result<Vec<i64>> {
        if !self.reads_images() && turns.iter().any(|t| t.images > 0) {
            return Err(EngineError::Input("this model is text-only: it reads no images".into()));
        }
        let text = prompt::render(system, turns, &self.template);
        let encoding = self.tokenizer.encode(text, false).map_err(|e| EngineError::Input(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// Runs the prompt: `pixel_values` holds one [3, H, W] tensor per image, in prompt order.
    /// Returns logits ([positions, vocab], f32: every prompt position or only the last, as `logits` says)
    /// and the sequence state. `capture_attention` sums, from here on, the attention each step pays to
    /// the prompt (heatmaps).
    pub fn prefill(
        &self,
        ids: &[i64],
        pixel_values: &[Tensor],
        capture_attention: bool,
        logits: Logits,
    ) -> Result<(Tensor, Sequence)> {
        self.prefill_unless(ids, pixel_values, capture_attention, logits, &never)
    }

    /// [`Engine::prefill`] that asks `make_way` between layers (vision and text) and stops with
    /// [`EngineError::MadeWay`] when it answers true.
    pub fn prefill_unless(
        &self,
        ids: &[i64],
        pixel_values: &[Tensor],
        capture_attention: bool,
        logits: Logits,
        make_way: &dyn Fn() -> bool,
    ) -> Result<(Tensor, Sequence)> {
        let _guard = tch::no_grad_guard();
        let image_id = self.config.image_token_id;
        let image_positions = ids.iter().filter(|&&id| id == image_id).count() as i64;
        let expected = pixel_values.len() as i64 * self.config.mm_tokens_per_image;
        if image_positions != expected {
            return Err(EngineError::Input(format!(
                "{image_positions} image tokens in the prompt for {} image(s) of {} tokens each",
                pixel_values.len(),
                self.config.mm_tokens_per_image
            )));
        }
        let ids_tensor = Tensor::from_slice(ids).to_device(self.device).unsqueeze(0);
        let mut embeds = self.text.embed(&ids_tensor);
        if !pixel_values.is_empty() {
            let Some((tower, projector)) = &self.vision else {
                return Err(EngineError::Input("this model is text-only: it reads no images".into()));
            };
            let pixels = Tensor::stack(pixel_values, 0).to_device(self.device);
            let patches = tower.forward(&pixels, make_way).ok_or(EngineError::MadeWay)?;
            let features = projector.forward(&patches).to_kind(embeds.kind());
            let mask = ids_tensor.eq(image_id).unsqueeze(-1);
            embeds = embeds.f_masked_scatter(&mask, &features.reshape([-1, self.config.text.hidden_size]))?;
        }
        let mask = AttentionMask::new(image_block_ids(ids, image_id));
        let mut cache = KvCache::new(self.config.text.num_hidden_layers);
        if capture_attention {
            cache.prompt_attention = Some(PromptAttention::new(ids.len() as i64, self.device));
        }
        let mut seq = Sequence { cache, mask };
        let logits = self.text.forward(&embeds, &mut [&mut seq], logits, make_way).ok_or(EngineError::MadeWay)?;
        Ok((logits.squeeze_dim(0).to_kind(Kind::Float), seq))
    }

    /// One decode step of several sequences together: `tokens[b]` is the token `seqs[b]` just chose.
    /// Returns logits [batch, vocab], f32.
    pub fn decode_step(&self, tokens: &[i64], seqs: &mut [&mut Sequence]) -> Tensor {
        let _guard = tch::no_grad_guard();
        let ids = Tensor::from_slice(tokens).to_device(self.device).unsqueeze(1);
        let embeds = self.text.embed(&ids);
        // Never stopped halfway: the caches of sequences already under way would be half written.
        let logits = self.text.forward(&embeds, seqs, Logits::Last, &never).expect("a step that never makes way ends");
        logits.squeeze_dim(1).to_kind(Kind::Float)
    }

    /// The parser factory for constrained generation, built once.
    pub(crate) fn constraint_factory(&self) -> Result<Arc<llguidance::ParserFactory>> {
        self.constraint_factory
            .get_or_init(|| {
                let json = match &self.tokenizer_json {
                    TokenizerJson::File(path) => crate::config::read_json(path).map_err(|e| e.to_string())?,
                    TokenizerJson::Built(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
                };
                // Answers end at <end_of_turn>; a checkpoint without it ends at its first eos id.
                let end = self
                    .tokenizer
                    .token_to_id(prompt::END_OF_TURN)
                    .or_else(|| self.eos_token_ids.first().map(|&id| id as u32))
                    .unwrap_or(0);
                crate::constrain::parser_factory(&json, &self.tokenizer, self.config.text.vocab_size as usize, end)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(EngineError::Input)
    }

    /// Preprocesses one image file into pixel values on the engine's device.
    pub fn load_image(&self, path: &Path) -> Result<Tensor> {
        let img = crate::image::load(path)?;
        self.image_tensor(&img)
    }

    /// Preprocesses an image already in memory (a DICOM frame prepared by the imaging crate).
    pub fn image_tensor(&self, img: &image::DynamicImage) -> Result<Tensor> {
        let preprocessor = self
            .preprocessor
            .as_ref()
            .ok_or_else(|| EngineError::Input("this model is text-only: it reads no images".into()))?;
        Ok(crate::image::preprocess(img, preprocessor, self.device))
    }
}

impl Parts {
    /// A GGUF file (`path` names it, or a folder holding one model `.gguf`), else a checkpoint folder.
    pub(crate) fn open(path: &Path, device: Device, kind: Kind) -> Result<Self> {
        match crate::gguf::gemma3::find_model_file(path)? {
            Some(file) => Self::gguf(&file, device, kind),
            None => Self::folder(path, device, kind),
        }
    }

    /// A Hugging Face checkpoint folder: config.json, generation_config.json, tokenizer.json,
    /// preprocessor_config.json (models that read images), safetensors.
    fn folder(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let generation = GenerationConfig::load(&dir.join("generation_config.json"))?;
        let preprocessor = match &config.vision {
            Some(vision) => Some(PreprocessorConfig::load(&dir.join("preprocessor_config.json"), vision)?),
            None => None,
        };
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| EngineError::checkpoint(&tokenizer_path, format!("cannot load tokenizer: {e}")))?;
        let weights = Weights::open(dir, kind, device)?;
        Ok(Self {
            config,
            generation,
            preprocessor,
            tokenizer,
            tokenizer_json: TokenizerJson::File(tokenizer_path),
            weights,
            format: "Hugging Face folder".into(),
        })
    }

    /// A GGUF file: config and tokenizer from its metadata, tensors from its blocks. Text only (the
    /// vision part of a multimodal GGUF model comes in a separate mmproj file, not read yet).
    fn gguf(path: &Path, device: Device, kind: Kind) -> Result<Self> {
        let file = crate::gguf::GgufFile::open(path)?;
        let config = crate::gguf::gemma3::config(&file)?;
        let json = crate::gguf::tokenizer::tokenizer_json(&file)?.to_string();
        let tokenizer = Tokenizer::from_str(&json)
            .map_err(|e| EngineError::checkpoint(path, format!("cannot build the tokenizer from the metadata: {e}")))?;
        Ok(Self {
            config,
            generation: GenerationConfig::default(),
            preprocessor: None,
            tokenizer,
            format: format!("GGUF v{}", file.version),
            tokenizer_json: TokenizerJson::Built(json),
            weights: Weights::gguf(file, kind, device),
        })
    }
}

/// For each position, the index of the image whose soft tokens it belongs to, or -1. Soft tokens of one
/// image attend to each other in both directions.
pub fn image_block_ids(ids: &[i64], image_id: i64) -> Vec<i64> {
    let mut block = -1;
    let mut previous_was_image = false;
    ids.iter()
        .map(|&id| {
            let is_image = id == image_id;
            if is_image && !previous_was_image {
                block += 1;
            }
            previous_was_image = is_image;
            if is_image { block } else { -1 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_blocks_are_numbered_per_run_of_soft_tokens() {
        assert_eq!(super::image_block_ids(&[1, 9, 9, 2, 9, 9, 3], 9), vec![-1, 0, 0, -1, 1, 1, -1]);
    }
}
