//! Every row of Fleischner 2017 Table 1 (solid and subsolid), and its scope conditions.

use guidelines::fleischner::{Assessment, Case, Group, Patient, assess};
use guidelines::{Axes, Nodule, NoduleType};

fn nodule(id: &str, t: NoduleType, d: f64) -> Nodule {
    Nodule {
        id: id.into(),
        nodule_type: t,
        axes: Axes { long_axis_mm: d, short_axis_mm: d, ..Axes::default() },
        new: false,
        prior: None,
        features: vec![],
    }
}

fn adult(high_risk: Option<bool>) -> Patient {
    Patient { age: Some(58.0), high_risk, ..Patient::default() }
}

fn run(patient: Patient, nodules: Vec<Nodule>) -> Assessment {
    assess(&Case { patient, nodules })
}

fn management(a: &Assessment, group: Group) -> String {
    a.recommendations.iter().find(|r| r.group == group).unwrap().management.en.clone()
}

#[test]
fn single_solid_rows_for_low_and_high_risk() {
    let rows = [
        (5.0, "Low risk: No routine follow-up", "High risk: Optional CT at 12 months"),
        (
            6.0,
            "Low risk: CT at 6–12 months, then consider CT at 18–24 months",
            "High risk: CT at 6–12 months, then CT at 18–24 months",
        ),
        (
            8.0,
            "Low risk: CT at 6–12 months, then consider CT at 18–24 months",
            "High risk: CT at 6–12 months, then CT at 18–24 months",
        ),
        (
            9.0,
            "Low risk: Consider CT at 3 months, PET/CT, or tissue sampling",
            "High risk: Consider CT at 3 months, PET/CT, or tissue sampling",
        ),
    ];
    for (d, low, high) in rows {
        let n = || vec![nodule("a", NoduleType::Solid, d)];
        assert_eq!(management(&run(adult(Some(false)), n()), Group::Solid), low, "{d} mm low risk");
        assert_eq!(management(&run(adult(Some(true)), n()), Group::Solid), high, "{d} mm high risk");
    }
}

#[test]
fn multiple_solid_rows_use_the_largest_nodule() {
    let nodules = |d: f64| vec![nodule("small", NoduleType::Solid, 3.0), nodule("big", NoduleType::Solid, d)];
    let a = run(adult(Some(false)), nodules(5.0));
    assert_eq!(management(&a, Group::Solid), "Low risk: No routine follow-up");
    assert!(a.recommendations[0].multiple);
    let a = run(adult(Some(true)), nodules(7.0));
    assert_eq!(management(&a, Group::Solid), "High risk: CT at 3–6 months, then at 18–24 months");
    assert_eq!(a.recommendations[0].guiding_nodule, "big");
    let a = run(adult(Some(false)), nodules(10.0));
    assert_eq!(management(&a, Group::Solid), "Low risk: CT at 3–6 months, then consider CT at 18–24 months");
}

#[test]
fn unknown_risk_gives_both_recommendations() {
    let a = run(adult(None), vec![nodule("a", NoduleType::Solid, 7.0)]);
    let m = management(&a, Group::Solid);
    assert!(m.starts_with("Low risk: CT at 6–12 months") && m.contains("high risk: CT at 6–12 months, then CT"), "{m}");
}

#[test]
fn size_is_the_mean_diameter_rounded_to_the_nearest_millimetre() {
    // (6.0 + 5.0) / 2 = 5.5 → 6 mm → the 6–8 mm row.
    let mut n = nodule("a", NoduleType::Solid, 6.0);
    n.axes.short_axis_mm = 5.0;
    let a = run(adult(Some(false)), vec![n]);
    assert_eq!(a.recommendations[0].mean_diameter_mm, 6.0);
    assert!(management(&a, Group::Solid).contains("6–12 months"));
}

#[test]
fn subsolid_rows() {
    let single = |t, d| run(adult(None), vec![nodule("g", t, d)]);
    assert_eq!(management(&single(NoduleType::GroundGlass, 5.0), Group::Subsolid), "No routine follow-up");
    assert_eq!(
        management(&single(NoduleType::GroundGlass, 6.0), Group::Subsolid),
        "CT at 6–12 months to confirm persistence, then CT every 2 years until 5 years"
    );
    assert_eq!(management(&single(NoduleType::PartSolid, 5.0), Group::Subsolid), "No routine follow-up");
    assert!(management(&single(NoduleType::PartSolid, 8.0), Group::Subsolid).starts_with(
        "CT at 3–6 months to confirm persistence; if unchanged and solid component remains < 6 mm, annual CT"
    ));
    let multiple =
        |d| run(adult(None), vec![nodule("g1", NoduleType::GroundGlass, 4.0), nodule("g2", NoduleType::PartSolid, d)]);
    assert_eq!(
        management(&multiple(5.0), Group::Subsolid),
        "CT at 3–6 months; if stable, consider CT at 2 and 4 years"
    );
    assert_eq!(
        management(&multiple(7.0), Group::Subsolid),
        "CT at 3–6 months; subsequent management based on the most suspicious nodule(s)"
    );
}

#[test]
fn solid_and_subsolid_nodules_each_get_their_row_and_benign_ones_none() {
    let mut calcified = nodule("c", NoduleType::Solid, 12.0);
    calcified.features = vec!["benign_calcification".into()];
    let a = run(adult(Some(false)), vec![calcified, nodule("g", NoduleType::GroundGlass, 7.0)]);
    assert_eq!(a.recommendations.len(), 1);
    assert_eq!(a.recommendations[0].group, Group::Subsolid);
    assert!(a.recommendations[0].basis.zh.contains("Fleischner 2017 表1 亚实性结节：单发磨玻璃 ≥6毫米"));
}

#[test]
fn scope_conditions_are_stated() {
    let n = || vec![nodule("a", NoduleType::Solid, 7.0)];
    for (patient, why) in [
        (Patient { age: Some(30.0), ..Patient::default() }, "under 35"),
        (Patient { age: Some(60.0), screening: true, ..Patient::default() }, "screening"),
        (Patient { age: Some(60.0), known_cancer: true, ..Patient::default() }, "known cancer"),
        (Patient { age: Some(60.0), immunocompromised: true, ..Patient::default() }, "immunocompromised"),
    ] {
        let a = run(patient, n());
        assert!(!a.applicable && a.recommendations.is_empty());
        assert!(a.scope.en.contains(why), "{}", a.scope.en);
    }
    let a = run(Patient::default(), n());
    assert!(a.applicable);
    assert!(a.scope.zh.contains("未提供年龄"), "{}", a.scope.zh);
}
