//! Automatic nodule measurement from one click: segment the nodule around the seed by region growing at
//! a half-maximum threshold, trace its outline with sub-pixel accuracy, and measure it.
//!
//! The same method serves CT (modality values in HU) and radiographs (raw detector values, where the
//! "threshold" is a local contrast level): the threshold sits halfway between the nodule near the seed and
//! the background around it, so the outline lies where the edge is half-way up — at the true edge of a
//! blurred or partial-volume boundary. Every result carries the numbers it was based on.

use serde::{Deserialize, Serialize};

use crate::geometry::{Bidirectional, Point, Spacing, bidirectional};
use crate::roi::{Frame, stats};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentOptions {
    /// How far from the seed the nodule may extend, mm. Lung-RADS and Fleischner stop at 30 mm (a larger
    /// lesion is a mass); the search window is this radius plus a margin for the background.
    pub max_radius_mm: f64,
    /// A fixed threshold (e.g. −500 HU for solid components) instead of the half-maximum level.
    pub threshold: Option<f64>,
}

/// Longest reach of the search window from the seed, pixels (a window of at most 2049 × 2049). A spacing
/// far finer than any detector's (0.00001 mm in a hostile file) would otherwise make the window the whole
/// frame; the radius searched shrinks to fit instead.
pub const MAX_REACH_PX: usize = 1024;

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions { max_radius_mm: 30.0, threshold: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segmentation {
    /// The outline, a closed polygon in image pixels (last vertex joins the first).
    pub outline: Vec<Point>,
    pub axes: Bidirectional,
    /// Pixels in the region (holes filled).
    pub pixels: usize,
    /// Area enclosed by the outline, mm².
    pub area_mm2: f64,
    /// Mean and SD of the region's modality values (HU on CT).
    pub mean: f64,
    pub sd: f64,
    /// The basis: the level the outline follows, and the two levels it lies between.
    pub threshold: f64,
    pub seed_level: f64,
    pub background_level: f64,
    /// The region reached the edge of the search window: it probably ran into a vessel, the pleura or
    /// the chest wall, and the numbers are not a nodule's. The viewer asks for a manual measurement.
    pub reached_search_limit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// The seed is outside the image.
    SeedOutside,
    /// No contrast between the seed and its surroundings: nothing to segment.
    NoContrast,
    /// The outline could not be traced (a region of one or two pixels).
    TooSmall,
}

impl SegmentError {
    pub fn message_zh(&self) -> &'static str {
        match self {
            SegmentError::SeedOutside => "种子点在图像外",
            SegmentError::NoContrast => "种子点周围无可分割的结节，请手动测量",
            SegmentError::TooSmall => "分割区域过小，请手动测量",
        }
    }

    pub fn message_en(&self) -> &'static str {
        match self {
            SegmentError::SeedOutside => "the seed point is outside the image",
            SegmentError::NoContrast => "no nodule contrast around the seed point: measure by hand",
            SegmentError::TooSmall => "the segmented region is too small: measure by hand",
        }
    }
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message_en())
    }
}

impl std::error::Error for SegmentError {}

