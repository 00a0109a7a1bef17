//! Frames to 8-bit PNG for the viewer's first paint, thumbnails and `medgemma-x dicom render`.

use std::io::Cursor;

use image::{GrayImage, RgbImage, imageops::FilterType};
use measure::window::Window;

use crate::error::ImagingError;
use crate::pixels::{Frames, Samples};

#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    pub frame: usize,
    /// None: the file's first window, else the frame's full range.
    pub window: Option<Window>,
    /// Invert on top of MONOCHROME1's own inversion (the viewer's invert button).
    pub invert: bool,
    /// Longest side of the output; larger images are scaled down (aspect kept).
    pub max_side: Option<u32>,
}

/// The window a frame is shown with when none is asked for: the file's first, else the full range.
pub fn default_window(frames: &Frames, frame: usize, file_windows: &[Window]) -> Option<Window> {
    file_windows
        .first()
        .copied()
        .or_else(|| frames.range(frame).map(|(lo, hi)| Window::full_range(f64::from(lo), f64::from(hi))))
}

/// 8-bit pixels of one frame: grey through the window (PS3.3 C.11.2.1.2.1, MONOCHROME1 inverted), colour
/// as stored.
pub fn to_8bit(
    frames: &Frames,
    options: &RenderOptions,
    file_windows: &[Window],
) -> Result<image::DynamicImage, ImagingError> {
    let (w, h) = (frames.columns as u32, frames.rows as u32);
    let out_of_range = || ImagingError::Unsupported(format!("frame {} of {}", options.frame + 1, frames.count));
    let image = match &frames.samples {
        Samples::Gray(_) => {
            let values = frames.gray_frame(options.frame).ok_or_else(out_of_range)?;
            // No default window only for a frame without pixels, where any window draws the same nothing.
            let window = options
                .window
                .or_else(|| default_window(frames, options.frame, file_windows))
                .unwrap_or(Window { center: 0.0, width: 1.0 });
            let mut bytes = Vec::new();
            window.apply(values, frames.inverted != options.invert, &mut bytes);
            image::DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, bytes).expect("sizes match"))
        }
        Samples::Rgb(_) => {
            let rgb = frames.rgb_frame(options.frame).ok_or_else(out_of_range)?.to_vec();
            let mut img = RgbImage::from_raw(w, h, rgb).expect("sizes match");
            if options.invert {
                image::imageops::invert(&mut img);
            }
            image::DynamicImage::ImageRgb8(img)
        }
    };
    Ok(match options.max_side {
        Some(side) if w.max(h) > side => {
            let scale = f64::from(side) / f64::from(w.max(h));
            let (nw, nh) =
                (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
            image.resize_exact(nw, nh, FilterType::Triangle)
        }
        _ => image,
    })
}

pub fn png(image: &image::DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding into memory cannot fail");
    out.into_inner()
}
