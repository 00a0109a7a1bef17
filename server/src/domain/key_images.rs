//! Key images for the PDF report: every viewer measurement a finding links to (`measurement_ids`), drawn
//! on its image through the window it was measured in, with a caption giving the number and its basis.
//! A measurement removed from the viewer's list afterwards still illustrates the report that cites it (the
//! row is kept). One that does not exist, or an image that no longer decodes, is left out (and logged): the
//! report itself must still render.

use std::sync::Arc;

use anyhow::Context;
use image::{Rgb, RgbImage};
use measure::Point;
use measure::shape::{Outcome, Shape};
use measure::window::Window;
use report::Report;
use sqlx::Row;

use crate::domain::images::{Images, StoredInstance};
use crate::domain::pdf::KeyImage;
use crate::store::db::Pool;

/// Longest side of a key image in the PDF, pixels (about 300 dpi at the 80 mm it is printed).
const MAX_SIDE: u32 = 1024;
/// Smaller images are enlarged to at least this (whole multiples).
const MIN_SIDE: u32 = 512;
const MARK: Rgb<u8> = Rgb([255, 211, 61]);

/// The key images of `report` (a report of study `study_id`), in finding order.
pub async fn for_report(pool: &Pool, images: &Arc<Images>, study_id: i64, report: &Report) -> Vec<KeyImage> {
    let mut out = Vec::new();
    for finding in &report.findings {
        for id in finding.measurement_ids.iter().filter_map(|id| id.parse::<i64>().ok()) {
            let caption_head = format!("图{}　{}", out.len() + 1, finding.location);
            match key_image(pool, images, study_id, id, caption_head).await {
                Ok(Some(image)) => out.push(image),
                Ok(None) => {
                    tracing::warn!(measurement = id, "a finding links a measurement of no such id in the study")
                }
                Err(e) => tracing::warn!(measurement = id, error = format!("{e:#}"), "key image left out"),
            }
        }
    }
    out
}

