//! Guideline results computed from the report's own findings, so the category a report prints always
//! follows from the sizes, types and features written in it — in the browser while the radiologist
//! types, and again on the server when the report is saved.

use guidelines::followup::{self, Change, Measurement};
use guidelines::lung_rads::{self, Case, Exam};
use guidelines::{Axes, Nodule};

use crate::model::{Finding, GuidelineResult, Report};

/// Days per month for the Lung-RADS interval (365.25 / 12).
const DAYS_PER_MONTH: f64 = 30.4375;

impl Report {
    /// The exam's date as YYYY-MM-DD (DICOM writes YYYYMMDD).
    fn exam_date(&self) -> Option<String> {
        Some(crate::display_date(self.study.as_ref()?.study_date.as_deref()?))
    }

    /// The change of `finding` against its prior size: needs both sizes and both exam dates.
    pub fn change_of(&self, finding: &Finding) -> Option<Result<Change, String>> {
        let (prior, now, date) = (finding.prior.as_ref()?, finding.measurements.as_ref()?, self.exam_date()?);
        let current =
            Measurement { date, long_axis_mm: now.long_axis, short_axis_mm: now.short_axis.unwrap_or(now.long_axis) };
        let before = Measurement {
            date: prior.study_date.clone(),
            long_axis_mm: prior.long_axis,
            short_axis_mm: prior.short_axis.unwrap_or(prior.long_axis),
        };
        Some(followup::compare(&before, &current).map_err(|e| e.to_string()))
    }

    /// Writes each finding's change against its prior size ("较2025-10-15增大2.1毫米（VDT 280天）"), or
    /// clears it when there is nothing to compare.
    pub fn apply_followup(&mut self) {
        let changes: Vec<Option<String>> =
            self.findings.iter().map(|f| self.change_of(f).and_then(Result::ok).map(|c| c.summary.zh)).collect();
        for (finding, change) in self.findings.iter_mut().zip(changes) {
            finding.change = change;
        }
    }

    /// The Lung-RADS case of the report: every finding with a nodule type and a long axis. When a finding
    /// carries its size on the prior exam the round is a follow-up (interval from the dates, and a typed
    /// nodule without a prior size is new); otherwise it is the baseline round. The basis says which.
    pub fn lung_rads_case(&self) -> Case {
        let changes: Vec<Option<Change>> =
            self.findings.iter().map(|f| self.change_of(f).and_then(Result::ok)).collect();
        let interval_days = changes.iter().flatten().map(|c| c.interval_days).max();
        let follow_up = interval_days.is_some();
        let nodules = self
            .findings
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (kind, m) = (f.nodule_type?, f.measurements.as_ref()?);
                let location = f.location.trim();
                let prior = changes[i].as_ref().and(f.prior.as_ref()).map(|p| Axes {
                    long_axis_mm: p.long_axis,
                    short_axis_mm: p.short_axis.unwrap_or(p.long_axis),
                    solid_long_axis_mm: None,
                    solid_short_axis_mm: None,
                });
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
                    new: follow_up && prior.is_none(),
                    prior,
                    features: f.nodule_features.clone(),
                })
            })
            .collect();
        let interval_months = interval_days.map(|d| ((d as f64 / DAYS_PER_MONTH) * 10.0).round() / 10.0);
        Case { exam: Exam { baseline: !follow_up, interval_months }, nodules }
    }

    /// The Lung-RADS v2022 result for a screening exam, None otherwise: in Chinese, as the report
    /// carries it.
    pub fn lung_rads(&self) -> Option<GuidelineResult> {
        self.lung_rads_in(false)
    }

    /// The same result in English, for the web app's English page (the report itself stays Chinese).
    pub fn lung_rads_en(&self) -> Option<GuidelineResult> {
        self.lung_rads_in(true)
    }

    fn lung_rads_in(&self, english: bool) -> Option<GuidelineResult> {
        if !self.lung_cancer_screening {
            return None;
        }
        let case = self.lung_rads_case();
        let a = lung_rads::assess(&case);
        let (management, basis, round) = match (english, case.exam.interval_months) {
            (false, None) => (a.management.zh, a.basis.zh, "按基线筛查计算，未与既往检查对比".to_string()),
            (false, Some(months)) => {
                (a.management.zh, a.basis.zh, format!("与既往检查对比，间隔{months}个月；未记录既往大小的结节按新发计"))
            }
            (true, None) => (a.management.en, a.basis.en, "baseline round: not compared with a prior exam".into()),
            (true, Some(months)) => (
                a.management.en,
                a.basis.en,
                format!(
                    "follow-up round, {months} months after the prior exam; nodules without a prior size count as new"
                ),
            ),
        };
        let basis = if english { format!("{basis} ({round})") } else { format!("{basis}（{round}）") };
        Some(GuidelineResult {
            guideline: lung_rads::GUIDELINE.into(),
            category: a.category.to_string(),
            management,
            basis,
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
    fn the_english_result_is_the_same_assessment_in_english() {
        let report = Report {
            lung_cancer_screening: true,
            findings: vec![nodule("左肺下叶", NoduleType::Solid, 9.0, 8.0, &[])],
            ..Default::default()
        };
        let (zh, en) = (report.lung_rads().unwrap(), report.lung_rads_en().unwrap());
        assert_eq!((en.category.as_str(), en.guideline.as_str()), (zh.category.as_str(), zh.guideline.as_str()));
        assert!(en.management.starts_with("LDCT in 3 months"), "{}", en.management);
        assert!(en.basis.ends_with("(baseline round: not compared with a prior exam)"), "{}", en.basis);
        assert!(!en.management.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{}", en.management);
        assert_eq!(Report { lung_cancer_screening: false, ..report }.lung_rads_en(), None);
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
    fn a_prior_size_gives_the_change_and_a_follow_up_round() {
        let mut grown = nodule("右肺上叶", NoduleType::Solid, 9.0, 8.0, &[]);
        grown.prior =
            Some(crate::model::PriorSize { study_date: "2024-10-15".into(), long_axis: 7.0, short_axis: Some(6.0) });
        let mut report = Report {
            lung_cancer_screening: true,
            study: Some(crate::model::Study { study_date: Some("20251015".into()), ..Default::default() }),
            findings: vec![grown, nodule("左肺下叶", NoduleType::Solid, 5.0, 4.0, &[])],
            ..Default::default()
        };
        report.apply_followup();
        let change = report.findings[0].change.as_deref().unwrap();
        assert!(change.starts_with("较2024-10-15增大2.0毫米（VDT "), "{change}");
        assert_eq!(report.findings[1].change, None);
        let case = report.lung_rads_case();
        assert!(!case.exam.baseline);
        assert_eq!(case.exam.interval_months, Some(12.0));
        assert!(case.nodules[1].new && !case.nodules[0].new);
        // 6.5 → 8.5 mm in 12 months: growing (> 1.5 mm) and ≥ 8 mm → 4B (the new 4.5 mm nodule is 3);
        // the basis names the round.
        let result = report.lung_rads().unwrap();
        assert_eq!(result.category, "4B");
        assert!(result.basis.contains("间隔12个月"), "{}", result.basis);
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