pub fn segment_nodule(
    frame: &Frame,
    seed: Point,
    spacing: &Spacing,
    options: &SegmentOptions,
) -> Result<Segmentation, SegmentError> {
    let (sx, sy) = (seed.x.round(), seed.y.round());
    if sx < 0.0 || sy < 0.0 || sx >= frame.columns as f64 || sy >= frame.rows as f64 {
        return Err(SegmentError::SeedOutside);
    }
    let (sx, sy) = (sx as usize, sy as usize);

    // The search window: the allowed radius, plus a third for the background ring; no more pixels than
    // MAX_REACH_PX either way.
    let finest_mm = spacing.col_mm.min(spacing.row_mm);
    let max_radius_mm = options.max_radius_mm.min(MAX_REACH_PX as f64 * finest_mm / 1.34);
    let reach_x = ((max_radius_mm * 1.34 / spacing.col_mm).ceil() as usize).min(MAX_REACH_PX);
    let reach_y = ((max_radius_mm * 1.34 / spacing.row_mm).ceil() as usize).min(MAX_REACH_PX);
    let win = Window {
        x0: sx.saturating_sub(reach_x),
        y0: sy.saturating_sub(reach_y),
        x1: (sx + reach_x).min(frame.columns - 1),
        y1: (sy + reach_y).min(frame.rows - 1),
    };
    let at = |x: usize, y: usize| f64::from(frame.values[y * frame.columns + x]);

    // Seed level: median of the 3×3 neighbourhood, so one noisy pixel does not decide.
    let mut seed_ring: Vec<f64> = (sy.saturating_sub(1)..=(sy + 1).min(frame.rows - 1))
        .flat_map(|y| (sx.saturating_sub(1)..=(sx + 1).min(frame.columns - 1)).map(move |x| (x, y)))
        .map(|(x, y)| at(x, y))
        .collect();
    seed_ring.sort_by(f64::total_cmp);
    let seed_level = seed_ring[seed_ring.len() / 2];

    // Background: a low (or, for dark objects, high) percentile of the window. The nodule is a small
    // part of the window, so the 10th percentile is the surrounding parenchyma, not the nodule.
    let mut window_values: Vec<f64> =
        (win.y0..=win.y1).flat_map(|y| (win.x0..=win.x1).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    window_values.sort_by(f64::total_cmp);
    let median = window_values[window_values.len() / 2];
    let bright = seed_level >= median;
    let background_level =
        if bright { window_values[window_values.len() / 10] } else { window_values[window_values.len() * 9 / 10] };
    let threshold = options.threshold.unwrap_or((seed_level + background_level) / 2.0);
    // Signed distance above the threshold, positive inside the object whichever its polarity.
    let field = |x: usize, y: usize| if bright { at(x, y) - threshold } else { threshold - at(x, y) };
    if (seed_level - background_level).abs() < f64::EPSILON || field(sx, sy) <= 0.0 {
        return Err(SegmentError::NoContrast);
    }

    // Region growing, 4-connected, inside the window.
    let (w, h) = (win.x1 - win.x0 + 1, win.y1 - win.y0 + 1);
    let mut inside = vec![false; w * h];
    let mut stack = vec![(sx - win.x0, sy - win.y0)];
    inside[(sy - win.y0) * w + (sx - win.x0)] = true;
    let max_r2 = max_radius_mm * max_radius_mm;
    let mut reached_search_limit = false;
    while let Some((x, y)) = stack.pop() {
        let neighbours = [(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)];
        for (nx, ny) in neighbours {
            if nx >= w || ny >= h || inside[ny * w + nx] || field(nx + win.x0, ny + win.y0) <= 0.0 {
                continue;
            }
            let (dx, dy) = spacing.to_mm(nx as f64 + win.x0 as f64 - sx as f64, ny as f64 + win.y0 as f64 - sy as f64);
            if dx * dx + dy * dy > max_r2 {
                reached_search_limit = true;
                continue;
            }
            inside[ny * w + nx] = true;
            stack.push((nx, ny));
        }
    }
    fill_holes(&mut inside, w, h);

    // The outline follows the threshold level between region pixels; pixels outside the region count as
    // outside even when they are above the threshold (a touching vessel), and so does everything beyond
    // the window, so every traced loop closes.
    let grid = |x: isize, y: isize| -> f64 {
        if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
            return -1.0;
        }
        let (ux, uy) = (x as usize, y as usize);
        let f = field(ux + win.x0, uy + win.y0);
        if inside[uy * w + ux] { f.max(1e-6) } else { f.min(-1e-6) }
    };
    let outline: Vec<Point> =
        trace_outline(grid, w, h).into_iter().map(|(x, y)| Point::new(x + win.x0 as f64, y + win.y0 as f64)).collect();
    let axes = bidirectional(&outline, spacing).ok_or(SegmentError::TooSmall)?;
    let area_px = shoelace(&outline);
    let region = (0..w * h).filter(|&i| inside[i]).map(|i| at(i % w + win.x0, i / w + win.y0));
    let region_stats = stats(region, area_px * spacing.pixel_area_mm2()).ok_or(SegmentError::TooSmall)?;
    Ok(Segmentation {
        outline,
        axes,
        pixels: region_stats.pixels,
        area_mm2: region_stats.area_mm2,
        mean: region_stats.mean,
        sd: region_stats.sd,
        threshold,
        seed_level,
        background_level,
        reached_search_limit,
    })
}