async fn key_image(
    pool: &Pool,
    images: &Arc<Images>,
    study_id: i64,
    id: i64,
    caption_head: String,
) -> anyhow::Result<Option<KeyImage>> {
    let row = sqlx::query(
        "SELECT m.frame, m.shape, m.outcome, m.window_center, m.window_width, i.id AS instance_id, i.format, \
         i.object_sha256, i.metadata FROM measurements m JOIN instances i ON i.id = m.instance_id \
         WHERE m.id = $1 AND m.study_id = $2",
    )
    .bind(id)
    .bind(study_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let shape: Shape = serde_json::from_str(row.get("shape")).context("stored shape")?;
    let outcome: Outcome = serde_json::from_str(row.get("outcome")).context("stored outcome")?;
    let window = row
        .get::<Option<f64>, _>("window_center")
        .zip(row.get::<Option<f64>, _>("window_width"))
        .map(|(center, width)| Window { center, width });
    let frame = usize::try_from(row.get::<i64, _>("frame") - 1).context("frame number")?;
    let stored = StoredInstance {
        id: row.get("instance_id"),
        format: row.get("format"),
        object_sha256: row.get("object_sha256"),
        info: serde_json::from_str(row.get("metadata")).context("stored metadata")?,
    };
    let images = Arc::clone(images);
    tokio::task::spawn_blocking(move || {
        let decoded = images.decoded(stored)??;
        let options = imaging::render::RenderOptions { frame, window, invert: false, max_side: Some(MAX_SIDE) };
        let picture = imaging::render::to_8bit(&decoded.frames, &options, &decoded.info.file_windows())?;
        let mut rgb = picture.to_rgb8();
        // Small images (a 256-pixel CT slice) are enlarged, pixels kept square, so the marks stay fine lines.
        let longest = rgb.width().max(rgb.height());
        if longest < MIN_SIDE {
            let k = MIN_SIDE.div_ceil(longest);
            rgb =
                image::imageops::resize(&rgb, rgb.width() * k, rgb.height() * k, image::imageops::FilterType::Nearest);
        }
        let scale = f64::from(rgb.width()) / decoded.frames.columns as f64;
        draw(&mut rgb, &shape, scale);
        let caption = format!("{caption_head}：{}（{}）", outcome_zh(&outcome), basis_zh(window, &decoded.info));
        Ok(Some(KeyImage { caption, width: rgb.width(), height: rgb.height(), rgb: rgb.into_raw() }))
    })
    .await?
}

/// The number as the report prints it.
fn outcome_zh(o: &Outcome) -> String {
    let unit = if o.calibrated { "毫米" } else { "像素" };
    if let Some(l) = o.length {
        format!("{l:.1}{unit}")
    } else if let (Some(a), Some(b)) = (o.long_axis, o.short_axis) {
        format!("{a:.1}×{b:.1}{unit}")
    } else if let Some(r) = o.roi {
        format!("面积{:.1}平方{unit}，均值{:.1}，标准差{:.1}", r.area_mm2, r.mean, r.sd)
    } else if let Some(deg) = o.angle_deg {
        format!("{deg:.1}°")
    } else {
        "标注".into()
    }
}

fn basis_zh(window: Option<Window>, info: &imaging::dicom::DicomInfo) -> String {
    let mut parts = Vec::new();
    if let Some(w) = window {
        parts.push(format!("窗宽{:.0}/窗位{:.0}", w.width, w.center));
    }
    match info.spacing() {
        Some(s) => {
            let source = match s.source {
                measure::SpacingSource::PixelSpacing => "PixelSpacing".to_string(),
                other => other.caveat_zh().unwrap_or_default().to_string(),
            };
            parts.push(format!("像素间距{:.3}×{:.3}毫米，{source}", s.row_mm, s.col_mm));
        }
        None => parts.push("无像素间距".into()),
    }
    parts.join("；")
}

/// The shape burned into the picture (image pixels scaled by `scale`), lines three pixels wide.
fn draw(img: &mut RgbImage, shape: &Shape, scale: f64) {
    let p = |q: Point| ((q.x + 0.5) * scale, (q.y + 0.5) * scale);
    let segments: Vec<((f64, f64), (f64, f64))> = match *shape {
        Shape::Length { a, b } | Shape::Arrow { from: a, to: b } => vec![(p(a), p(b))],
        Shape::Bidirectional { long, short } => vec![(p(long[0]), p(long[1])), (p(short[0]), p(short[1]))],
        Shape::Angle { a, vertex, b } => vec![(p(vertex), p(a)), (p(vertex), p(b))],
        Shape::Ellipse { center, radius_x, radius_y } => {
            let (cx, cy) = p(center);
            let at = |k: u32| {
                let t = std::f64::consts::TAU * f64::from(k) / 96.0;
                (cx + radius_x * scale * t.cos(), cy + radius_y * scale * t.sin())
            };
            (0..96).map(|k| (at(k), at(k + 1))).collect()
        }
    };
    for (a, b) in segments {
        line(img, a, b);
    }
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64)) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as u32;
    for k in 0..=steps {
        let t = f64::from(k) / f64::from(steps);
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for (dx, dy) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (0, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
            let (px, py) = (x.round() as i64 + dx, y.round() as i64 + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, MARK);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_is_burned_in_along_its_pixels_and_nowhere_else() {
        let mut img = RgbImage::new(40, 20);
        draw(&mut img, &Shape::Length { a: Point::new(5.0, 10.0), b: Point::new(30.0, 10.0) }, 1.0);
        assert_eq!(*img.get_pixel(18, 10), MARK);
        assert_eq!(*img.get_pixel(18, 2), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(38, 10), Rgb([0, 0, 0]));
    }

    #[test]
    fn captions_print_millimetres_and_the_basis() {
        let o = Outcome {
            calibrated: true,
            length: None,
            long_axis: Some(11.2),
            short_axis: Some(9.8),
            mean_diameter: Some(10.5),
            roi: None,
            angle_deg: None,
        };
        assert_eq!(outcome_zh(&o), "11.2×9.8毫米");
    }
}
