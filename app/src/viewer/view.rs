//! Where the image lies in the viewport (zoom and pan), and screen points to image pixels and back.

use measure::Point;

/// The image's placement: screen = translate + scale · (image edge coordinates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub scale: f64,
    pub tx: f64,
    pub ty: f64,
}

impl View {
    /// The whole image, centred, as large as the viewport allows.
    pub fn fit(viewport: (f64, f64), image: (f64, f64)) -> View {
        let (vw, vh) = viewport;
        let (iw, ih) = image;
        if !(vw > 0.0 && vh > 0.0 && iw > 0.0 && ih > 0.0) {
            return View { scale: 1.0, tx: 0.0, ty: 0.0 };
        }
        let scale = (vw / iw).min(vh / ih);
        View { scale, tx: (vw - iw * scale) / 2.0, ty: (vh - ih * scale) / 2.0 }
    }

    /// Zoomed by `factor` about the viewport point `at`, which stays over the same image point. The
    /// scale stays within 1/50 and 50 screen pixels per image pixel.
    pub fn zoomed(self, factor: f64, at: (f64, f64)) -> View {
        let scale = (self.scale * factor).clamp(0.02, 50.0);
        let f = scale / self.scale;
        View { scale, tx: at.0 - (at.0 - self.tx) * f, ty: at.1 - (at.1 - self.ty) * f }
    }
}

/// A viewport point (pixels from the viewport's top-left) to image coordinates, where pixel centres are
/// whole numbers (the image's left edge is x = −0.5).
pub fn to_image(view: View, at: (f64, f64)) -> Point {
    Point::new((at.0 - view.tx) / view.scale - 0.5, (at.1 - view.ty) / view.scale - 0.5)
}

/// The scale bar: the roundest length in millimetres that is at least `min_px` screen pixels long, and
/// its length on screen.
pub fn scale_bar(mm_per_image_px: f64, view_scale: f64, min_px: f64) -> Option<(f64, f64)> {
    if !(mm_per_image_px > 0.0 && view_scale > 0.0) {
        return None;
    }
    let px_per_mm = view_scale / mm_per_image_px;
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        .into_iter()
        .find(|mm| mm * px_per_mm >= min_px)
        .map(|mm| (mm, mm * px_per_mm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_centres_the_image() {
        let v = View::fit((800.0, 600.0), (256.0, 256.0));
        assert_eq!(v.scale, 600.0 / 256.0);
        assert_eq!((v.tx, v.ty), (100.0, 0.0));
        // The top-left pixel's centre is half a screen pixel-width in.
        let p = to_image(v, (100.0 + 0.5 * v.scale, 0.5 * v.scale));
        assert!(p.x.abs() < 1e-12 && p.y.abs() < 1e-12);
    }

    #[test]
    fn zoom_keeps_the_point_under_the_cursor() {
        let v = View::fit((800.0, 600.0), (256.0, 256.0));
        let at = (321.0, 123.0);
        let before = to_image(v, at);
        let after = to_image(v.zoomed(1.7, at), at);
        assert!((before.x - after.x).abs() < 1e-9 && (before.y - after.y).abs() < 1e-9);
        assert_eq!(v.zoomed(1e9, at).scale, 50.0);
    }

    #[test]
    fn the_scale_bar_is_a_round_length() {
        // 0.7 mm pixels shown 2 screen pixels each: 10 mm is 28.6 px, 50 mm 142.9 px.
        let (mm, px) = scale_bar(0.7, 2.0, 60.0).unwrap();
        assert_eq!(mm, 50.0);
        assert!((px - 50.0 / 0.35).abs() < 1e-9);
        assert_eq!(scale_bar(0.0, 2.0, 60.0), None);
    }
}
