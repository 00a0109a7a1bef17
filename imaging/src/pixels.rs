//! Decoded frames: modality values for grayscale images, 8-bit RGB for colour ones.

/// The samples of all frames, frame after frame, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// One value per pixel after the modality LUT (rescale slope and intercept): HU on CT.
    Gray(Vec<f32>),
    /// Three bytes per pixel.
    Rgb(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Frames {
    pub rows: usize,
    pub columns: usize,
    pub count: usize,
    pub samples: Samples,
    /// MONOCHROME1: higher values are darker; rendering inverts.
    pub inverted: bool,
    /// Modality values that mark pixels outside the scanned area (Pixel Padding Value, and Range Limit if
    /// given), lowest and highest: not tissue, so left out of the full-range window. The values
    /// themselves are kept as stored, as pydicom keeps them.
    pub padding: Option<(f32, f32)>,
}

impl Frames {
    pub fn frame_pixels(&self) -> usize {
        self.rows * self.columns
    }

    /// Modality values of one grayscale frame.
    pub fn gray_frame(&self, index: usize) -> Option<&[f32]> {
        match &self.samples {
            Samples::Gray(v) if index < self.count => {
                Some(&v[index * self.frame_pixels()..(index + 1) * self.frame_pixels()])
            }
            _ => None,
        }
    }

    /// RGB bytes of one colour frame.
    pub fn rgb_frame(&self, index: usize) -> Option<&[u8]> {
        match &self.samples {
            Samples::Rgb(v) if index < self.count => {
                Some(&v[index * self.frame_pixels() * 3..(index + 1) * self.frame_pixels() * 3])
            }
            _ => None,
        }
    }

    /// Smallest and largest modality value of a grayscale frame, padding left out (for a full-range window).
    pub fn range(&self, index: usize) -> Option<(f32, f32)> {
        let f = self.gray_frame(index)?;
        let is_padding = |v: f32| self.padding.is_some_and(|(lo, hi)| (lo..=hi).contains(&v));
        f.iter().filter(|v| !is_padding(**v)).fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    }
}
