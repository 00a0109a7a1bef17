//! The MedGemma inference engine on libtorch: loads a Hugging Face Gemma 3 / MedGemma checkpoint folder
//! (config, tokenizer, image processor, safetensors) and generates, with images.
//!
//! One file per part: [`config`] (the JSON files), [`weights`] (safetensors), [`text`] (the decoder),
//! [`vision`] (SigLIP and the projector), [`prompt`] (chat template), [`image`] (preprocessing),
//! [`engine`] (all of it loaded), [`generate`] (sampling). Reference: transformers' modeling_gemma3.py.

pub mod check;
pub mod config;
pub mod constrain;
pub mod device;
pub mod engine;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod image;
mod layers;
pub mod prompt;
pub mod text;
pub mod vision;
pub mod weights;

pub use engine::Engine;
pub use error::EngineError;
