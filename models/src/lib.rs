//! The MedGemma inference engine on libtorch.
//!
//! This crate owns every use of tch in the workspace. Today it answers which compute device the
//! process would use; the Gemma 3 + SigLIP engine lands here next (see the engine issue).

pub mod device;
