//! Every nodule row of the ACR Lung-RADS v2022 assessment table, at and around its size boundaries.

use guidelines::lung_rads::{Case, Category, Exam, Status, assess};
use guidelines::{Axes, Nodule, NoduleType};

use Category::*;

fn nodule(t: NoduleType, long: f64, short: f64) -> Nodule {
    Nodule {
        id: "n1".into(),
        nodule_type: t,
        axes: Axes { long_axis_mm: long, short_axis_mm: short, ..Axes::default() },
        new: false,
        prior: None,
        features: vec![],
    }
}

fn solid(d: f64) -> Nodule {
    nodule(NoduleType::Solid, d, d)
}

fn part_solid(total: f64, solid: f64) -> Nodule {
    let mut n = nodule(NoduleType::PartSolid, total, total);
    n.axes.solid_long_axis_mm = Some(solid);
    n.axes.solid_short_axis_mm = Some(solid);
    n
}

fn ggn(d: f64) -> Nodule {
    nodule(NoduleType::GroundGlass, d, d)
}

fn with(mut n: Nodule, features: &[&str]) -> Nodule {
    n.features = features.iter().map(|f| f.to_string()).collect();
    n
}

fn new(mut n: Nodule) -> Nodule {
    n.new = true;
    n
}

fn prior(mut n: Nodule, long: f64, short: f64) -> Nodule {
    n.prior = Some(Axes { long_axis_mm: long, short_axis_mm: short, ..Axes::default() });
    n
}

const BASELINE: Exam = Exam { baseline: true, interval_months: None };

fn follow_up(months: f64) -> Exam {
    Exam { baseline: false, interval_months: Some(months) }
}

fn category(exam: Exam, n: Nodule) -> Category {
    assess(&Case { exam, nodules: vec![n] }).category
}

#[test]
fn category_1_no_nodules_benign_calcification_or_fat() {
    assert_eq!(assess(&Case { exam: BASELINE, nodules: vec![] }).category, C1);
    assert_eq!(category(BASELINE, with(solid(20.0), &["benign_calcification"])), C1);
    assert_eq!(category(BASELINE, with(solid(12.0), &["fat"])), C1);
}

#[test]
fn solid_nodules_at_baseline() {
    let rows = [(5.9, C2), (6.0, C3), (7.9, C3), (8.0, C4A), (14.9, C4A), (15.0, C4B), (30.0, C4B)];
    for (d, expected) in rows {
        assert_eq!(category(BASELINE, solid(d)), expected, "baseline solid {d} mm");
    }
}

#[test]
fn new_solid_nodules() {
    let rows = [(3.9, C2), (4.0, C3), (5.9, C3), (6.0, C4A), (7.9, C4A), (8.0, C4B)];
    for (d, expected) in rows {
        assert_eq!(category(follow_up(12.0), new(solid(d))), expected, "new solid {d} mm");
    }
}

#[test]
fn growing_solid_nodules() {
    // Growth is > 1.5 mm in mean diameter.
    assert_eq!(category(follow_up(12.0), prior(solid(7.0), 5.4, 5.4)), C4A); // +1.6, < 8 mm
    assert_eq!(category(follow_up(12.0), prior(solid(9.0), 7.0, 7.0)), C4B); // +2.0, ≥ 8 mm
    // +1.5 exactly is not growth: stable 7 mm at 12 months steps 3 → 2.
    let stable = assess(&Case { exam: follow_up(12.0), nodules: vec![prior(solid(7.0), 5.5, 5.5)] });
    assert_eq!(stable.nodules[0].status, Status::Stable);
    assert_eq!(stable.category, C2);
}

#[test]
fn smooth_perifissural_or_juxtapleural_solid_under_10_mm_is_benign() {
    assert_eq!(category(BASELINE, with(solid(9.9), &["perifissural"])), C2);
    assert_eq!(category(follow_up(12.0), new(with(solid(9.0), &["juxtapleural"]))), C2);
    assert_eq!(category(BASELINE, with(solid(10.0), &["perifissural"])), C4A);
    // Spiculated is not smooth: sized as a solid nodule, then 4X.
    assert_eq!(category(BASELINE, with(solid(9.0), &["perifissural", "spiculation"])), C4X);
}

#[test]
fn part_solid_nodules_at_baseline_by_solid_component() {
    assert_eq!(category(BASELINE, part_solid(5.9, 3.0)), C2);
    assert_eq!(category(BASELINE, part_solid(6.0, 5.9)), C3);
    assert_eq!(category(BASELINE, part_solid(12.0, 6.0)), C4A);
    assert_eq!(category(BASELINE, part_solid(12.0, 7.9)), C4A);
    assert_eq!(category(BASELINE, part_solid(12.0, 8.0)), C4B);
}

