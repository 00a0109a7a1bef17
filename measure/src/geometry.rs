//! Points, pixel spacing and the viewer's line measurements (length, bidirectional long/short axis).

use serde::{Deserialize, Serialize};

/// A position in image pixels: `x` along the row, `y` down the columns; pixel centres are integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }
}

/// Where a pixel spacing came from, which decides what a millimetre means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpacingSource {
    /// PixelSpacing (0028,0030): calibrated in the patient (CT, calibrated DX).
    PixelSpacing,
    /// ImagerPixelSpacing (0018,1164): at the detector plane, not corrected for geometric magnification
    /// (CR/DX). Measurements are typically 5–15 % larger than the anatomy.
    ImagerPixelSpacing,
    /// Given by whoever uploaded a JPEG/PNG.
    Uploader,
}

impl SpacingSource {
    /// The caveat the viewer and the report print next to a measurement, or nothing when calibrated.
    pub fn caveat_zh(self) -> Option<&'static str> {
        match self {
            SpacingSource::PixelSpacing => None,
            SpacingSource::ImagerPixelSpacing => Some("探测器平面，未校正放大"),
            SpacingSource::Uploader => Some("像素间距由上传者提供"),
        }
    }

    pub fn caveat_en(self) -> Option<&'static str> {
        match self {
            SpacingSource::PixelSpacing => None,
            SpacingSource::ImagerPixelSpacing => Some("at the detector plane, not corrected for magnification"),
            SpacingSource::Uploader => Some("pixel spacing given by the uploader"),
        }
    }
}

/// Physical size of a pixel: `row_mm` is the distance between rows (along y), `col_mm` between
/// columns (along x) — the order of DICOM's PixelSpacing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spacing {
    pub row_mm: f64,
    pub col_mm: f64,
    pub source: SpacingSource,
}

impl Spacing {
    /// A pixel offset in millimetres.
    pub fn to_mm(&self, dx: f64, dy: f64) -> (f64, f64) {
        (dx * self.col_mm, dy * self.row_mm)
    }

    /// Area of one pixel, mm².
    pub fn pixel_area_mm2(&self) -> f64 {
        self.row_mm * self.col_mm
    }
}

/// Length of the segment `a`–`b` in millimetres.
pub fn distance_mm(a: Point, b: Point, spacing: &Spacing) -> f64 {
    let (dx, dy) = spacing.to_mm(b.x - a.x, b.y - a.y);
    dx.hypot(dy)
}

/// Long axis and the longest chord perpendicular to it (RECIST / Lung-RADS bidirectional measurement).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bidirectional {
    pub long_axis: [Point; 2],
    pub short_axis: [Point; 2],
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
}

/// Bidirectional axes of a closed outline (in pixels, any order of vertices, at least three).
/// The long axis is the longest distance between two outline points in millimetres; the short axis the
/// longest chord of the outline perpendicular to it (in millimetres, so anisotropic spacing is handled).
pub fn bidirectional(outline: &[Point], spacing: &Spacing) -> Option<Bidirectional> {
    if outline.len() < 3 {
        return None;
    }
    // Work in millimetres so "perpendicular" means perpendicular in the patient.
    let mm: Vec<(f64, f64)> = outline.iter().map(|p| spacing.to_mm(p.x, p.y)).collect();
    let hull = convex_hull(&mm);
    let (mut i_best, mut j_best, mut long) = (0, 0, 0.0f64);
    for i in 0..hull.len() {
        for j in i + 1..hull.len() {
            let d = (hull[i].0 - hull[j].0).hypot(hull[i].1 - hull[j].1);
            if d > long {
                (i_best, j_best, long) = (i, j, d);
            }
        }
    }
    if long <= 0.0 {
        return None;
    }
    let (a, b) = (hull[i_best], hull[j_best]);
    let u = ((b.0 - a.0) / long, (b.1 - a.1) / long); // unit vector along the long axis
    let n = (-u.1, u.0);
    // The perpendicular chord at position t along the axis: intersect the line a + t·u + s·n with every
    // edge of the outline polygon (in its own order, so concave outlines are measured as drawn).
    let edges: Vec<((f64, f64), (f64, f64))> = (0..mm.len()).map(|k| (mm[k], mm[(k + 1) % mm.len()])).collect();
    let to_local = |p: (f64, f64)| {
        let d = (p.0 - a.0, p.1 - a.1);
        (d.0 * u.0 + d.1 * u.1, d.0 * n.0 + d.1 * n.1)
    };
    let local: Vec<((f64, f64), (f64, f64))> = edges.iter().map(|&(p, q)| (to_local(p), to_local(q))).collect();
    // Candidate positions: every vertex's projection plus a fine sweep, which finds the maximum of the
    // piecewise-linear chord length (it peaks at vertices) and is robust to duplicate points.
    let mut ts: Vec<f64> = local.iter().map(|(p, _)| p.0).filter(|t| *t > 0.0 && *t < long).collect();
    ts.extend((1..512).map(|k| long * f64::from(k) / 512.0));
    let (mut short, mut short_ends) = (0.0f64, (0.0, 0.0));
    for t in ts {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(p, q) in &local {
            if (p.0 - t) * (q.0 - t) <= 0.0 && p.0 != q.0 {
                let s = p.1 + (q.1 - p.1) * (t - p.0) / (q.0 - p.0);
                lo = lo.min(s);
                hi = hi.max(s);
            }
        }
        if hi - lo > short {
            short = hi - lo;
            short_ends = (t, lo);
        }
    }
    let from_local = |t: f64, s: f64| {
        let (x, y) = (a.0 + t * u.0 + s * n.0, a.1 + t * u.1 + s * n.1);
        Point::new(x / spacing.col_mm, y / spacing.row_mm)
    };
    Some(Bidirectional {
        long_axis: [
            Point::new(a.0 / spacing.col_mm, a.1 / spacing.row_mm),
            Point::new(b.0 / spacing.col_mm, b.1 / spacing.row_mm),
        ],
        short_axis: [from_local(short_ends.0, short_ends.1), from_local(short_ends.0, short_ends.1 + short)],
        long_axis_mm: long,
        short_axis_mm: short,
    })
}

