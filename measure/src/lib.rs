//! Image maths shared by the server and the browser's viewer, so a length, an HU mean or a rendered
//! window is the same number on both sides.
//!
//! Coordinates are in pixels of the original image: `x` along a row (columns), `y` down the rows, pixel
//! centres at integer coordinates. Millimetres come from a [`Spacing`], whose source says whether the
//! number is calibrated at the patient (PixelSpacing) or only at the detector (ImagerPixelSpacing).

pub mod axes;
pub mod geometry;
pub mod roi;
pub mod segment;
pub mod shape;
pub mod window;

pub use axes::{mean_diameter, sphere_volume_mm3};
pub use geometry::{Point, Spacing, SpacingSource};
