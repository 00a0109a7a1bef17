//! Reading medical images under limits: DICOM Part 10 (every transfer syntax a county hospital meets),
//! JPEG and PNG, and zip archives of them. Metadata, pixel decoding to modality values, windowed
//! rendering, and the image as MedGemma sees it.
//!
//! Everything here works on bytes already in memory (an upload is bounded by [`Limits::max_file_bytes`])
//! and checks every size a file declares before allocating for it: a hostile file gets an
//! [`ImagingError`] naming the reason, never an allocation of what it claims.

pub mod archive;
pub mod dicom;
mod error;
mod jpeg;
pub mod limits;
pub mod model_input;
pub mod pixels;
pub mod raster;
pub mod render;
mod rle;
mod scan;

pub use error::ImagingError;
pub use limits::Limits;
pub use pixels::{Frames, Samples};
