//! Window centre/width to display values: the linear VOI LUT function of DICOM PS3.3 C.11.2.1.2.1.

use serde::{Deserialize, Serialize};

/// A VOI window in modality units (HU on CT).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

/// A named window for the viewer's preset buttons and the report's measurement basis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Preset {
    pub key: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub window: Window,
}

/// The usual chest presets (centre/width in HU).
pub const CHEST_PRESETS: [Preset; 4] = [
    Preset { key: "lung", name_zh: "肺窗", name_en: "Lung", window: Window { center: -600.0, width: 1500.0 } },
    Preset {
        key: "mediastinum",
        name_zh: "纵隔窗",
        name_en: "Mediastinum",
        window: Window { center: 40.0, width: 350.0 },
    },
    Preset { key: "bone", name_zh: "骨窗", name_en: "Bone", window: Window { center: 480.0, width: 2500.0 } },
    Preset {
        key: "soft_tissue",
        name_zh: "软组织窗",
        name_en: "Soft tissue",
        window: Window { center: 40.0, width: 400.0 },
    },
];

impl Window {
    /// The window covering `[min, max]`, for images without a window of their own.
    pub fn full_range(min: f64, max: f64) -> Window {
        Window { center: (min + max) / 2.0, width: (max - min).max(1.0) + 1.0 }
    }

    /// PS3.3 C.11.2.1.2.1, output range 0..=255:
    ///   x ≤ c − 0.5 − (w−1)/2 → 0;  x > c − 0.5 + (w−1)/2 → 255;
    ///   else y = ((x − (c − 0.5)) / (w−1) + 0.5) × 255.
    /// Width below 1 is not allowed by the standard; it is treated as 1 (a threshold at the centre).
    pub fn to_u8(&self, x: f64) -> u8 {
        let w = self.width.max(1.0);
        let c = self.center - 0.5;
        let half = (w - 1.0) / 2.0;
        if x <= c - half {
            0
        } else if x > c + half || w <= 1.0 {
            // Above the window, or the centre threshold of a width-1 window.
            255
        } else {
            (((x - c) / (w - 1.0) + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8
        }
    }

    /// Windows a whole frame; `invert` for MONOCHROME1 (higher values darker) or the viewer's invert button.
    pub fn apply(&self, values: &[f32], invert: bool, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(values.len());
        // One division per pixel is the hot loop of client-side window dragging: precompute the line.
        let w = self.width.max(1.0);
        let c = self.center - 0.5;
        let lo = c - (w - 1.0) / 2.0;
        let hi = c + (w - 1.0) / 2.0;
        let scale = if w > 1.0 { 255.0 / (w - 1.0) } else { 0.0 };
        let offset = 127.5 - c * scale;
        out.extend(values.iter().map(|&v| {
            let x = f64::from(v);
            let y = if x <= lo {
                0
            } else if x > hi || w <= 1.0 {
                255
            } else {
                (x * scale + offset).round().clamp(0.0, 255.0) as u8
            };
            if invert { 255 - y } else { y }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A window of centre 2048 and width 4096 spans a 12-bit image exactly: 0 → black, 4095 → white.
    #[test]
    fn c_11_2_1_2_1_center_2048_width_4096_spans_12_bits() {
        let w = Window { center: 2048.0, width: 4096.0 };
        assert_eq!(w.to_u8(0.0), 0);
        assert_eq!(w.to_u8(4095.0), 255);
        assert_eq!(w.to_u8(2047.5), 128); // the middle of the line, rounded half up
    }

    #[test]
    fn c_11_2_1_2_1_width_one_is_a_threshold_at_the_center() {
        let w = Window { center: 100.0, width: 1.0 };
        assert_eq!(w.to_u8(99.5), 0);
        assert_eq!(w.to_u8(99.6), 255);
    }

    #[test]
    fn lung_window_edges_in_hu() {
        let lung = CHEST_PRESETS[0].window;
        assert_eq!(lung.to_u8(-1350.5), 0); // c − 0.5 − (w−1)/2 = −1350.0 → still 0 at −1350.5
        assert_eq!(lung.to_u8(-1350.0), 0);
        assert_eq!(lung.to_u8(149.0), 255);
        assert_eq!(lung.to_u8(-600.5), 128);
    }

    #[test]
    fn apply_matches_the_per_pixel_definition_and_inverts() {
        let w = Window { center: 40.0, width: 350.0 };
        let values: Vec<f32> = (-400..400).map(|v| v as f32 + 0.25).collect();
        let mut out = Vec::new();
        w.apply(&values, false, &mut out);
        for (v, y) in values.iter().zip(&out) {
            assert_eq!(*y, w.to_u8(f64::from(*v)), "at {v}");
        }
        let mut inverted = Vec::new();
        w.apply(&values, true, &mut inverted);
        assert!(out.iter().zip(&inverted).all(|(a, b)| *a == 255 - *b));
    }

    #[test]
    fn full_range_spans_min_to_max() {
        let w = Window::full_range(-1024.0, 3071.0);
        assert_eq!(w.to_u8(-1024.0), 0);
        assert_eq!(w.to_u8(3071.0), 255);
    }
}