#[test]
fn new_or_growing_part_solid_nodules() {
    assert_eq!(category(follow_up(12.0), new(part_solid(5.9, 2.0))), C3);
    assert_eq!(category(follow_up(12.0), new(part_solid(10.0, 3.9))), C4A);
    assert_eq!(category(follow_up(12.0), new(part_solid(10.0, 4.0))), C4B);
    assert_eq!(category(follow_up(12.0), prior(part_solid(12.0, 3.0), 10.0, 10.0)), C4A);
    assert_eq!(category(follow_up(12.0), prior(part_solid(12.0, 5.0), 10.0, 10.0)), C4B);
}

#[test]
fn non_solid_nodules() {
    assert_eq!(category(BASELINE, ggn(29.9)), C2);
    assert_eq!(category(BASELINE, ggn(30.0)), C3);
    assert_eq!(category(follow_up(12.0), new(ggn(31.0))), C3);
    assert_eq!(category(follow_up(12.0), new(ggn(12.0))), C2);
    assert_eq!(category(follow_up(12.0), prior(ggn(20.0), 15.0, 15.0)), C2); // growing < 30 mm
    assert_eq!(category(follow_up(12.0), ggn(35.0)), C2); // ≥ 30 mm stable
    assert_eq!(category(follow_up(12.0), prior(ggn(34.0), 31.0, 31.0)), C2); // ≥ 30 mm slowly growing
}

#[test]
fn airway_nodules() {
    assert_eq!(category(BASELINE, with(solid(6.0), &["endobronchial"])), C4A);
    assert_eq!(category(follow_up(3.0), new(with(solid(6.0), &["endobronchial"]))), C4A);
    assert_eq!(category(follow_up(3.0), with(solid(6.0), &["endobronchial"])), C4B);
    assert_eq!(category(BASELINE, with(solid(6.0), &["endobronchial", "subsegmental"])), C2);
}

#[test]
fn stepped_management_for_stable_nodules() {
    // 4A-size solid nodule unchanged at 3 months → 3; at 1 month nothing changes yet.
    assert_eq!(category(follow_up(3.0), solid(10.0)), C3);
    assert_eq!(category(follow_up(1.0), solid(10.0)), C4A);
    // 3-size solid nodule unchanged at 6 months → 2.
    assert_eq!(category(follow_up(6.0), solid(7.0)), C2);
    // 4B stays 4B without a benign work-up.
    assert_eq!(category(follow_up(3.0), solid(16.0)), C4B);
}

#[test]
fn category_4x_needs_category_3_or_4_and_a_suspicious_feature() {
    assert_eq!(category(BASELINE, with(solid(7.0), &["spiculation"])), C4X);
    assert_eq!(category(BASELINE, with(solid(20.0), &["lymphadenopathy"])), C4X);
    assert_eq!(category(BASELINE, with(solid(4.0), &["spiculation"])), C2);
}

#[test]
fn mean_diameter_is_rounded_to_one_decimal_before_categorising() {
    // (7.9 + 8.0) / 2 = 7.95 → 8.0 → 4A, not 3.
    assert_eq!(category(BASELINE, nodule(NoduleType::Solid, 8.0, 7.9)), C4A);
    let a = assess(&Case { exam: BASELINE, nodules: vec![nodule(NoduleType::Solid, 8.0, 7.9)] });
    assert_eq!(a.nodules[0].mean_diameter_mm, 8.0);
}

#[test]
fn the_exam_takes_the_highest_nodule_and_cites_it() {
    let mut small = solid(5.0);
    small.id = "右肺上叶".into();
    let mut large = solid(16.0);
    large.id = "左肺下叶".into();
    let a = assess(&Case { exam: BASELINE, nodules: vec![small, large] });
    assert_eq!(a.category, C4B);
    assert!(a.basis.zh.contains("左肺下叶") && a.basis.zh.contains("Lung-RADS v2022 类别4B"), "{}", a.basis.zh);
    assert!(a.basis.en.contains("≥ 15 mm at baseline"), "{}", a.basis.en);
    assert!(a.management.zh.contains("诊断性胸部CT"));
    assert_eq!(a.nodules.len(), 2);
}

#[test]
fn the_cli_input_shape_parses_and_the_output_names_category_management_and_basis() {
    let input = r#"{"exam": {"baseline": false, "interval_months": 12},
        "nodules": [{"id": "RUL-1", "type": "part_solid", "long_axis_mm": 14, "short_axis_mm": 10,
                     "solid_long_axis_mm": 6, "solid_short_axis_mm": 4, "prior": {"long_axis_mm": 11, "short_axis_mm": 9},
                     "features": ["spiculation"]}]}"#;
    let case: Case = serde_json::from_str(input).unwrap();
    let out = serde_json::to_value(assess(&case)).unwrap();
    // Growing (+2.0 mm) part-solid with a 5 mm solid component → 4B, spiculated → 4X.
    assert_eq!(out["category"], "4X");
    assert_eq!(out["nodules"][0]["status"], "growing");
    assert_eq!(out["nodules"][0]["growth_mm"], 2.0);
    assert!(out["basis"]["zh"].as_str().unwrap().contains("毛刺征"));
    assert!(out["management"]["en"].as_str().unwrap().starts_with("Diagnostic chest CT"));
}
