//! The image as MedGemma sees it, and the way back: heatmaps and boxes come in model coordinates and must
//! land on the radiologist's pixels.
//!
//! Chest X-ray: the file's window (or the full range), grey to RGB, padded to a square, resized.
//! CT, per Google's MedGemma CT recipe: three HU windows as R, G, B (−1024…1024, −135…215, 0…80), up to
//! 85 evenly spaced slices.

use image::{RgbImage, imageops::FilterType};
use measure::{Point, window::Window};
use serde::{Deserialize, Serialize};

use crate::pixels::{Frames, Samples};

/// Square model-input image and the mapping back to the original.
pub struct ModelImage {
    pub rgb: RgbImage,
    pub transform: ImageTransform,
}

/// original → model: scale, then shift by the padding. Padding is split evenly (the image is centred).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageTransform {
    pub original_columns: u32,
    pub original_rows: u32,
    /// Side of the square model image.
    pub size: u32,
    /// Model pixels per original pixel.
    pub scale: f64,
    /// Padding added left and top, in model pixels.
    pub pad_x: f64,
    pub pad_y: f64,
}

impl ImageTransform {
    /// A point in model pixels (continuous coordinates, 0 at the top-left corner) to original pixel
    /// centres.
    pub fn to_original(&self, x: f64, y: f64) -> Point {
        Point::new((x - self.pad_x) / self.scale - 0.5, (y - self.pad_y) / self.scale - 0.5)
    }

    /// A MedGemma box `[y0, x0, y1, x1]` normalized to 0–1000 over the model image, as its two corners
    /// in original pixels, clamped to the image.
    pub fn box_1000_to_original(&self, b: [f64; 4]) -> [Point; 2] {
        let s = f64::from(self.size) / 1000.0;
        let clamp = |p: Point| {
            Point::new(
                p.x.clamp(-0.5, f64::from(self.original_columns) - 0.5),
                p.y.clamp(-0.5, f64::from(self.original_rows) - 0.5),
            )
        };
        [clamp(self.to_original(b[1] * s, b[0] * s)), clamp(self.to_original(b[3] * s, b[2] * s))]
    }

    /// Cell (`row`, `col`) of a `side` × `side` grid over the model image (MedGemma's soft tokens: 16 × 16)
    /// as `[x0, y0, x1, y1]` in original pixel-edge coordinates (0 is the image's left or top edge,
    /// `original_columns` its right edge), cut to the image; None for a cell wholly in the padding.
    pub fn cell_to_original(&self, side: u32, row: u32, col: u32) -> Option<[f64; 4]> {
        let cell = f64::from(self.size) / f64::from(side);
        let x = |m: f64| ((m - self.pad_x) / self.scale).clamp(0.0, f64::from(self.original_columns));
        let y = |m: f64| ((m - self.pad_y) / self.scale).clamp(0.0, f64::from(self.original_rows));
        let rect = [
            x(f64::from(col) * cell),
            y(f64::from(row) * cell),
            x(f64::from(col + 1) * cell),
            y(f64::from(row + 1) * cell),
        ];
        (rect[2] > rect[0] && rect[3] > rect[1]).then_some(rect)
    }
}

/// One frame as MedGemma sees it: CT through the three HU windows; other grey images through the file's
/// first window (or the frame's full range), MONOCHROME1 inverted; colour as stored. None if `index` is
/// past the last frame.
pub fn for_frame(
    frames: &Frames,
    index: usize,
    modality: Option<&str>,
    file_windows: &[Window],
    size: u32,
) -> Option<ModelImage> {
    let (columns, rows) = (frames.columns as u32, frames.rows as u32);
    match &frames.samples {
        Samples::Gray(_) => {
            let values = frames.gray_frame(index)?;
            if modality == Some("CT") {
                return Some(ct_slice(values, columns, rows, size));
            }
            let window = crate::render::default_window(frames, index, file_windows)?;
            Some(chest_xray(values, columns, rows, window, frames.inverted, size))
        }
        Samples::Rgb(_) => Some(color(frames.rgb_frame(index)?, columns, rows, size)),
    }
}

