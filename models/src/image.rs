//! Image preprocessing as the checkpoint's preprocessor_config.json says: RGB, resize (bilinear with
//! antialiasing, rounded to 8 bits as PIL does), rescale, normalize.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::config::PreprocessorConfig;
use crate::error::{EngineError, Result};

/// Largest image accepted, in pixels, before anything is allocated for it.
pub const MAX_PIXELS: u64 = 50_000_000;

pub fn load(path: &Path) -> Result<image::DynamicImage> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))?;
    let (w, h) = reader.into_dimensions().map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(EngineError::Input(format!(
            "{}: {w}×{h} pixels is over the limit of {MAX_PIXELS}",
            path.display()
        )));
    }
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))?
        .decode()
        .map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))
}

/// [3, height, width] f32 pixel values on `device`.
pub fn preprocess(img: &image::DynamicImage, cfg: &PreprocessorConfig, device: Device) -> Tensor {
    let rgb = img.to_rgb8();
    let (w, h) = (i64::from(rgb.width()), i64::from(rgb.height()));
    let mut x = Tensor::from_slice(rgb.as_raw()).view([h, w, 3]).permute([2, 0, 1]).to_kind(Kind::Float).unsqueeze(0);
    if cfg.do_resize && (h, w) != (cfg.height, cfg.width) {
        x = x.internal_upsample_bilinear2d_aa([cfg.height, cfg.width], false, None, None).round().clamp(0.0, 255.0);
    }
    if cfg.do_rescale {
        x *= cfg.rescale_factor;
    }
    if cfg.do_normalize {
        let mean = Tensor::from_slice(&cfg.image_mean).to_kind(Kind::Float).view([1, 3, 1, 1]);
        let std = Tensor::from_slice(&cfg.image_std).to_kind(Kind::Float).view([1, 3, 1, 1]);
        x = (x - mean) / std;
    }
    x.squeeze_dim(0).to_device(device)
}