/// Monotone chain convex hull, counter-clockwise, without collinear points.
fn convex_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64)>> =
            if pass == 0 { Box::new(p.iter()) } else { Box::new(p.iter().rev()) };
        for &q in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0 {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISO: Spacing = Spacing { row_mm: 0.5, col_mm: 0.5, source: SpacingSource::PixelSpacing };

    fn ellipse(cx: f64, cy: f64, rx: f64, ry: f64, angle: f64, n: usize) -> Vec<Point> {
        let (s, c) = angle.sin_cos();
        (0..n)
            .map(|k| {
                let t = std::f64::consts::TAU * k as f64 / n as f64;
                let (x, y) = (rx * t.cos(), ry * t.sin());
                Point::new(cx + x * c - y * s, cy + x * s + y * c)
            })
            .collect()
    }

    #[test]
    fn distance_uses_row_and_column_spacing() {
        let s = Spacing { row_mm: 2.0, col_mm: 0.5, source: SpacingSource::PixelSpacing };
        assert_eq!(distance_mm(Point::new(0.0, 0.0), Point::new(8.0, 0.0), &s), 4.0);
        assert_eq!(distance_mm(Point::new(0.0, 0.0), Point::new(0.0, 2.0), &s), 4.0);
        assert!((distance_mm(Point::new(0.0, 0.0), Point::new(6.0, 2.0), &s) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn bidirectional_of_a_rotated_ellipse_gives_its_axes() {
        // 20 × 12 mm ellipse (40 × 24 px at 0.5 mm), rotated 30°.
        let outline = ellipse(100.0, 80.0, 20.0, 12.0, std::f64::consts::FRAC_PI_6, 720);
        let b = bidirectional(&outline, &ISO).unwrap();
        assert!((b.long_axis_mm - 20.0).abs() < 0.01, "{b:?}");
        assert!((b.short_axis_mm - 12.0).abs() < 0.01, "{b:?}");
        // The two axes are perpendicular and cross near the centre.
        let (l, s) = (b.long_axis, b.short_axis);
        let dot = (l[1].x - l[0].x) * (s[1].x - s[0].x) + (l[1].y - l[0].y) * (s[1].y - s[0].y);
        assert!(dot.abs() < 1e-6 * b.long_axis_mm * b.short_axis_mm * 16.0);
        assert!((distance_mm(s[0], s[1], &ISO) - b.short_axis_mm).abs() < 1e-9);
    }

    #[test]
    fn bidirectional_is_perpendicular_in_millimetres_with_anisotropic_spacing() {
        // A circle of 10 mm in the patient is an ellipse in pixels when rows are twice as far apart.
        let s = Spacing { row_mm: 1.0, col_mm: 0.5, source: SpacingSource::PixelSpacing };
        let outline = ellipse(50.0, 50.0, 10.0, 5.0, 0.0, 720);
        let b = bidirectional(&outline, &s).unwrap();
        assert!((b.long_axis_mm - 10.0).abs() < 0.01 && (b.short_axis_mm - 10.0).abs() < 0.01, "{b:?}");
    }

    #[test]
    fn degenerate_outlines_have_no_axes() {
        assert!(bidirectional(&[Point::new(1.0, 1.0), Point::new(2.0, 2.0)], &ISO).is_none());
        assert!(bidirectional(&[Point::new(1.0, 1.0); 5], &ISO).is_none());
    }
}
