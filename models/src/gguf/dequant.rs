//! ggml's tensor encodings to f32: the plain floats and the block quantizations a GGUF file may hold.
//!
//! Each decoder follows ggml's reference C (ggml-quants.c `dequantize_row_*`, ggml-impl.h for the floats)
//! operation for operation; tests/gguf_dequant.rs checks them bit for bit against gguf-py's
//! `gguf.quants.dequantize`. All fields are little-endian; `f16` is IEEE binary16.
//!
//! The values do not depend on operation order or fused multiply-add: an f16 scale has 11 significant bits
//! and the integers it multiplies are small (|q| ≤ 128 in Q8_0, sc·q within 8 + 5 bits in Q6_K, sc ≤ 63 and
//! q ≤ 31 in the K quants), so every product is exact in f32 and the only rounding is the single `+ m` of
//! Q4_1/Q5_1 and `− dmin·m` of Q4_K/Q5_K. Any correct decoder (ggml built with or without FMA contraction,
//! gguf-py's numpy, this one) gives the same bits.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// A ggml tensor type this engine reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)] // ggml's names, as GGUF tools print them.
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
}

/// ggml's name for a type id (ggml.h `enum ggml_type`, gguf-py `GGMLQuantizationType`), so that a file with
/// a type this engine cannot read is refused by a name its owner will recognise. Ids 4, 5, 31–33 and 36–38
/// were removed from ggml but are named for the same reason.
fn type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        4 => "Q4_2",
        5 => "Q4_3",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        31 => "Q4_0_4_4",
        32 => "Q4_0_4_8",
        33 => "Q4_0_8_8",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4",
        37 => "IQ4_NL_4_8",
        38 => "IQ4_NL_8_8",
        39 => "MXFP4",
        40 => "NVFP4",
        41 => "Q1_0",
        _ => return None,
    })
}

const SUPPORTED: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

impl GgmlType {
    /// From the type id stored in a GGUF tensor info (ggml's `enum ggml_type`). Types this engine does not
    /// decode are refused by name; ids ggml never had are refused as unknown.
    pub fn from_id(id: u32) -> Result<Self, String> {
        if let Some(&ty) = SUPPORTED.iter().find(|ty| ty.id() == id) {
            return Ok(ty);
        }
        match type_name(id) {
            Some(name) => {
                let supported: Vec<&str> = SUPPORTED.iter().map(|ty| ty.name()).collect();
                Err(format!("tensor type {name} (id {id}) is not supported ({} are)", supported.join(", ")))
            }
            None => Err(format!("unknown tensor type id {id}")),
        }
    }

    fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::BF16 => 30,
        }
    }

    /// ggml's name of the type ("Q4_K").
    pub fn name(self) -> &'static str {
        type_name(self.id()).expect("every supported type has a name")
    }

    /// Values per block: 1 for the plain floats, 32 for the legacy quants, 256 (`QK_K`) for the K quants.
    pub fn block_elements(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => 32,
            GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => 256,
        }
    }

    /// Bytes per block (ggml's `type_size`).
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    /// Bytes that `elements` values take, or None when `elements` is not a whole number of blocks or the
    /// product overflows u64 (a hostile tensor info can claim any shape).
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let per_block = self.block_elements() as u64;
        if !elements.is_multiple_of(per_block) {
            return None;
        }
        (elements / per_block).checked_mul(self.block_bytes() as u64)
    }
}

/// Output values per rayon task: 64 KiB of f32, a whole number of blocks of every type (256 | 16384), so
/// each task's input is a whole number of blocks too.
const TASK_ELEMENTS: usize = 16 * 1024;

/// Decodes `data` (exactly `ty.bytes_for(out.len())` bytes, little-endian, ggml's block layout) into `out`.
/// Panics if the lengths disagree (the caller checks them first). Large inputs are split over rayon in
/// tasks of whole blocks.
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    assert_eq!(
        ty.bytes_for(out.len() as u64),
        Some(data.len() as u64),
        "{} bytes cannot decode to {} {} values",
        data.len(),
        out.len(),
        ty.name()
    );
    if out.len() <= TASK_ELEMENTS {
        decode(ty, data, out);
        return;
    }
    let task_bytes = TASK_ELEMENTS / ty.block_elements() * ty.block_bytes();
    out.par_chunks_mut(TASK_ELEMENTS).zip(data.par_chunks(task_bytes)).for_each(|(out, data)| decode(ty, data, out));
}

