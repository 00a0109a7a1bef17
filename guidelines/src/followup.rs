//! Change of one nodule between two exams: diameters, volume, growth rate and volume doubling time
//! (VDT), with the sentence the report prints ("较2025-10-15增大2.1毫米（VDT 280天）").
//!
//! Volume is estimated from the mean diameter as a sphere, V = π/6 · d³, the equivalence Lung-RADS v2022
//! and Fleischner 2017 use between diameter and volume thresholds (6 mm ↔ 113 mm³). VDT = Δt · ln 2 /
//! ln(V₂/V₁), defined only when the volume grew.

use serde::{Deserialize, Serialize};

use measure::sphere_volume_mm3;

use crate::{Bilingual, mean_diameter, round1};

/// One measurement of the nodule on one exam.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Exam date, YYYY-MM-DD.
    pub date: String,
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub interval_days: i64,
    pub long_axis_change_mm: f64,
    pub short_axis_change_mm: f64,
    pub mean_diameter_change_mm: f64,
    pub prior_volume_mm3: f64,
    pub current_volume_mm3: f64,
    pub volume_change_percent: f64,
    /// Mean diameter change per year; None for exams on the same day.
    pub growth_mm_per_year: Option<f64>,
    /// None unless the volume grew.
    pub doubling_time_days: Option<f64>,
    /// For the report: "较2025-10-15增大2.1毫米（VDT 280天）".
    pub summary: Bilingual,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FollowupError(pub String);

impl std::fmt::Display for FollowupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FollowupError {}

pub fn compare(prior: &Measurement, current: &Measurement) -> Result<Change, FollowupError> {
    for m in [prior, current] {
        if !(m.long_axis_mm > 0.0 && m.short_axis_mm > 0.0 && m.short_axis_mm <= m.long_axis_mm) {
            return Err(FollowupError(format!(
                "{}: axes must be positive with short ≤ long (got {} × {} mm)",
                m.date, m.long_axis_mm, m.short_axis_mm
            )));
        }
    }
    let days = days_from_civil(&current.date)? - days_from_civil(&prior.date)?;
    if days < 0 {
        return Err(FollowupError(format!("prior exam {} is after the current one {}", prior.date, current.date)));
    }
    let prior_mean = mean_diameter(prior.long_axis_mm, prior.short_axis_mm);
    let current_mean = mean_diameter(current.long_axis_mm, current.short_axis_mm);
    let delta = round1(current_mean - prior_mean);
    let v1 = sphere_volume_mm3(prior.long_axis_mm, prior.short_axis_mm);
    let v2 = sphere_volume_mm3(current.long_axis_mm, current.short_axis_mm);
    let doubling_time_days = (v2 > v1 && days > 0).then(|| days as f64 * std::f64::consts::LN_2 / (v2 / v1).ln());
    let vdt = |zh: bool| match doubling_time_days {
        Some(t) if zh => format!("（VDT {}天）", t.round()),
        Some(t) => format!(" (VDT {} days)", t.round()),
        None => String::new(),
    };
    let summary = if delta.abs() < 0.05 {
        Bilingual::new(format!("较{}大小未见变化", prior.date), format!("unchanged since {}", prior.date))
    } else if delta > 0.0 {
        Bilingual::new(
            format!("较{}增大{delta:.1}毫米{}", prior.date, vdt(true)),
            format!("grown {delta:.1} mm since {}{}", prior.date, vdt(false)),
        )
    } else {
        Bilingual::new(
            format!("较{}缩小{:.1}毫米", prior.date, -delta),
            format!("shrunk {:.1} mm since {}", -delta, prior.date),
        )
    };
    Ok(Change {
        interval_days: days,
        long_axis_change_mm: round1(current.long_axis_mm - prior.long_axis_mm),
        short_axis_change_mm: round1(current.short_axis_mm - prior.short_axis_mm),
        mean_diameter_change_mm: delta,
        prior_volume_mm3: round1(v1),
        current_volume_mm3: round1(v2),
        volume_change_percent: round1((v2 / v1 - 1.0) * 100.0),
        growth_mm_per_year: (days > 0).then(|| round1((current_mean - prior_mean) * 365.25 / days as f64)),
        doubling_time_days,
        summary,
    })
}

/// Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian; H. Hinnant's days_from_civil).
fn days_from_civil(date: &str) -> Result<i64, FollowupError> {
    let bad = || FollowupError(format!("date {date:?} is not YYYY-MM-DD"));
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (y, m, d) = (parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??);
    let days_in_month = [
        31,
        if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return Err(bad());
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(date: &str, long: f64, short: f64) -> Measurement {
        Measurement { date: date.into(), long_axis_mm: long, short_axis_mm: short }
    }

    #[test]
    fn a_volume_that_doubles_in_400_days_has_a_vdt_of_400_days() {
        let d2 = 10.0 * 2f64.powf(1.0 / 3.0);
        let c = compare(&m("2025-01-01", 10.0, 10.0), &m("2026-02-05", d2, d2)).unwrap();
        assert_eq!(c.interval_days, 400);
        assert!((c.doubling_time_days.unwrap() - 400.0).abs() < 1e-6);
        assert_eq!(c.volume_change_percent, 100.0);
        assert_eq!(c.summary.zh, "较2025-01-01增大2.6毫米（VDT 400天）");
    }

    #[test]
    fn six_millimetres_is_113_cubic_millimetres_as_in_lung_rads() {
        assert_eq!(round1(sphere_volume_mm3(6.0, 6.0)), 113.1);
        assert_eq!(round1(sphere_volume_mm3(8.0, 8.0)), 268.1);
    }

    #[test]
    fn shrinking_or_unchanged_nodules_have_no_doubling_time() {
        let c = compare(&m("2025-10-15", 9.0, 7.0), &m("2026-04-15", 8.0, 6.0)).unwrap();
        assert_eq!(c.doubling_time_days, None);
        assert_eq!(c.summary.zh, "较2025-10-15缩小1.0毫米");
        let c = compare(&m("2025-10-15", 9.0, 7.0), &m("2026-04-15", 9.0, 7.0)).unwrap();
        assert_eq!(c.summary.zh, "较2025-10-15大小未见变化");
        assert_eq!(c.interval_days, 182);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(compare(&m("2025-13-01", 9.0, 7.0), &m("2026-01-01", 9.0, 7.0)).unwrap_err().0.contains("YYYY-MM-DD"));
        assert!(compare(&m("2025-02-29", 9.0, 7.0), &m("2026-01-01", 9.0, 7.0)).is_err());
        assert!(compare(&m("2026-01-01", 9.0, 7.0), &m("2025-01-01", 9.0, 7.0)).unwrap_err().0.contains("after"));
        assert!(
            compare(&m("2025-01-01", 5.0, 7.0), &m("2026-01-01", 9.0, 7.0)).unwrap_err().0.contains("short ≤ long")
        );
    }

    #[test]
    fn days_are_counted_across_leap_years() {
        assert_eq!(days_from_civil("1970-01-01").unwrap(), 0);
        assert_eq!(days_from_civil("2024-03-01").unwrap() - days_from_civil("2024-02-28").unwrap(), 2);
        assert_eq!(days_from_civil("2000-03-01").unwrap() - days_from_civil("2000-02-28").unwrap(), 2);
        assert_eq!(days_from_civil("1900-03-01").unwrap() - days_from_civil("1900-02-28").unwrap(), 1);
    }
}
