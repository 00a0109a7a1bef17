//! JPEG in DICOM (baseline, extended 12-bit, lossless process 14) through libjpeg-turbo 3's TurboJPEG API.

use std::ffi::CStr;

use turbojpeg_sys as tj;

use crate::error::ImagingError;

/// A TurboJPEG decompressor, destroyed on drop.
struct Decompressor(tj::tjhandle);

impl Decompressor {
    fn new() -> Result<Decompressor, ImagingError> {
        // SAFETY: tj3Init has no preconditions; a null handle is checked.
        let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
        if handle.is_null() {
            return Err(ImagingError::Corrupt("JPEG decoder could not start".into()));
        }
        Ok(Decompressor(handle))
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: valid handle; unknown params return −1.
        unsafe { tj::tj3Get(self.0, param as i32) }
    }

    fn error(&self) -> ImagingError {
        // SAFETY: valid handle; the string is owned by the handle and copied here.
        let msg = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }.to_string_lossy().into_owned();
        ImagingError::Corrupt(format!("JPEG: {msg}"))
    }
}

/// The three stored components of a full-resolution colour JPEG, interleaved, without colour conversion.
fn raw_components(d: &Decompressor, jpeg: &[u8], pixels: usize, out: &mut Vec<u8>) -> Result<(), ImagingError> {
    let mut planes = [vec![0u8; pixels], vec![0u8; pixels], vec![0u8; pixels]];
    let mut pointers = planes.each_mut().map(|p| p.as_mut_ptr());
    // SAFETY: three planes of rows × columns bytes (4:4:4 checked by the caller), strides 0 = packed.
    let status = unsafe {
        tj::tj3DecompressToYUVPlanes8(
            d.0,
            jpeg.as_ptr(),
            jpeg.len() as tj::size_t,
            pointers.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(d.error());
    }
    let [a, b, c] = &planes;
    out.extend(a.iter().zip(b).zip(c).flat_map(|((a, b), c)| [*a, *b, *c]));
    Ok(())
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// Decodes one frame to native little-endian samples of `bytes_per_sample` bytes (1 or 2),
/// pixel-interleaved, appended to `out`. Colour: with `components_are_rgb` (PhotometricInterpretation RGB:
/// PS3.5 8.2.1 says the JPEG then holds R, G, B without a colour transform) the stored components come out
/// as they are, whatever libjpeg would guess from the markers; otherwise the JPEG's YCbCr is converted.
pub fn decode_frame(
    jpeg: &[u8],
    rows: usize,
    columns: usize,
    samples_per_pixel: usize,
    bytes_per_sample: usize,
    components_are_rgb: bool,
    out: &mut Vec<u8>,
) -> Result<(), ImagingError> {
    let d = Decompressor::new()?;
    // SAFETY: valid handle; the buffer is read within its length.
    if unsafe { tj::tj3DecompressHeader(d.0, jpeg.as_ptr(), jpeg.len() as tj::size_t) } != 0 {
        return Err(d.error());
    }
    let (w, h) = (d.get(tj::TJPARAM_TJPARAM_JPEGWIDTH) as usize, d.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT) as usize);
    if (w, h) != (columns, rows) {
        return Err(ImagingError::Corrupt(format!("JPEG frame is {w}×{h}, the header says {columns}×{rows}")));
    }
    let gray = d.get(tj::TJPARAM_TJPARAM_COLORSPACE) == tj::TJCS_TJCS_GRAY as i32;
    if gray != (samples_per_pixel == 1) {
        return Err(ImagingError::Corrupt(format!(
            "JPEG components do not match {samples_per_pixel} samples per pixel"
        )));
    }
    // (Lossless JPEG never colour-converts; libjpeg-turbo gives its components as they are.)
    let lossy_444 =
        d.get(tj::TJPARAM_TJPARAM_LOSSLESS) == 0 && d.get(tj::TJPARAM_TJPARAM_SUBSAMP) == tj::TJSAMP_TJSAMP_444;
    if !gray && components_are_rgb && bytes_per_sample == 1 && lossy_444 {
        return raw_components(&d, jpeg, rows * columns, out);
    }
    let format = if gray { tj::TJPF_TJPF_GRAY } else { tj::TJPF_TJPF_RGB };
    let n = rows * columns * samples_per_pixel;
    let precision = d.get(tj::TJPARAM_TJPARAM_PRECISION);
    if bytes_per_sample == 1 && precision > 8 {
        return Err(ImagingError::Corrupt(format!("{precision}-bit JPEG in 8-bit pixel data")));
    }
    let start = out.len();
    out.reserve(n * bytes_per_sample);
    // SAFETY (all three): the destination holds exactly rows × columns × samples of the requested width
    // and pitch 0 means tightly packed; the header above fixed the size the decoder will write.
    let status = match precision {
        2..=8 => {
            let mut buf = vec![0u8; n];
            let s = unsafe {
                tj::tj3Decompress8(d.0, jpeg.as_ptr(), jpeg.len() as tj::size_t, buf.as_mut_ptr(), 0, format)
            };
            match bytes_per_sample {
                1 => out.extend_from_slice(&buf),
                _ => out.extend(buf.iter().flat_map(|v| u16::from(*v).to_le_bytes())),
            }
            s
        }
        9..=12 => {
            let mut buf = vec![0i16; n];
            let s = unsafe {
                tj::tj3Decompress12(d.0, jpeg.as_ptr(), jpeg.len() as tj::size_t, buf.as_mut_ptr(), 0, format)
            };
            out.extend(buf.iter().flat_map(|v| (*v as u16).to_le_bytes()));
            s
        }
        13..=16 => {
            let mut buf = vec![0u16; n];
            let s = unsafe {
                tj::tj3Decompress16(d.0, jpeg.as_ptr(), jpeg.len() as tj::size_t, buf.as_mut_ptr(), 0, format)
            };
            out.extend(buf.iter().flat_map(|v| v.to_le_bytes()));
            s
        }
        p => return Err(ImagingError::Unsupported(format!("JPEG sample precision {p}"))),
    };
    if status != 0 {
        out.truncate(start);
        return Err(d.error());
    }
    Ok(())
}