/// Decodes whole blocks serially.
fn decode(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F32 => blocks(data, out, f32_value),
        GgmlType::F16 => f16_values(data, out),
        GgmlType::BF16 => blocks(data, out, bf16_value),
        GgmlType::Q4_0 => blocks(data, out, q4_0),
        GgmlType::Q4_1 => blocks(data, out, q4_1),
        GgmlType::Q5_0 => blocks(data, out, q5_0),
        GgmlType::Q5_1 => blocks(data, out, q5_1),
        GgmlType::Q8_0 => blocks(data, out, q8_0),
        GgmlType::Q4_K => blocks(data, out, q4_k),
        GgmlType::Q5_K => blocks(data, out, q5_k),
        GgmlType::Q6_K => blocks(data, out, q6_k),
    }
}

/// Applies a block decoder of `B` bytes → `E` values over `data`/`out` (whole blocks, checked by the caller).
fn blocks<const B: usize, const E: usize>(data: &[u8], out: &mut [f32], block: fn(&[u8; B], &mut [f32; E])) {
    let (data, rest) = data.as_chunks::<B>();
    let (out, out_rest) = out.as_chunks_mut::<E>();
    debug_assert!(rest.is_empty() && out_rest.is_empty() && data.len() == out.len());
    for (data, out) in data.iter().zip(out) {
        block(data, out);
    }
}

fn f16_at(b: &[u8], offset: usize) -> f32 {
    f16::from_le_bytes([b[offset], b[offset + 1]]).to_f32()
}

/// F32: 4 bytes, the IEEE value itself (bits kept, NaN payloads included).
fn f32_value(b: &[u8; 4], y: &mut [f32; 1]) {
    y[0] = f32::from_le_bytes(*b);
}

/// F16: 2 bytes of IEEE binary16, widened exactly. Through a buffer of 256 so that half converts a slice at
/// a time (F16C where the CPU has it): value by value was 6–7 times slower, seconds per F16 model.
fn f16_values(data: &[u8], out: &mut [f32]) {
    let mut buffer = [f16::ZERO; 256];
    for (data, out) in data.as_chunks::<2>().0.chunks(256).zip(out.chunks_mut(256)) {
        let halves = &mut buffer[..out.len()];
        for (h, b) in halves.iter_mut().zip(data) {
            *h = f16::from_le_bytes(*b);
        }
        halves.convert_to_f32_slice(out);
    }
}

/// BF16: 2 bytes, the top half of an f32 (ggml_compute_bf16_to_fp32: `bits << 16`). Done by hand rather
/// than with `half::bf16::to_f32`, which sets the quiet bit of a signalling NaN where ggml keeps its bits.
fn bf16_value(b: &[u8; 2], y: &mut [f32; 1]) {
    y[0] = f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16);
}

/// Q4_0, 32 values in 18 bytes: d: f16 @0, qs[16] @2.
/// y[j] = ((qs[j] & 0xF) − 8)·d, y[j+16] = ((qs[j] >> 4) − 8)·d  (j < 16).
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1, 32 values in 20 bytes: d: f16 @0, m: f16 @2, qs[16] @4.
/// y[j] = (qs[j] & 0xF)·d + m, y[j+16] = (qs[j] >> 4)·d + m.
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0xF) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// The 5th bits of a Q5 block: bit i of the u32 `qh` belongs to value i.
fn q5_high(qh: u32, i: usize) -> u8 {
    (((qh >> i) & 1) as u8) << 4
}

/// Q5_0, 32 values in 22 bytes: d: f16 @0, qh: u32 @2, qs[16] @6.
/// y[j] = (((qs[j] & 0xF) | qh bit j << 4) − 16)·d, y[j+16] = (((qs[j] >> 4) | qh bit j+16 << 4) − 16)·d.
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        y[j] = (((qs[j] & 0xF) | q5_high(qh, j)) as i32 - 16) as f32 * d;
        y[j + 16] = (((qs[j] >> 4) | q5_high(qh, j + 16)) as i32 - 16) as f32 * d;
    }
}

