//! RLE Lossless (PS3.5 Annex G), decoded here rather than by dicom-rs 0.10, whose RLE reader fails on
//! 32-bit multi-frame data (pydicom's rtdose_rle.dcm). The format is small enough to own.

use crate::error::ImagingError;

/// Decodes one frame (one fragment, PS3.5 A.4.2) into native little-endian samples, pixel-interleaved
/// (colour-by-pixel) whatever the file's planar configuration says.
pub fn decode_frame(
    fragment: &[u8],
    pixels: usize,
    samples_per_pixel: usize,
    bytes_per_sample: usize,
    out: &mut Vec<u8>,
) -> Result<(), ImagingError> {
    let corrupt = |what: &str| ImagingError::Corrupt(format!("RLE frame: {what}"));
    // G.5: a 64-byte header of sixteen u32: the number of segments, then up to fifteen offsets.
    let header = fragment.get(..64).ok_or_else(|| corrupt("no header"))?;
    let word = |i: usize| u32::from_le_bytes(header[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
    let segments = word(0);
    if segments != samples_per_pixel * bytes_per_sample || segments > 15 {
        return Err(corrupt(&format!("{segments} segments for {samples_per_pixel} × {bytes_per_sample}-byte samples")));
    }
    let start = out.len();
    out.resize(start + pixels * segments, 0);
    let frame = &mut out[start..];
    for seg in 0..segments {
        let from = word(1 + seg);
        let to = if seg + 1 < segments { word(2 + seg) } else { fragment.len() };
        let data = fragment.get(from..to.max(from)).ok_or_else(|| corrupt("segment offset past the end"))?;
        // Segment order: sample by sample, most significant byte first (G.2).
        let (sample, byte_from_msb) = (seg / bytes_per_sample, seg % bytes_per_sample);
        let byte_in_le = bytes_per_sample - 1 - byte_from_msb;
        let stride = segments;
        let offset = sample * bytes_per_sample + byte_in_le;
        let bytes =
            unpack_bits(data, pixels).ok_or_else(|| corrupt(&format!("segment {} is short or overruns", seg + 1)))?;
        for (i, b) in bytes.into_iter().enumerate() {
            frame[i * stride + offset] = b;
        }
    }
    Ok(())
}

/// G.3.1 PackBits, exactly `len` bytes: n in 0..=127 copies n+1 bytes, −127..=−1 repeats the next byte
/// 1−n times, −128 does nothing. None if the segment ends early; extra output (padding) is dropped.
fn unpack_bits(data: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let n = *data.get(i)? as i8;
        i += 1;
        if n >= 0 {
            let run = data.get(i..i + n as usize + 1)?;
            out.extend_from_slice(run);
            i += run.len();
        } else if n != -128 {
            let b = *data.get(i)?;
            out.extend(std::iter::repeat_n(b, (1 - isize::from(n)) as usize));
            i += 1;
        }
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_3_1_packbits_literal_and_repeat_runs() {
        // One 8-bit segment: literal [1, 2, 3], then 5 repeated 4 times, then a no-op.
        let mut frag = vec![0u8; 64];
        frag[0] = 1;
        frag[4] = 64;
        frag.extend([2, 1, 2, 3, (-3i8) as u8, 5, 0x80]);
        let mut out = Vec::new();
        decode_frame(&frag, 7, 1, 1, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 5, 5, 5, 5]);
    }

    #[test]
    fn short_segments_are_corrupt_not_a_panic() {
        let mut frag = vec![0u8; 64];
        frag[0] = 1;
        frag[4] = 64;
        frag.extend([5, 1, 2]);
        assert_eq!(decode_frame(&frag, 6, 1, 1, &mut Vec::new()).unwrap_err().code(), "corrupt");
    }
}
