//! Every size an input may have, checked before anything of that size is allocated.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// One file (or one zip entry once extracted), bytes.
    pub max_file_bytes: u64,
    /// Rows × columns of one frame.
    pub max_frame_pixels: u64,
    /// Frames in one DICOM object.
    pub max_frames: u64,
    /// Decoded pixel data of one object (frames × rows × columns × samples × bytes per sample).
    pub max_decoded_bytes: u64,
    /// DICOM sequence nesting.
    pub max_sequence_depth: u32,
    /// Data elements in one file, items and delimiters included (the parser allocates for each).
    pub max_elements: u64,
    /// Entries in one zip archive.
    pub max_zip_entries: u64,
    /// Extracted ÷ compressed size of one zip entry (zip bombs reach 1000:1 and more; DICOM compresses
    /// 2–10:1, blank padding up to ~100:1).
    pub max_zip_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 512 << 20,
            // A 43 × 43 cm detector at 0.1 mm is 4300 × 4300 = 18.5 M pixels; leave room for long-leg films.
            max_frame_pixels: 64 << 20,
            max_frames: 4096,
            max_decoded_bytes: 2 << 30,
            // Real objects nest 4–6 levels (RT structure sets, enhanced multi-frame); the parser recurses.
            max_sequence_depth: 24,
            // An enhanced multi-frame CT with per-frame functional groups has ~100 per frame.
            max_elements: 1_000_000,
            max_zip_entries: 20_000,
            max_zip_ratio: 200,
        }
    }
}