/// Q5_1, 32 values in 24 bytes: d: f16 @0, m: f16 @2, qh: u32 @4, qs[16] @8.
/// y[j] = ((qs[j] & 0xF) | qh bit j << 4)·d + m, y[j+16] = ((qs[j] >> 4) | qh bit j+16 << 4)·d + m.
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        y[j] = ((qs[j] & 0xF) | q5_high(qh, j)) as f32 * d + m;
        y[j + 16] = ((qs[j] >> 4) | q5_high(qh, j + 16)) as f32 * d + m;
    }
}

/// Q8_0, 32 values in 34 bytes: d: f16 @0, qs: i8[32] @2.  y[j] = qs[j]·d.
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = q as i8 as f32 * d;
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block, packed
/// in 12 bytes as: bytes 0–3 scales 0–3 (low 6 bits), 4–7 mins 0–3 (low 6 bits); bytes 8–11 the low 4
/// bits of scales 4–7 (low nibble) and of mins 4–7 (high nibble), whose top 2 bits are the top 2 bits of
/// bytes 0–3 (scales) and 4–7 (mins).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K, 256 values in 144 bytes: d: f16 @0, dmin: f16 @2, scales[12] @4, qs[128] @16.
/// 8 sub-blocks of 32 with (sc, m) from `scale_min_k4`. Group g < 4 is values 64g..64g+64 from
/// qs[32g..32g+32]: the low nibbles are sub-block 2g, then the high nibbles sub-block 2g+1.
/// y = (d·sc)·q − (dmin·m).
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for g in 0..4 {
        let q = &qs[32 * g..32 * g + 32];
        let y = &mut y[64 * g..64 * g + 64];
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0xF) as f32 - min1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - min2;
        }
    }
}

/// Q5_K, 256 values in 176 bytes: d: f16 @0, dmin: f16 @2, scales[12] @4, qh[32] @16, qs[128] @48.
/// As Q4_K, with a 5th bit: value l of sub-block s (0..8) adds 16 when bit s of qh[l] is set.
/// y = (d·sc)·q − (dmin·m).
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for g in 0..4 {
        let q = &qs[32 * g..32 * g + 32];
        let y = &mut y[64 * g..64 * g + 64];
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            let h1 = ((qh[l] >> (2 * g)) & 1) << 4;
            let h2 = ((qh[l] >> (2 * g + 1)) & 1) << 4;
            y[l] = d1 * ((q[l] & 0xF) | h1) as f32 - min1;
            y[l + 32] = d2 * ((q[l] >> 4) | h2) as f32 - min2;
        }
    }
}

