//! The viewer's drawn measurements — length, bidirectional axes, ellipse ROI, angle, arrow — and what
//! they measure.
//! The browser calls [`measure_shape`] while a shape is drawn; the server calls it again on the saved
//! shape, so the number stored with a study is the number the radiologist saw.

use serde::{Deserialize, Serialize};

use crate::axes::mean_diameter;
use crate::geometry::{Point, Spacing, SpacingSource, distance_mm};
use crate::roi::{Ellipse, Frame, RoiStats, ellipse_stats};

/// A drawn shape in image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// A straight line between two points.
    Length { a: Point, b: Point },
    /// Long axis and the short axis drawn across it (RECIST / Lung-RADS), each two points.
    Bidirectional { long: [Point; 2], short: [Point; 2] },
    /// An axis-aligned ellipse: area, and mean/SD/min/max of the modality values inside (HU on CT).
    Ellipse { center: Point, radius_x: f64, radius_y: f64 },
    /// The angle at `vertex` between the arms to `a` and `b`.
    Angle { a: Point, vertex: Point, b: Point },
    /// An arrow pointing at `to`; its text is the measurement's label.
    Arrow { from: Point, to: Point },
}

/// What a shape measures. Distances are in millimetres when the image has a pixel spacing, else in pixels
/// (`calibrated` false), and say so.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub calibrated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_axis: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_axis: Option<f64>,
    /// (long + short) / 2, rounded to one decimal as Lung-RADS v2022 reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_diameter: Option<f64>,
    /// Ellipse statistics; the area in mm² (pixels² when not calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roi: Option<RoiStats>,
    /// Degrees, 0–180, measured in the patient (millimetres), so anisotropic pixels do not skew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle_deg: Option<f64>,
}

/// Why a shape cannot be measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// A coordinate is not a finite number, or lies outside the image.
    OutsideImage,
    /// A line of zero length, or an ellipse without area or without a pixel centre inside.
    Empty,
    /// An ellipse ROI on a colour image (no modality values).
    NoValues,
}

impl ShapeError {
    pub fn message_zh(self) -> &'static str {
        match self {
            ShapeError::OutsideImage => "测量超出图像范围",
            ShapeError::Empty => "测量太小（长度为零或区域内没有像素）",
            ShapeError::NoValues => "彩色图像没有可统计的数值",
        }
    }

    pub fn message_en(self) -> &'static str {
        match self {
            ShapeError::OutsideImage => "the measurement lies outside the image",
            ShapeError::Empty => "the measurement is empty (zero length, or no pixel inside)",
            ShapeError::NoValues => "a colour image has no values to take statistics of",
        }
    }
}

/// Spacing of one pixel per "millimetre", for images without a pixel spacing (results then in pixels).
const PIXELS: Spacing = Spacing { row_mm: 1.0, col_mm: 1.0, source: SpacingSource::Uploader };

impl Shape {
    fn points(&self) -> Vec<Point> {
        match *self {
            Shape::Length { a, b } => vec![a, b],
            Shape::Bidirectional { long, short } => vec![long[0], long[1], short[0], short[1]],
            Shape::Ellipse { center, radius_x, radius_y } => vec![
                Point::new(center.x - radius_x, center.y - radius_y),
                Point::new(center.x + radius_x, center.y + radius_y),
            ],
            Shape::Angle { a, vertex, b } => vec![a, vertex, b],
            Shape::Arrow { from, to } => vec![from, to],
        }
    }
}

impl Shape {
    /// Where the shape is, as one point: the middle of a line or of the long axis, the ellipse's centre,
    /// the angle's vertex, the arrow's tip (matching a nodule across exams starts from it).
    pub fn center(&self) -> Point {
        let mid = |a: Point, b: Point| Point::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
        match *self {
            Shape::Length { a, b } => mid(a, b),
            Shape::Bidirectional { long, .. } => mid(long[0], long[1]),
            Shape::Ellipse { center, .. } => center,
            Shape::Angle { vertex, .. } => vertex,
            Shape::Arrow { to, .. } => to,
        }
    }
}

