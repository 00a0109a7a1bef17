//! Lung nodule guidelines as deterministic rules. Every result names the rule that fired, in Chinese and
//! English, so the report can print "▲ 依据：Lung-RADS v2022 …" next to a strong conclusion.
//!
//! - [`lung_rads`]: ACR Lung-RADS v2022 for lung cancer screening CT.
//! - [`fleischner`]: Fleischner Society 2017 for incidental pulmonary nodules.
//! - [`followup`]: change of a nodule between two exams (growth, volume doubling time).
//!
//! Sizes follow the guidelines: the mean of long and short axis. Lung-RADS rounds it to one decimal;
//! Fleischner to the nearest millimetre.

pub mod fleischner;
pub mod followup;
pub mod lung_rads;

use serde::{Deserialize, Serialize};

/// Nodule attenuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoduleType {
    Solid,
    PartSolid,
    GroundGlass,
}

/// Axes of a nodule (and of its solid component, for part-solid nodules), in millimetres.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Axes {
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solid_long_axis_mm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solid_short_axis_mm: Option<f64>,
}

/// One nodule as the CLI and the report pass it in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nodule {
    pub id: String,
    #[serde(rename = "type")]
    pub nodule_type: NoduleType,
    #[serde(flatten)]
    pub axes: Axes,
    /// Not seen on the prior exam.
    #[serde(default)]
    pub new: bool,
    /// The same nodule on the prior exam, when there is one.
    #[serde(default)]
    pub prior: Option<Axes>,
    /// `spiculation`, `perifissural`, `juxtapleural`, `benign_calcification`, `fat`, `endobronchial`,
    /// `subsegmental` (with `endobronchial`), `lymphadenopathy`.
    #[serde(default)]
    pub features: Vec<String>,
}

impl Nodule {
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

/// Mean of long and short axis: one definition for the guidelines, the viewer and the report.
pub use measure::mean_diameter;

/// Rounded to one decimal, half up, as Lung-RADS v2022 reports mean diameters. The nudge makes 6.05
/// (stored as 6.04999…) round to 6.1 as it does on paper; inputs have at most two decimals.
pub fn round1(x: f64) -> f64 {
    (x * 10.0 + 1e-6).round() / 10.0
}

/// Text in both languages: the report is Chinese, integrators often read English.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self { zh: zh.into(), en: en.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_diameters_round_half_up_to_one_decimal() {
        assert_eq!(round1(mean_diameter(6.0, 6.1)), 6.1); // 6.05
        assert_eq!(round1(mean_diameter(7.9, 8.0)), 8.0); // 7.95
        assert_eq!(round1(mean_diameter(5.9, 5.9)), 5.9);
        assert_eq!(round1(mean_diameter(14.94, 15.0)), 15.0); // 14.97
    }
}
