//! The upload path on arbitrary bytes: zip extraction, DICOM scan/parse/decode, JPEG/PNG decode — what
//! `POST /api/v1/uploads` runs on every file. Any panic, abort, sanitizer report or out-of-memory is a bug.
#![no_main]

use imaging::{Limits, archive, dicom, model_input, raster, render};
use libfuzzer_sys::fuzz_target;

/// Smaller than the server's defaults so that a legitimate maximum-size image stays within libFuzzer's
/// memory limit; the checks are the same code.
const LIMITS: Limits = Limits {
    max_file_bytes: 4 << 20,
    max_frame_pixels: 1 << 22,
    max_frames: 64,
    max_decoded_bytes: 64 << 20,
    max_sequence_depth: 24,
    max_elements: 100_000,
    max_zip_entries: 64,
    max_zip_ratio: 200,
};

fn one(bytes: &[u8]) {
    let (frames, windows, modality) = if dicom::is_dicom(bytes) {
        let Ok(image) = dicom::read(bytes, &LIMITS) else { return };
        let Ok(frames) = image.decode() else { return };
        (frames, image.info.file_windows(), image.info.modality)
    } else {
        let Ok(frames) = raster::decode(bytes, &LIMITS) else { return };
        (frames, Vec::new(), None)
    };
    // What the viewer and the model then do with every stored image.
    let last = frames.count.saturating_sub(1);
    let options = render::RenderOptions { frame: last, window: None, invert: false, max_side: Some(256) };
    let _ = render::to_8bit(&frames, &options, &windows).map(|img| render::png(&img));
    let _ = model_input::for_frame(&frames, last, modality.as_deref(), &windows, 64);
}

fuzz_target!(|data: &[u8]| {
    if archive::is_zip(data) {
        if let Ok(entries) = archive::open(std::io::Cursor::new(data), &LIMITS, 16 << 20) {
            for entry in entries.filter_map(|e| e.bytes.ok()) {
                one(&entry);
            }
        }
    } else {
        one(data);
    }
});