/// Q6_K, 256 values in 210 bytes: ql[128] @0, qh[64] @128, scales: i8[16] @192, d: f16 @208 (last).
/// Half h < 2 is values 128h..128h+128 from ql[64h..], qh[32h..]; for l < 32 (ql, qh of the half):
///   y[l]    = (ql[l] & 0xF)    | (qh[l] & 3) << 4        y[l+64] = (ql[l] >> 4)    | (qh[l] >> 4 & 3) << 4
///   y[l+32] = (ql[l+32] & 0xF) | (qh[l] >> 2 & 3) << 4   y[l+96] = (ql[l+32] >> 4) | (qh[l] >> 6 & 3) << 4
/// each q − 32, times d·scales[i / 16] for value i of the block.
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let d = f16_at(b, 208);
    for h in 0..2 {
        let ql = &b[64 * h..64 * h + 64];
        let qh = &b[128 + 32 * h..128 + 32 * h + 32];
        let scales = &b[192 + 8 * h..192 + 8 * h + 8];
        let y = &mut y[128 * h..128 * h + 128];
        for l in 0..32 {
            let q = [
                (ql[l] & 0xF) | (qh[l] & 3) << 4,
                (ql[l + 32] & 0xF) | (qh[l] >> 2 & 3) << 4,
                (ql[l] >> 4) | (qh[l] >> 4 & 3) << 4,
                (ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4,
            ];
            for (k, q) in q.into_iter().enumerate() {
                // Scale index within the half: (32k + l) / 16.
                let sc = scales[2 * k + l / 16] as i8;
                y[32 * k + l] = d * sc as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_name_supported_and_refused_types() {
        for ty in SUPPORTED {
            assert_eq!(GgmlType::from_id(ty.id()), Ok(ty));
        }
        assert_eq!(GgmlType::from_id(12).unwrap().name(), "Q4_K");
        assert_eq!(GgmlType::from_id(30), Ok(GgmlType::BF16));
        assert_eq!(
            GgmlType::from_id(10),
            Err("tensor type Q2_K (id 10) is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, \
                 Q5_K, Q6_K are)"
                .to_string())
        );
        assert!(GgmlType::from_id(16).unwrap_err().starts_with("tensor type IQ2_XXS (id 16) is not supported"));
        assert_eq!(GgmlType::from_id(99), Err("unknown tensor type id 99".to_string()));
        assert_eq!(GgmlType::from_id(u32::MAX), Err(format!("unknown tensor type id {}", u32::MAX)));
    }

    #[test]
    fn sizes_refuse_partial_blocks_and_overflow() {
        assert_eq!(GgmlType::Q4_K.bytes_for(512), Some(288));
        assert_eq!(GgmlType::Q8_0.bytes_for(0), Some(0));
        assert_eq!(GgmlType::BF16.bytes_for(3), Some(6));
        assert_eq!(GgmlType::Q4_K.bytes_for(255), None);
        assert_eq!(GgmlType::Q4_0.bytes_for(33), None);
        // Only types with more bytes than values per block can overflow: the floats and Q8_0.
        assert_eq!(GgmlType::F32.bytes_for(u64::MAX), None);
        assert_eq!(GgmlType::BF16.bytes_for(u64::MAX / 2 + 1), None);
        assert_eq!(GgmlType::Q6_K.bytes_for(u64::MAX / 256 * 256), Some(u64::MAX / 256 * 210));
        // Q8_0's last size that fits: blocks × 34 ≤ u64::MAX.
        let blocks = u64::MAX / 34;
        assert_eq!(GgmlType::Q8_0.bytes_for(blocks * 32), Some(blocks * 34));
        assert_eq!(GgmlType::Q8_0.bytes_for((blocks + 1) * 32), None);
    }

    #[test]
    fn q8_0_block_by_hand() {
        let mut b = [0u8; 34];
        b[0..2].copy_from_slice(&0x3800u16.to_le_bytes()); // f16 0.5
        let qs: [i8; 32] = std::array::from_fn(|j| [-128, -1, 0, 1, 127, 3, -7, 100][j % 8]);
        for (dst, q) in b[2..].iter_mut().zip(qs) {
            *dst = q as u8;
        }
        let mut y = [0f32; 32];
        dequantize(GgmlType::Q8_0, &b, &mut y);
        let want: [f32; 8] = [-64.0, -0.5, 0.0, 0.5, 63.5, 1.5, -3.5, 50.0];
        for j in 0..32 {
            assert_eq!(y[j], want[j % 8], "value {j}");
        }
    }

    #[test]
    fn q4_0_block_by_hand() {
        // d = 2; byte j holds low nibble j and high nibble 15 − j.
        let mut b = [0u8; 18];
        b[0..2].copy_from_slice(&0x4000u16.to_le_bytes()); // f16 2.0
        for j in 0..16 {
            b[2 + j] = j as u8 | ((15 - j as u8) << 4);
        }
        let mut y = [0f32; 32];
        dequantize(GgmlType::Q4_0, &b, &mut y);
        // Low nibbles first: (j − 8)·2; then the high nibbles: (15 − j − 8)·2.
        let want: Vec<f32> =
            (0..16).map(|j| (j - 8) as f32 * 2.0).chain((0..16).map(|j| (7 - j) as f32 * 2.0)).collect();
        assert_eq!(y.to_vec(), want);
        assert_eq!(y[0], -16.0);
        assert_eq!(y[16], 14.0);
    }

    #[test]
    fn parallel_tasks_decode_as_one_pass() {
        // 2.5 tasks' worth of Q6_K, so the split has a partial last task.
        let blocks = TASK_ELEMENTS / 256 * 5 / 2;
        let data: Vec<u8> = (0..blocks * 210).map(|i| (i * 7 + i / 210) as u8).collect();
        let mut par = vec![0f32; blocks * 256];
        dequantize(GgmlType::Q6_K, &data, &mut par);
        let mut serial = vec![0f32; blocks * 256];
        decode(GgmlType::Q6_K, &data, &mut serial);
        assert!(par.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    #[should_panic(expected = "cannot decode")]
    fn mismatched_lengths_panic() {
        dequantize(GgmlType::Q4_0, &[0u8; 18], &mut [0f32; 64]);
    }
}