/// A grey radiograph frame windowed to 8 bits (MONOCHROME1 inverted), padded to a square with black and
/// resized to `size`.
pub fn chest_xray(values: &[f32], columns: u32, rows: u32, window: Window, inverted: bool, size: u32) -> ModelImage {
    let mut grey = Vec::new();
    window.apply(values, inverted, &mut grey);
    let rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    square(RgbImage::from_raw(columns, rows, rgb).expect("sizes match"), size)
}

/// A colour image padded and resized.
pub fn color(rgb: &[u8], columns: u32, rows: u32, size: u32) -> ModelImage {
    square(RgbImage::from_raw(columns, rows, rgb.to_vec()).expect("sizes match"), size)
}

/// The CT windows of Google's MedGemma CT recipe, (lowest, highest) HU, as R, G and B.
pub const CT_WINDOWS_HU: [(f64, f64); 3] = [(-1024.0, 1024.0), (-135.0, 215.0), (0.0, 80.0)];

/// At most this many slices go to the model.
pub const CT_MAX_SLICES: usize = 85;

/// Indices of up to `max` slices evenly spaced over `count`, first and last included.
pub fn ct_slice_indices(count: usize, max: usize) -> Vec<usize> {
    if count <= max {
        return (0..count).collect();
    }
    (0..max).map(|i| ((i as f64) * (count - 1) as f64 / (max - 1) as f64).round() as usize).collect()
}

/// One CT slice in HU as an RGB image of the three windows, padded and resized.
pub fn ct_slice(hu: &[f32], columns: u32, rows: u32, size: u32) -> ModelImage {
    let rgb: Vec<u8> = hu
        .iter()
        .flat_map(|&v| {
            CT_WINDOWS_HU.map(|(lo, hi)| ((f64::from(v).clamp(lo, hi) - lo) / (hi - lo) * 255.0).round() as u8)
        })
        .collect();
    square(RgbImage::from_raw(columns, rows, rgb).expect("sizes match"), size)
}

