//! Times parsing + decoding + the modality LUT of each file given, from bytes in memory, as the server
//! does on upload. Prints one JSON line per file: {"file", "median_ms", "min_ms", "pixels"}.
//! Used by scripts/bench_dicom.py, which times pydicom on the same files.
//!
//! cargo run --release -p imaging --example decode_timing -- REPEATS FILE...

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let repeats: usize = args.next().and_then(|r| r.parse().ok()).expect("usage: decode_timing REPEATS FILE...");
    let limits = imaging::Limits::default();
    for file in args {
        let bytes = std::fs::read(&file).unwrap();
        let mut times = Vec::new();
        let mut pixels = 0;
        for _ in 0..repeats {
            let start = Instant::now();
            let frames = imaging::dicom::read(&bytes, &limits).and_then(|image| image.decode()).unwrap();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            pixels = frames.rows * frames.columns * frames.count;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({"file": file, "median_ms": times[times.len() / 2], "min_ms": times[0], "pixels": pixels})
        );
    }
}