/// Measures `shape` on an image of `columns` × `rows` pixels. `frame` (the modality values) is needed for
/// an ellipse ROI only. A shape may reach half a pixel past the outermost pixel centres (the image's edge).
pub fn measure_shape(
    shape: &Shape,
    spacing: Option<&Spacing>,
    columns: usize,
    rows: usize,
    frame: Option<&Frame>,
) -> Result<Outcome, ShapeError> {
    let inside = |p: &Point| {
        p.x.is_finite()
            && p.y.is_finite()
            && (-0.5..=columns as f64 - 0.5).contains(&p.x)
            && (-0.5..=rows as f64 - 0.5).contains(&p.y)
    };
    if !shape.points().iter().all(inside) {
        return Err(ShapeError::OutsideImage);
    }
    let s = spacing.unwrap_or(&PIXELS);
    let mut outcome = Outcome {
        calibrated: spacing.is_some(),
        length: None,
        long_axis: None,
        short_axis: None,
        mean_diameter: None,
        roi: None,
        angle_deg: None,
    };
    match *shape {
        Shape::Length { a, b } => {
            let length = distance_mm(a, b, s);
            if length <= 0.0 {
                return Err(ShapeError::Empty);
            }
            outcome.length = Some(length);
        }
        Shape::Bidirectional { long, short } => {
            let (first, second) = (distance_mm(long[0], long[1], s), distance_mm(short[0], short[1], s));
            if first <= 0.0 || second <= 0.0 {
                return Err(ShapeError::Empty);
            }
            // Whichever was drawn first, the long axis is the longer one.
            let (long_axis, short_axis) = (first.max(second), first.min(second));
            outcome.long_axis = Some(long_axis);
            outcome.short_axis = Some(short_axis);
            outcome.mean_diameter = Some((mean_diameter(long_axis, short_axis) * 10.0).round() / 10.0);
        }
        Shape::Ellipse { center, radius_x, radius_y } => {
            let frame = frame.ok_or(ShapeError::NoValues)?;
            let ellipse = Ellipse { center, radius_x, radius_y };
            outcome.roi = Some(ellipse_stats(frame, &ellipse, s).ok_or(ShapeError::Empty)?);
        }
        Shape::Angle { a, vertex, b } => {
            let (ax, ay) = s.to_mm(a.x - vertex.x, a.y - vertex.y);
            let (bx, by) = s.to_mm(b.x - vertex.x, b.y - vertex.y);
            if ax.hypot(ay) == 0.0 || bx.hypot(by) == 0.0 {
                return Err(ShapeError::Empty);
            }
            // atan2 of cross and dot: exact near 0° and 180°, where acos of the cosine is not.
            outcome.angle_deg = Some((ax * by - ay * bx).abs().atan2(ax * bx + ay * by).to_degrees());
        }
        Shape::Arrow { from, to } => {
            if from == to {
                return Err(ShapeError::Empty);
            }
        }
    }
    Ok(outcome)
}

