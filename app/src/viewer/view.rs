//! Where the image lies in the viewport (zoom and pan), and screen points to image pixels and back.

use measure::Point;

/// The image's placement: screen = translate + scale · (image edge coordinates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub scale: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Default for View {
    fn default() -> View {
        View { scale: 1.0, tx: 0.0, ty: 0.0 }
    }
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

/// The user's zoom and pan on top of the fitted view: what two viewers share while comparing a prior
/// study, so each image keeps its own fit (sizes differ) and both zoom and pan together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Times the fitted scale.
    pub zoom: f64,
    /// Screen pixels moved.
    pub dx: f64,
    pub dy: f64,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement { zoom: 1.0, dx: 0.0, dy: 0.0 }
    }
}

impl Placement {
    /// The view: `fitted` zoomed about the viewport's centre `c`, then moved.
    pub fn apply(self, fitted: View, c: (f64, f64)) -> View {
        View {
            scale: fitted.scale * self.zoom,
            tx: c.0 + (fitted.tx - c.0) * self.zoom + self.dx,
            ty: c.1 + (fitted.ty - c.1) * self.zoom + self.dy,
        }
    }

    /// The placement that turns `fitted` into `view` (the inverse of [`Placement::apply`]).
    pub fn of(view: View, fitted: View, c: (f64, f64)) -> Placement {
        let zoom = view.scale / fitted.scale;
        Placement {
            zoom,
            dx: view.tx - (c.0 + (fitted.tx - c.0) * zoom),
            dy: view.ty - (c.1 + (fitted.ty - c.1) * zoom),
        }
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
    fn a_placement_zooms_both_images_about_the_same_screen_point() {
        let (vp, c) = ((800.0, 600.0), (400.0, 300.0));
        let (big, small) = (View::fit(vp, (3000.0, 3000.0)), View::fit(vp, (256.0, 256.0)));
        let at = (500.0, 200.0);
        let zoomed = Placement::default().apply(big, c).zoomed(2.0, at);
        let placement = Placement::of(zoomed, big, c);
        assert!((placement.apply(big, c).tx - zoomed.tx).abs() < 1e-9);
        // The same placement on the other image: the same relative point of both stays under the cursor.
        let rel = |v: View, size: f64| ((at.0 - v.tx) / v.scale / size, (at.1 - v.ty) / v.scale / size);
        let (a, b) = (rel(placement.apply(big, c), 3000.0), rel(placement.apply(small, c), 256.0));
        assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9);
        assert_eq!(Placement::default().apply(small, c), small);
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
