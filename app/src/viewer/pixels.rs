//! A frame's raw values as the server sends them (`/frames/{n}/values`), windowed into RGBA for the
//! canvas. Pure Rust, so the same code is tested natively and runs in the browser.

use measure::roi::Frame;
use measure::window::Window;

/// One frame's samples.
#[derive(Debug, PartialEq)]
pub enum Samples {
    /// Modality values (HU on CT). `small` holds them again as i16 when every value is a whole number in
    /// range: windowing then goes through a 65 536-entry table, one lookup per pixel.
    Gray {
        values: Vec<f32>,
        small: Option<Vec<i16>>,
        min: f32,
        max: f32,
    },
    Rgb(Vec<u8>),
}

#[derive(Debug, PartialEq)]
pub struct Pixels {
    pub columns: usize,
    pub rows: usize,
    pub samples: Samples,
    /// The window the server renders with by default (`x-window-center/width`).
    pub default_window: Option<Window>,
    /// MONOCHROME1: higher values are darker.
    pub inverted: bool,
}

impl Pixels {
    /// Reads the body of the values endpoint; `format` is its `x-sample-format` header.
    pub fn parse(format: &str, columns: usize, rows: usize, bytes: &[u8]) -> Result<Samples, String> {
        let n = columns.checked_mul(rows).ok_or("image size overflows")?;
        let expect = |per: usize| {
            if bytes.len() == n * per {
                Ok(())
            } else {
                Err(format!("{} bytes for {columns}×{rows} {format} samples", bytes.len()))
            }
        };
        match format {
            "i16" => {
                expect(2)?;
                let small: Vec<i16> = bytes.as_chunks::<2>().0.iter().map(|b| i16::from_le_bytes(*b)).collect();
                let values: Vec<f32> = small.iter().map(|&v| f32::from(v)).collect();
                let (min, max) = range(&values);
                Ok(Samples::Gray { values, small: Some(small), min, max })
            }
            "f32" => {
                expect(4)?;
                let values: Vec<f32> = bytes.as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect();
                let (min, max) = range(&values);
                Ok(Samples::Gray { values, small: None, min, max })
            }
            "rgb8" => {
                expect(3)?;
                Ok(Samples::Rgb(bytes.to_vec()))
            }
            other => Err(format!("unknown sample format {other}")),
        }
    }

    /// The window shown first: the server's default, else the full range of the values.
    pub fn initial_window(&self) -> Option<Window> {
        match &self.samples {
            Samples::Gray { min, max, .. } => {
                self.default_window.or(Some(Window::full_range(f64::from(*min), f64::from(*max))))
            }
            Samples::Rgb(_) => None,
        }
    }

    /// The values as a measurable frame (HU probe, ellipse ROI); None for colour.
    pub fn frame(&self) -> Option<Frame<'_>> {
        match &self.samples {
            Samples::Gray { values, .. } => Some(Frame { values, columns: self.columns, rows: self.rows }),
            Samples::Rgb(_) => None,
        }
    }

    /// The spread of the values, which sets how fast a drag changes the window.
    pub fn value_span(&self) -> f64 {
        match &self.samples {
            Samples::Gray { min, max, .. } => f64::from(max - min).max(1.0),
            Samples::Rgb(_) => 255.0,
        }
    }

    /// RGBA bytes for the canvas through `window`; `invert` is the viewer's button (MONOCHROME1 is
    /// inverted on top). `out` is reused between calls: dragging the window allocates nothing.
    pub fn render(&self, window: Window, invert: bool, out: &mut Vec<u8>) {
        out.resize(self.columns * self.rows * 4, 255);
        match &self.samples {
            Samples::Gray { small: Some(small), .. } => {
                let lut = lut_i16(window, invert != self.inverted);
                for (px, &v) in out.as_chunks_mut::<4>().0.iter_mut().zip(small) {
                    let g = lut[(i32::from(v) + 32768) as usize];
                    *px = [g, g, g, 255];
                }
            }
            Samples::Gray { values, small: None, .. } => {
                let mut grey = Vec::new();
                window.apply(values, invert != self.inverted, &mut grey);
                for (px, g) in out.as_chunks_mut::<4>().0.iter_mut().zip(grey) {
                    *px = [g, g, g, 255];
                }
            }
            Samples::Rgb(rgb) => {
                for (px, [r, g, b]) in out.as_chunks_mut::<4>().0.iter_mut().zip(rgb.as_chunks::<3>().0) {
                    *px = if invert { [255 - r, 255 - g, 255 - b, 255] } else { [*r, *g, *b, 255] };
                }
            }
        }
    }
}