/// Inclusive pixel bounds of the search window.
struct Window {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

/// Marks as inside every pixel the outside cannot reach from the window border (calcifications, cavities
/// and air bronchograms belong to the nodule).
fn fill_holes(inside: &mut [bool], w: usize, h: usize) {
    let mut outside = vec![false; w * h];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for x in 0..w {
        stack.extend([(x, 0), (x, h - 1)]);
    }
    for y in 0..h {
        stack.extend([(0, y), (w - 1, y)]);
    }
    while let Some((x, y)) = stack.pop() {
        if x >= w || y >= h || inside[y * w + x] || outside[y * w + x] {
            continue;
        }
        outside[y * w + x] = true;
        stack.extend([(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)]);
    }
    for i in 0..w * h {
        inside[i] = !outside[i];
    }
}

/// Marching squares over `field` (positive inside) on the cells between pixel centres, from −1 to w/h so
/// the border closes; returns the longest closed loop, the outer boundary, with linearly interpolated
/// sub-pixel vertices.
fn trace_outline(field: impl Fn(isize, isize) -> f64, w: usize, h: usize) -> Vec<(f64, f64)> {
    use std::collections::HashMap;
    // An edge between two neighbouring pixel centres: (x, y, horizontal?) of its first end.
    type Edge = (isize, isize, bool);
    let crossing = |(x, y, horizontal): Edge| -> (f64, f64) {
        let (x2, y2) = if horizontal { (x + 1, y) } else { (x, y + 1) };
        let (a, b) = (field(x, y), field(x2, y2));
        let t = a / (a - b);
        (x as f64 + t * (x2 - x) as f64, y as f64 + t * (y2 - y) as f64)
    };
    let mut links: HashMap<Edge, Vec<Edge>> = HashMap::new();
    let mut link = |a: Edge, b: Edge| {
        links.entry(a).or_default().push(b);
        links.entry(b).or_default().push(a);
    };
    for y in -1..h as isize {
        for x in -1..w as isize {
            let corners = [field(x, y), field(x + 1, y), field(x + 1, y + 1), field(x, y + 1)];
            let case = corners.iter().enumerate().fold(0u8, |c, (i, v)| c | (u8::from(*v > 0.0) << i));
            let (top, right, bottom, left) = ((x, y, true), (x + 1, y, false), (x, y + 1, true), (x, y, false));
            match case {
                0 | 15 => {}
                1 | 14 => link(left, top),
                2 | 13 => link(top, right),
                3 | 12 => link(left, right),
                4 | 11 => link(right, bottom),
                6 | 9 => link(top, bottom),
                7 | 8 => link(left, bottom),
                5 | 10 => {
                    // Saddle: the centre's average decides whether the two inside corners connect.
                    let centre_inside = corners.iter().sum::<f64>() > 0.0;
                    if (case == 5) == centre_inside {
                        link(left, bottom);
                        link(top, right);
                    } else {
                        link(left, top);
                        link(right, bottom);
                    }
                }
                _ => unreachable!(),
            }
        }
    }
    // Walk the loops; keep the longest.
    let mut best: Vec<Edge> = Vec::new();
    let mut seen: std::collections::HashSet<Edge> = std::collections::HashSet::new();
    let mut starts: Vec<Edge> = links.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if seen.contains(&start) {
            continue;
        }
        let mut path = vec![start];
        seen.insert(start);
        let (mut prev, mut cur) = (start, start);
        loop {
            let next = links[&cur].iter().copied().find(|e| *e != prev && !seen.contains(e));
            match next {
                Some(e) => {
                    seen.insert(e);
                    path.push(e);
                    (prev, cur) = (cur, e);
                }
                None => break,
            }
        }
        if path.len() > best.len() {
            best = path;
        }
    }
    best.into_iter().map(crossing).collect()
}

