//! JPEG and PNG images (radiographs exported from a CR console, photographed films, screenshots).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

use crate::error::{ImagingError, within};
use crate::limits::Limits;
use crate::pixels::{Frames, Samples};

pub fn format_of(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Jpeg | ImageFormat::Png) => Some(f),
        _ => None,
    }
}

/// Memory that decoding the JPEG or PNG takes at its peak, bytes (the decoder's image and the frame made
/// from it), read from its header.
pub fn decode_memory(bytes: &[u8]) -> Result<u64, ImagingError> {
    let format = format_of(bytes).ok_or(ImagingError::UnknownFormat)?;
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    Ok(u64::from(w) * u64::from(h) * 8)
}

/// Decodes a JPEG or PNG under the limits. Grey images (including RGB files whose three channels are
/// equal, as most exported radiographs are) become one-sample frames with their stored values (0–255, or
/// 0–65535 for 16-bit PNG); colour images stay RGB.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Frames, ImagingError> {
    within("file bytes", bytes.len() as u64, limits.max_file_bytes)?;
    let format = format_of(bytes).ok_or(ImagingError::UnknownFormat)?;
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions().map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    within("rows × columns", u64::from(w) * u64::from(h), limits.max_frame_pixels)?;
    within("decoded pixel bytes", u64::from(w) * u64::from(h) * 4, limits.max_decoded_bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_decoded_bytes);
    reader.limits(image_limits);
    let image = reader.decode().map_err(|e| match e {
        // The header passed the checks above; the decoder's own allocation guard tripped anyway (a
        // progressive JPEG's coefficient buffers, say).
        image::ImageError::Limits(_) => ImagingError::TooLarge {
            what: "decoder memory (bytes)",
            value: u64::from(w) * u64::from(h) * 4,
            limit: limits.max_decoded_bytes,
        },
        e => ImagingError::Corrupt(e.to_string()),
    })?;
    let (rows, columns) = (h as usize, w as usize);
    let samples = match image {
        DynamicImage::ImageLuma8(g) => Samples::Gray(g.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageLuma16(g) => Samples::Gray(g.into_raw().into_iter().map(f32::from).collect()),
        other => {
            let rgb = other.to_rgb8().into_raw();
            if rgb.as_chunks::<3>().0.iter().all(|p| p[0] == p[1] && p[1] == p[2]) {
                Samples::Gray(rgb.as_chunks::<3>().0.iter().map(|p| f32::from(p[0])).collect())
            } else {
                Samples::Rgb(rgb)
            }
        }
    };
    Ok(Frames { rows, columns, count: 1, samples, inverted: false, padding: None })
}