/// The short axis drawn from `from` towards `to`, kept perpendicular (in millimetres) to the long axis
/// `long`: the viewer's second drag of a bidirectional measurement.
pub fn perpendicular_axis(long: [Point; 2], from: Point, to: Point, spacing: Option<&Spacing>) -> [Point; 2] {
    let s = spacing.unwrap_or(&PIXELS);
    let (ux, uy) = s.to_mm(long[1].x - long[0].x, long[1].y - long[0].y);
    let norm = ux.hypot(uy);
    if norm == 0.0 {
        return [from, to];
    }
    let (nx, ny) = (-uy / norm, ux / norm);
    let (dx, dy) = s.to_mm(to.x - from.x, to.y - from.y);
    let along = dx * nx + dy * ny;
    [from, Point::new(from.x + along * nx / s.col_mm, from.y + along * ny / s.row_mm)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: Spacing = Spacing { row_mm: 0.7, col_mm: 0.7, source: SpacingSource::PixelSpacing };

    #[test]
    fn a_hundred_pixels_at_0_7_mm_is_70_mm() {
        let shape = Shape::Length { a: Point::new(20.0, 20.0), b: Point::new(120.0, 20.0) };
        let outcome = measure_shape(&shape, Some(&CT), 256, 256, None).unwrap();
        assert!((outcome.length.unwrap() - 70.0).abs() < 1e-9);
        assert!(outcome.calibrated);
        let uncalibrated = measure_shape(&shape, None, 256, 256, None).unwrap();
        assert_eq!((uncalibrated.length, uncalibrated.calibrated), (Some(100.0), false));
    }

    #[test]
    fn bidirectional_takes_the_longer_axis_as_long_and_rounds_the_mean() {
        let shape = Shape::Bidirectional {
            long: [Point::new(10.0, 10.0), Point::new(10.0, 20.0)], // 7.0 mm
            short: [Point::new(5.0, 15.0), Point::new(25.0, 15.0)], // 14.0 mm
        };
        let o = measure_shape(&shape, Some(&CT), 256, 256, None).unwrap();
        assert!((o.long_axis.unwrap() - 14.0).abs() < 1e-9);
        assert!((o.short_axis.unwrap() - 7.0).abs() < 1e-9);
        assert_eq!(o.mean_diameter, Some(10.5));
    }

    #[test]
    fn an_ellipse_needs_values_and_a_pixel_inside() {
        let values = vec![40.0f32; 16 * 16];
        let frame = Frame { values: &values, columns: 16, rows: 16 };
        let shape = Shape::Ellipse { center: Point::new(8.0, 8.0), radius_x: 3.0, radius_y: 2.0 };
        let roi = measure_shape(&shape, Some(&CT), 16, 16, Some(&frame)).unwrap().roi.unwrap();
        assert_eq!((roi.mean, roi.sd), (40.0, 0.0));
        assert!((roi.area_mm2 - std::f64::consts::PI * 6.0 * 0.49).abs() < 1e-9);
        assert_eq!(measure_shape(&shape, Some(&CT), 16, 16, None), Err(ShapeError::NoValues));
        let tiny = Shape::Ellipse { center: Point::new(8.5, 8.5), radius_x: 0.2, radius_y: 0.2 };
        assert_eq!(measure_shape(&tiny, Some(&CT), 16, 16, Some(&frame)), Err(ShapeError::Empty));
    }

    #[test]
    fn angles_are_measured_in_millimetres() {
        let right = Shape::Angle { a: Point::new(10.0, 0.0), vertex: Point::new(0.0, 0.0), b: Point::new(0.0, 7.0) };
        assert!((measure_shape(&right, Some(&CT), 256, 256, None).unwrap().angle_deg.unwrap() - 90.0).abs() < 1e-9);
        let straight = Shape::Angle { a: Point::new(0.0, 5.0), vertex: Point::new(5.0, 5.0), b: Point::new(9.0, 5.0) };
        assert!((measure_shape(&straight, Some(&CT), 256, 256, None).unwrap().angle_deg.unwrap() - 180.0).abs() < 1e-9);
        // Rows twice as far apart as columns: 45° in pixels is atan(2) in the patient.
        let s = Spacing { row_mm: 2.0, col_mm: 1.0, source: SpacingSource::PixelSpacing };
        let skew = Shape::Angle { a: Point::new(10.0, 0.0), vertex: Point::new(0.0, 0.0), b: Point::new(10.0, 10.0) };
        let deg = measure_shape(&skew, Some(&s), 256, 256, None).unwrap().angle_deg.unwrap();
        assert!((deg - 2f64.atan().to_degrees()).abs() < 1e-9);
        let arm = Shape::Angle { a: Point::new(3.0, 3.0), vertex: Point::new(3.0, 3.0), b: Point::new(9.0, 5.0) };
        assert_eq!(measure_shape(&arm, Some(&CT), 256, 256, None), Err(ShapeError::Empty));
        let arrow = Shape::Arrow { from: Point::new(1.0, 1.0), to: Point::new(5.0, 5.0) };
        let o = measure_shape(&arrow, Some(&CT), 256, 256, None).unwrap();
        assert_eq!((o.length, o.angle_deg, o.roi), (None, None, None));
    }

    #[test]
    fn shapes_outside_the_image_or_empty_are_refused() {
        let out = Shape::Length { a: Point::new(0.0, 0.0), b: Point::new(256.0, 0.0) };
        assert_eq!(measure_shape(&out, Some(&CT), 256, 256, None), Err(ShapeError::OutsideImage));
        let edge = Shape::Length { a: Point::new(-0.5, -0.5), b: Point::new(255.5, -0.5) };
        assert!(measure_shape(&edge, Some(&CT), 256, 256, None).is_ok());
        let nan = Shape::Length { a: Point::new(f64::NAN, 0.0), b: Point::new(1.0, 0.0) };
        assert_eq!(measure_shape(&nan, Some(&CT), 256, 256, None), Err(ShapeError::OutsideImage));
        let zero = Shape::Length { a: Point::new(3.0, 3.0), b: Point::new(3.0, 3.0) };
        assert_eq!(measure_shape(&zero, Some(&CT), 256, 256, None), Err(ShapeError::Empty));
    }

    #[test]
    fn the_short_axis_is_kept_perpendicular_in_millimetres() {
        // Anisotropic pixels: perpendicular in the patient is not perpendicular in pixels.
        let s = Spacing { row_mm: 2.0, col_mm: 1.0, source: SpacingSource::PixelSpacing };
        let long = [Point::new(0.0, 0.0), Point::new(10.0, 5.0)]; // (10, 10) mm: 45°
        let [from, to] = perpendicular_axis(long, Point::new(5.0, 2.5), Point::new(9.0, 0.0), Some(&s));
        let (ux, uy) = s.to_mm(10.0, 5.0);
        let (dx, dy) = s.to_mm(to.x - from.x, to.y - from.y);
        assert!((ux * dx + uy * dy).abs() < 1e-9);
        assert!(dx.hypot(dy) > 0.0);
    }

    #[test]
    fn shapes_read_the_json_the_viewer_sends() {
        let shape: Shape = serde_json::from_str(r#"{"kind":"length","a":{"x":1,"y":2},"b":{"x":3,"y":4}}"#).unwrap();
        assert_eq!(shape, Shape::Length { a: Point::new(1.0, 2.0), b: Point::new(3.0, 4.0) });
    }
}