fn range(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo <= hi { (lo, hi) } else { (0.0, 0.0) }
}

/// Every i16 through the window, by the same arithmetic as [`Window::apply`] (tested equal).
fn lut_i16(window: Window, invert: bool) -> Vec<u8> {
    let all: Vec<f32> = (i16::MIN..=i16::MAX).map(f32::from).collect();
    let mut lut = Vec::with_capacity(all.len());
    window.apply(&all, invert, &mut lut);
    lut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(values: &[i16], columns: usize, rows: usize) -> Pixels {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Pixels {
            columns,
            rows,
            samples: Pixels::parse("i16", columns, rows, &bytes).unwrap(),
            default_window: None,
            inverted: false,
        }
    }

    #[test]
    fn the_table_path_draws_what_window_apply_draws() {
        let values: Vec<i16> = (-2000..2000).step_by(7).collect();
        let pixels = ct(&values, values.len(), 1);
        let as_f32: Vec<f32> = values.iter().map(|&v| f32::from(v)).collect();
        for window in [Window { center: -600.0, width: 1500.0 }, Window { center: 40.0, width: 1.0 }] {
            for invert in [false, true] {
                let mut rgba = Vec::new();
                pixels.render(window, invert, &mut rgba);
                let mut expected = Vec::new();
                window.apply(&as_f32, invert, &mut expected);
                let grey: Vec<u8> = rgba.as_chunks::<4>().0.iter().map(|p| p[0]).collect();
                assert_eq!(grey, expected, "{window:?} invert {invert}");
                assert!(rgba.as_chunks::<4>().0.iter().all(|p| p[0] == p[1] && p[1] == p[2] && p[3] == 255));
            }
        }
    }

    #[test]
    fn monochrome1_is_inverted_and_the_button_inverts_it_back() {
        let mut pixels = ct(&[0, 4095], 2, 1);
        pixels.inverted = true;
        let window = Window { center: 2048.0, width: 4096.0 };
        let mut rgba = Vec::new();
        pixels.render(window, false, &mut rgba);
        assert_eq!((rgba[0], rgba[4]), (255, 0));
        pixels.render(window, true, &mut rgba);
        assert_eq!((rgba[0], rgba[4]), (0, 255));
    }

    #[test]
    fn f32_and_rgb_samples_and_sizes_are_checked() {
        let bytes: Vec<u8> = [0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let Samples::Gray { min, max, small, .. } = Pixels::parse("f32", 2, 1, &bytes).unwrap() else { panic!() };
        assert_eq!((min, max, small), (0.5, 1.5, None));
        assert!(Pixels::parse("i16", 2, 2, &[0; 6]).is_err());
        assert!(Pixels::parse("u8", 1, 1, &[0]).is_err());
        let rgb = Pixels {
            columns: 1,
            rows: 1,
            samples: Pixels::parse("rgb8", 1, 1, &[10, 20, 30]).unwrap(),
            default_window: None,
            inverted: false,
        };
        let mut rgba = Vec::new();
        rgb.render(Window { center: 0.0, width: 1.0 }, true, &mut rgba);
        assert_eq!(rgba, [245, 235, 225, 255]);
        assert_eq!(rgb.initial_window(), None);
    }

    #[test]
    fn without_a_default_the_first_window_spans_the_values() {
        let pixels = ct(&[-1000, 1000], 2, 1);
        assert_eq!(pixels.initial_window(), Some(Window::full_range(-1000.0, 1000.0)));
    }
}
