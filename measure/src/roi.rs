//! Region statistics: the ellipse ROI (area, mean/SD/min/max of modality values, HU on CT) and the probe.

use serde::{Deserialize, Serialize};

use crate::geometry::{Point, Spacing};

/// One frame of modality values (after rescale slope/intercept), row-major.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub values: &'a [f32],
    pub columns: usize,
    pub rows: usize,
}

impl Frame<'_> {
    /// The value of the pixel whose centre is nearest to `p`, or None outside the image (the HU probe).
    pub fn probe(&self, p: Point) -> Option<f32> {
        let (x, y) = (p.x.round(), p.y.round());
        if x < 0.0 || y < 0.0 || x >= self.columns as f64 || y >= self.rows as f64 {
            return None;
        }
        self.values.get(y as usize * self.columns + x as usize).copied()
    }
}

/// An axis-aligned ellipse as the viewer draws it, centre and radii in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ellipse {
    pub center: Point,
    pub radius_x: f64,
    pub radius_y: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiStats {
    /// Pixels whose centres lie inside the region.
    pub pixels: usize,
    /// Area of the drawn ellipse, mm² (π·a·b, not the pixel count).
    pub area_mm2: f64,
    pub mean: f64,
    /// Population standard deviation.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

/// Statistics of the pixels whose centres are inside `ellipse`; None when no pixel centre is.
pub fn ellipse_stats(frame: &Frame, ellipse: &Ellipse, spacing: &Spacing) -> Option<RoiStats> {
    let Ellipse { center, radius_x: rx, radius_y: ry } = *ellipse;
    if !(rx > 0.0 && ry > 0.0) {
        return None;
    }
    // Pixel indices from ⌈lo⌉ to ⌊hi⌋ that lie in 0..n, if any.
    let span = |lo: f64, hi: f64, n: usize| {
        let (lo, hi) = (lo.ceil().max(0.0), hi.floor().min(n as f64 - 1.0));
        (lo <= hi).then_some((lo as usize, hi as usize))
    };
    let (Some((x0, x1)), Some((y0, y1))) =
        (span(center.x - rx, center.x + rx, frame.columns), span(center.y - ry, center.y + ry, frame.rows))
    else {
        return None;
    };
    // Inside test dx²·b² + dy²·a² ≤ a²·b²: no square roots, so exact on the pixel lattice.
    let mut values = Vec::new();
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f64 - center.x, y as f64 - center.y);
            if dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry {
                values.push(f64::from(frame.values[y * frame.columns + x]));
            }
        }
    }
    stats(values.into_iter(), std::f64::consts::PI * rx * ry * spacing.pixel_area_mm2())
}

/// Mean, SD, min and max in one pass (Welford, stable for HU around −1000 with small spread).
pub(crate) fn stats(values: impl Iterator<Item = f64>, area_mm2: f64) -> Option<RoiStats> {
    let (mut n, mut mean, mut m2, mut min, mut max) = (0usize, 0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        n += 1;
        let d = v - mean;
        mean += d / n as f64;
        m2 += d * (v - mean);
        min = min.min(v);
        max = max.max(v);
    }
    (n > 0).then(|| RoiStats { pixels: n, area_mm2, mean, sd: (m2 / n as f64).sqrt(), min, max })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::SpacingSource;

    const S: Spacing = Spacing { row_mm: 0.7, col_mm: 0.7, source: SpacingSource::PixelSpacing };

    #[test]
    fn ellipse_stats_of_a_known_disc() {
        // A 21×21 image: value 40 inside radius 5 of (10, 10), −800 outside.
        let (w, h) = (21, 21);
        let values: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 - 10.0, (i / w) as f64 - 10.0);
                if x * x + y * y <= 25.0 { 40.0 } else { -800.0 }
            })
            .collect();
        let frame = Frame { values: &values, columns: w, rows: h };
        let inside =
            ellipse_stats(&frame, &Ellipse { center: Point::new(10.0, 10.0), radius_x: 5.0, radius_y: 5.0 }, &S)
                .unwrap();
        assert_eq!(inside.pixels, 81); // lattice points in a disc of radius 5
        assert_eq!((inside.mean, inside.sd, inside.min, inside.max), (40.0, 0.0, 40.0, 40.0));
        assert!((inside.area_mm2 - std::f64::consts::PI * 25.0 * 0.49).abs() < 1e-9);

        let bigger =
            ellipse_stats(&frame, &Ellipse { center: Point::new(10.0, 10.0), radius_x: 8.0, radius_y: 3.0 }, &S)
                .unwrap();
        assert_eq!(bigger.min, -800.0);
        assert_eq!(bigger.max, 40.0);
        assert!(bigger.sd > 0.0);
    }

    #[test]
    fn sd_is_the_population_sd() {
        let s = stats([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter(), 0.0).unwrap();
        assert_eq!((s.mean, s.sd), (5.0, 2.0));
    }

    #[test]
    fn ellipse_outside_the_image_has_no_stats_and_the_probe_says_none() {
        let values = vec![1.0f32; 16];
        let frame = Frame { values: &values, columns: 4, rows: 4 };
        let e = Ellipse { center: Point::new(-20.0, -20.0), radius_x: 2.0, radius_y: 2.0 };
        assert!(ellipse_stats(&frame, &e, &S).is_none());
        assert_eq!(frame.probe(Point::new(3.4, 0.0)), Some(1.0));
        assert_eq!(frame.probe(Point::new(3.6, 0.0)), None);
    }
}