/// Area of a closed polygon, in pixels².
fn shoelace(poly: &[Point]) -> f64 {
    let n = poly.len();
    (0..n).map(|i| poly[i].x * poly[(i + 1) % n].y - poly[(i + 1) % n].x * poly[i].y).sum::<f64>().abs() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::SpacingSource;

    /// A CT-like phantom: lung at −850 HU, an ellipse of 40 HU with the given axes (mm), rotated, with
    /// partial-volume edges from 8×8 supersampling.
    fn phantom(long_mm: f64, short_mm: f64, angle: f64, spacing: f64, size: usize) -> Vec<f32> {
        let (a, b) = (long_mm / 2.0 / spacing, short_mm / 2.0 / spacing);
        let c = size as f64 / 2.0;
        let (s, co) = angle.sin_cos();
        let mut v = vec![0f32; size * size];
        for y in 0..size {
            for x in 0..size {
                let mut hits = 0;
                for sy in 0..8 {
                    for sx in 0..8 {
                        let px = x as f64 - c + (sx as f64 + 0.5) / 8.0 - 0.5;
                        let py = y as f64 - c + (sy as f64 + 0.5) / 8.0 - 0.5;
                        let (u, w) = (px * co + py * s, -px * s + py * co);
                        if (u / a).powi(2) + (w / b).powi(2) <= 1.0 {
                            hits += 1;
                        }
                    }
                }
                let f = f64::from(hits) / 64.0;
                v[y * size + x] = (-850.0 * (1.0 - f) + 40.0 * f) as f32;
            }
        }
        v
    }

    #[test]
    fn phantom_ellipse_axes_within_a_pixel_and_hu_within_one() {
        let spacing = Spacing { row_mm: 0.7, col_mm: 0.7, source: SpacingSource::PixelSpacing };
        for (long, short, angle) in [(12.0, 8.0, 0.3), (6.0, 6.0, 0.0), (23.4, 19.1, 1.2)] {
            let size = 128;
            let values = phantom(long, short, angle, 0.7, size);
            let frame = Frame { values: &values, columns: size, rows: size };
            let seg = segment_nodule(&frame, Point::new(65.0, 63.0), &spacing, &SegmentOptions::default()).unwrap();
            assert!((seg.axes.long_axis_mm - long).abs() < 0.7, "{long}×{short}: {:?}", seg.axes);
            assert!((seg.axes.short_axis_mm - short).abs() < 0.7, "{long}×{short}: {:?}", seg.axes);
            let true_area = std::f64::consts::PI * long * short / 4.0;
            assert!((seg.area_mm2 - true_area).abs() / true_area < 0.08, "{} vs {true_area}", seg.area_mm2);
            assert!(!seg.reached_search_limit);
            assert_eq!(seg.threshold, (40.0 - 850.0) / 2.0);
        }
    }

    #[test]
    fn a_dark_object_is_segmented_too() {
        // MONOCHROME1-like raw values: the nodule has lower values than its surroundings.
        let spacing = Spacing { row_mm: 0.2, col_mm: 0.2, source: SpacingSource::ImagerPixelSpacing };
        let values: Vec<f32> = phantom(10.0, 10.0, 0.0, 0.2, 128).iter().map(|v| -v).collect();
        let frame = Frame { values: &values, columns: 128, rows: 128 };
        let seg = segment_nodule(&frame, Point::new(64.0, 64.0), &spacing, &SegmentOptions::default()).unwrap();
        assert!(
            (seg.axes.long_axis_mm - 10.0).abs() < 0.2 && (seg.axes.short_axis_mm - 10.0).abs() < 0.2,
            "{:?}",
            seg.axes
        );
    }

    #[test]
    fn a_uniform_region_has_no_nodule_and_outside_seeds_are_refused() {
        let spacing = Spacing { row_mm: 1.0, col_mm: 1.0, source: SpacingSource::PixelSpacing };
        let values = vec![-850f32; 64 * 64];
        let frame = Frame { values: &values, columns: 64, rows: 64 };
        assert_eq!(
            segment_nodule(&frame, Point::new(30.0, 30.0), &spacing, &SegmentOptions::default()),
            Err(SegmentError::NoContrast)
        );
        assert_eq!(
            segment_nodule(&frame, Point::new(64.0, 3.0), &spacing, &SegmentOptions::default()),
            Err(SegmentError::SeedOutside)
        );
    }

    #[test]
    fn an_absurdly_fine_spacing_does_not_make_the_window_the_whole_frame() {
        // 0.00001 mm per pixel: 30 mm would be 4 million pixels each way. A soft-tissue frame bigger than
        // the window: the region stops at the window (reached_search_limit), within MAX_REACH_PX.
        let spacing = Spacing { row_mm: 0.00001, col_mm: 0.00001, source: SpacingSource::PixelSpacing };
        let side = 2 * MAX_REACH_PX + 401;
        let values: Vec<f32> = (0..side * side)
            .map(|i| {
                let (x, y) = ((i % side) as f64 - side as f64 / 2.0, (i / side) as f64 - side as f64 / 2.0);
                if x.abs() < 900.0 && y.abs() < 900.0 { 40.0 } else { -850.0 }
            })
            .collect();
        let frame = Frame { values: &values, columns: side, rows: side };
        let seed = Point::new(side as f64 / 2.0, side as f64 / 2.0);
        let seg = segment_nodule(&frame, seed, &spacing, &SegmentOptions::default()).unwrap();
        assert!(seg.reached_search_limit);
        // The outline never leaves the window: no point further than MAX_REACH_PX from the seed.
        let reach_mm = MAX_REACH_PX as f64 * spacing.col_mm;
        assert!(seg.axes.long_axis_mm <= 2.0 * reach_mm + 1e-9, "{}", seg.axes.long_axis_mm);
    }

    #[test]
    fn a_region_running_into_the_chest_wall_is_flagged() {
        // The lower half of the image is soft tissue: a click there reaches the search limit.
        let spacing = Spacing { row_mm: 1.0, col_mm: 1.0, source: SpacingSource::PixelSpacing };
        let values: Vec<f32> = (0..128 * 128).map(|i| if i / 128 > 64 { 40.0 } else { -850.0 }).collect();
        let frame = Frame { values: &values, columns: 128, rows: 128 };
        let seg = segment_nodule(
            &frame,
            Point::new(64.0, 70.0),
            &spacing,
            &SegmentOptions { max_radius_mm: 20.0, threshold: None },
        );
        assert!(seg.unwrap().reached_search_limit);
    }

    #[test]
    fn holes_are_filled() {
        // A ring: the hole in the middle belongs to the nodule (a cavity).
        let mut values = phantom(20.0, 20.0, 0.0, 1.0, 64);
        for (i, v) in values.iter_mut().enumerate() {
            let (x, y) = ((i % 64) as f64 - 32.0, (i / 64) as f64 - 32.0);
            if x * x + y * y < 16.0 {
                *v = -900.0;
            }
        }
        let spacing = Spacing { row_mm: 1.0, col_mm: 1.0, source: SpacingSource::PixelSpacing };
        let frame = Frame { values: &values, columns: 64, rows: 64 };
        let seg = segment_nodule(&frame, Point::new(32.0, 24.0), &spacing, &SegmentOptions::default()).unwrap();
        assert!(seg.pixels > 300, "{}", seg.pixels);
        assert!((seg.axes.long_axis_mm - 20.0).abs() < 1.0);
    }
}
