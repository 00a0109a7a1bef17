//! The ggml dequantizers checked bit for bit against gguf-py (`gguf.quants.dequantize`) on seeded random
//! blocks with edge scales. Fixtures: tests/fixtures/make_gguf_quant_vectors.py, generated into
//! target/fixtures/gguf-quants by scripts/test.sh.
//!
//! Exact equality is the right test, not a tolerance: every product in these formats is exact in f32 and
//! at most one operation per value rounds (see dequant.rs), so numpy's order of operations cannot differ
//! from ggml's in the result. Bits are compared, so ±0 and NaN payloads count.

use std::path::PathBuf;

use models::gguf::dequant::{GgmlType, dequantize};

const TYPES: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn fixtures() -> PathBuf {
    std::env::var_os("MEDGEMMA_X_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join("gguf-quants")
}

/// The encoded bytes of a type and gguf-py's values for them. Missing files fail the test, never skip it.
fn vectors(ty: GgmlType) -> (Vec<u8>, Vec<f32>) {
    let read = |ext: &str| {
        let path = fixtures().join(format!("{}.{ext}", ty.name()));
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "no reference vectors at {} ({e}): run scripts/test.sh, or .venv/bin/python \
                 models/tests/fixtures/make_gguf_quant_vectors.py target/fixtures",
                path.display()
            )
        })
    };
    let raw = read("raw");
    let values = read("f32").as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect::<Vec<_>>();
    assert_eq!(
        ty.bytes_for(values.len() as u64),
        Some(raw.len() as u64),
        "{}: {} bytes for {} values",
        ty.name(),
        raw.len(),
        values.len()
    );
    (raw, values)
}

/// Indices (and both values) where `got` differs from `want` in any bit.
fn mismatches(got: &[f32], want: &[f32]) -> Vec<(usize, f32, f32)> {
    got.iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g.to_bits() != w.to_bits())
        .map(|(i, (g, w))| (i, *g, *w))
        .collect()
}

#[test]
fn every_type_matches_gguf_py_bit_for_bit() {
    let mut failures = Vec::new();
    for ty in TYPES {
        let (raw, want) = vectors(ty);
        let mut got = vec![f32::NAN; want.len()];
        dequantize(ty, &raw, &mut got);
        let bad = mismatches(&got, &want);
        if !bad.is_empty() {
            failures.push(format!(
                "{}: {} of {} values differ, first {:?}",
                ty.name(),
                bad.len(),
                want.len(),
                &bad[..bad.len().min(4)]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The vectors repeated past one rayon task (16384 values), so the parallel split is checked against the
/// reference too, partial last task included.
#[test]
fn large_inputs_split_over_threads_match_too() {
    for ty in TYPES {
        let (raw, want) = vectors(ty);
        let copies = 40_000 / want.len() + 1;
        let raw = raw.repeat(copies);
        let want = want.repeat(copies);
        let mut got = vec![f32::NAN; want.len()];
        dequantize(ty, &raw, &mut got);
        let bad = mismatches(&got, &want);
        assert!(
            bad.is_empty(),
            "{}: {} of {} values differ, first {:?}",
            ty.name(),
            bad.len(),
            want.len(),
            &bad[..bad.len().min(4)]
        );
    }
}
