//! Nodule size from its axes, as the guidelines define it.

/// Mean diameter: the average of long and short axis (Lung-RADS v2022 and Fleischner 2017 both use it;
/// Lung-RADS rounds it to one decimal, Fleischner to whole millimetres).
pub fn mean_diameter(long: f64, short: f64) -> f64 {
    (long + short) / 2.0
}

/// Volume of the sphere with the mean diameter, mm³ — what volume doubling times are computed from when
/// only two axes were measured.
pub fn sphere_volume_mm3(long: f64, short: f64) -> f64 {
    std::f64::consts::PI / 6.0 * mean_diameter(long, short).powi(3)
}

/// Volume of the ellipsoid with three measured axes (long, short, and the cranio-caudal extent), mm³.
pub fn ellipsoid_volume_mm3(a: f64, b: f64, c: f64) -> f64 {
    std::f64::consts::PI / 6.0 * a * b * c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_10_mm_sphere_is_523_6_mm3() {
        assert!((sphere_volume_mm3(10.0, 10.0) - 523.598).abs() < 1e-3);
        assert!((ellipsoid_volume_mm3(10.0, 10.0, 10.0) - sphere_volume_mm3(10.0, 10.0)).abs() < 1e-9);
    }

    #[test]
    fn mean_of_23_4_and_19_1_is_21_25() {
        assert!((mean_diameter(23.4, 19.1) - 21.25).abs() < 1e-12);
    }
}