/// Resized so the long side is `size`, then centred on a black `size`×`size` square. (Padding first
/// would allocate a square of the original's long side: 14 000² for a long-leg film.)
fn square(img: RgbImage, size: u32) -> ModelImage {
    let (w, h) = img.dimensions();
    let scale = f64::from(size) / f64::from(w.max(h));
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, size);
    let (nw, nh) = (fit(w), fit(h));
    let resized = if (nw, nh) == (w, h) { img } else { image::imageops::resize(&img, nw, nh, FilterType::Triangle) };
    let (pad_x, pad_y) = ((size - nw) / 2, (size - nh) / 2);
    let mut rgb = RgbImage::new(size, size);
    image::imageops::replace(&mut rgb, &resized, i64::from(pad_x), i64::from(pad_y));
    let transform = ImageTransform {
        original_columns: w,
        original_rows: h,
        size,
        scale,
        pad_x: f64::from(pad_x),
        pad_y: f64::from(pad_y),
    };
    ModelImage { rgb, transform }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_cells_land_on_the_original_pixels_they_covered() {
        // 300 × 200 → scale 2 into 600 × 600, 100 rows of padding above and below; a 4 × 4 grid has
        // 150-pixel cells, i.e. 75 original pixels.
        let t = chest_xray(&vec![0.0; 300 * 200], 300, 200, Window::full_range(0.0, 1.0), false, 600).transform;
        assert_eq!(t.cell_to_original(4, 0, 0), Some([0.0, 0.0, 75.0, 25.0]), "partly padding: cut at the top");
        // On an 8 × 8 grid (75-pixel cells) the top row (model y 0..75, original −50..−12.5) is padding only.
        assert_eq!(t.cell_to_original(8, 0, 2), None);
        // Row 1 spans model y 150..300 = original (150−100)/2 .. (300−100)/2 = 25..100.
        assert_eq!(t.cell_to_original(4, 1, 0), Some([0.0, 25.0, 75.0, 100.0]));
        assert_eq!(t.cell_to_original(4, 2, 3), Some([225.0, 100.0, 300.0, 175.0]));
        // Row 3 spans model 450..600 = original 175..250, cut at the bottom edge (200).
        assert_eq!(t.cell_to_original(4, 3, 1), Some([75.0, 175.0, 150.0, 200.0]));
        // The cells that lie on the image tile it exactly.
        let area: f64 = (0..4)
            .flat_map(|r| (0..4).map(move |c| (r, c)))
            .filter_map(|(r, c)| t.cell_to_original(4, r, c))
            .map(|[x0, y0, x1, y1]| (x1 - x0) * (y1 - y0))
            .sum();
        assert_eq!(area, 300.0 * 200.0);
    }

    #[test]
    fn a_point_maps_back_through_padding_and_scale() {
        // 300 wide × 200 high → resized to 600 × 400 (scale 2), centred on 600 × 600: pad_y 100.
        let t = chest_xray(&vec![0.0; 300 * 200], 300, 200, Window::full_range(0.0, 1.0), false, 600).transform;
        assert_eq!((t.scale, t.pad_x, t.pad_y), (2.0, 0.0, 100.0));
        // The centre of original pixel (10, 20) is at model (21, 141).
        let p = t.to_original(21.0, 141.0);
        assert!((p.x - 10.0).abs() < 1e-12 && (p.y - 20.0).abs() < 1e-12);
        // The whole model image as a box maps to the image itself (clamped through the padding).
        let [a, b] = t.box_1000_to_original([0.0, 0.0, 1000.0, 1000.0]);
        assert_eq!((a.x, a.y, b.x, b.y), (-0.5, -0.5, 299.5, 199.5));
    }

    #[test]
    fn a_bright_square_lands_where_the_transform_says() {
        // 40 wide × 20 high, a white pixel block at columns 30..34, rows 4..8.
        let (w, h) = (40u32, 20u32);
        let values: Vec<f32> = (0..w * h)
            .map(|i| if (30..34).contains(&(i % w)) && (4..8).contains(&(i / w)) { 1000.0 } else { 0.0 })
            .collect();
        let m = chest_xray(&values, w, h, Window::full_range(0.0, 1000.0), false, 80);
        assert_eq!(m.rgb.dimensions(), (80, 80));
        // Brightest model pixel maps back inside the block.
        let (mut best, mut at) = (0u8, (0u32, 0u32));
        for (x, y, p) in m.rgb.enumerate_pixels() {
            if p[0] > best {
                (best, at) = (p[0], (x, y));
            }
        }
        let back = m.transform.to_original(f64::from(at.0) + 0.5, f64::from(at.1) + 0.5);
        assert!((29.5..34.5).contains(&back.x) && (3.5..8.5).contains(&back.y), "{back:?}");
    }

    #[test]
    fn a_long_thin_image_is_scaled_before_it_is_padded() {
        // 1 × 60 000 pixels: padding first would allocate a 60 000² square.
        let m = chest_xray(&vec![100.0; 60_000], 1, 60_000, Window::full_range(0.0, 200.0), false, 64);
        assert_eq!(m.rgb.dimensions(), (64, 64));
        assert_eq!((m.transform.pad_x, m.transform.pad_y), (31.0, 0.0));
    }

    #[test]
    fn ct_windows_and_slices() {
        let m = ct_slice(&[-1024.0, 0.0, 40.0, 3000.0], 2, 2, 2);
        assert_eq!(m.rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(m.rgb.get_pixel(1, 0).0, [128, 98, 0]); // 0 HU: (1024/2048, 135/350, 0/80)
        assert_eq!(m.rgb.get_pixel(0, 1).0, [132, 128, 128]); // 40 HU: (1064/2048, 175/350, 40/80)
        assert_eq!(m.rgb.get_pixel(1, 1).0, [255, 255, 255]);
        assert_eq!(ct_slice_indices(3, 85), vec![0, 1, 2]);
        let picked = ct_slice_indices(300, 85);
        assert_eq!((picked.len(), picked[0], picked[84]), (85, 0, 299));
    }
}
