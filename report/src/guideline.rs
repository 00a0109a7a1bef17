//! Guideline results computed from the report's own findings, so the category a report prints always
//! follows from the sizes, types and features written in it — in the browser while the radiologist
//! types, and again on the server when the report is saved.

use guidelines::lung_rads::{self, Case, Exam};
use guidelines::{Axes, Nodule};

use crate::model::{GuidelineResult, Report};

impl Report {
    /// The Lung-RADS case of the report: every finding with a nodule type and a long axis. Without a
    /// prior exam in the report the screening round is taken as baseline, and the basis says so.
    pub fn lung_rads_case(&self) -> Case {
        let nodules = self
            .findings
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (kind, m) = (f.nodule_type?, f.measurements.as_ref()?);
                let location = f.location.trim();
                Some(Nodule {
                    id: if location.is_empty() { format!("第{}条", i + 1) } else { location.to_string() },
                    nodule_type: kind,
                    axes: Axes {
                        long_axis_mm: m.long_axis,
                        // One axis measured: the mean diameter is that axis.
                        short_axis_mm: m.short_axis.unwrap_or(m.long_axis),
                        solid_long_axis_mm: m.solid_long_axis,
                        solid_short_axis_mm: m.solid_short_axis,
                    },
                    new: false,
                    prior: None,
                    features: f.nodule_features.clone(),
                })
            })
            .collect();
        Case { exam: Exam { baseline: true, interval_months: None }, nodules }
    }

    /// The Lung-RADS v2022 result for a screening exam, None otherwise.
    pub fn lung_rads(&self) -> Option<GuidelineResult> {
        if !self.lung_cancer_screening {
            return None;
        }
        let a = lung_rads::assess(&self.lung_rads_case());
        Some(GuidelineResult {
            guideline: lung_rads::GUIDELINE.into(),
            category: a.category.to_string(),
            management: a.management.zh,
            basis: format!("{}（按基线筛查计算，未与既往检查对比）", a.basis.zh),
        })
    }

    /// Replaces whatever Lung-RADS result the report carries with the one its findings give (none when
    /// the exam is not a screening exam). Other guidelines' results are kept.
    pub fn apply_lung_rads(&mut self) {
        self.guideline_results.retain(|g| g.guideline != lung_rads::GUIDELINE);
        if let Some(result) = self.lung_rads() {
            self.guideline_results.insert(0, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, Measurements};
    use guidelines::NoduleType;

    fn nodule(location: &str, kind: NoduleType, long: f64, short: f64, features: &[&str]) -> Finding {
        Finding {
            location: location.into(),
            feature: "结节".into(),
            measurements: Some(Measurements { long_axis: long, short_axis: Some(short), ..Default::default() }),
            nodule_type: Some(kind),
            nodule_features: features.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_exam_takes_its_highest_nodule_and_replaces_a_stale_result() {
        let mut report = Report {
            lung_cancer_screening: true,
            findings: vec![
                nodule("右肺上叶", NoduleType::Solid, 7.0, 5.0, &[]), // 6.0 mm at baseline → 3
                nodule("左肺下叶", NoduleType::Solid, 9.0, 8.0, &[]), // 8.5 mm → 4A
                Finding { location: "心影".into(), feature: "不大".into(), ..Default::default() },
            ],
            guideline_results: vec![GuidelineResult {
                guideline: "Lung-RADS v2022".into(),
                category: "1".into(),
                management: "stale".into(),
                basis: "typed by hand".into(),
            }],
            ..Default::default()
        };
        report.apply_lung_rads();
        assert_eq!(report.guideline_results.len(), 1);
        let g = &report.guideline_results[0];
        assert_eq!(g.category, "4A");
        assert!(g.basis.contains("左肺下叶") && g.basis.contains("按基线筛查计算"), "{}", g.basis);
        assert!(g.management.contains("3个月"), "{}", g.management);
    }

    #[test]
    fn spiculation_on_a_category_4_nodule_makes_4x() {
        let report = Report {
            lung_cancer_screening: true,
            findings: vec![nodule("右肺上叶", NoduleType::Solid, 10.0, 9.0, &["spiculation"])],
            ..Default::default()
        };
        assert_eq!(report.lung_rads().unwrap().category, "4X");
    }

    #[test]
    fn not_a_screening_exam_no_lung_rads_and_no_nodules_category_1() {
        let mut report =
            Report { findings: vec![nodule("右肺上叶", NoduleType::Solid, 10.0, 9.0, &[])], ..Default::default() };
        report.apply_lung_rads();
        assert!(report.guideline_results.is_empty());
        let screening = Report { lung_cancer_screening: true, ..Default::default() };
        assert_eq!(screening.lung_rads().unwrap().category, "1");
    }
}
