//! Fleischner Society 2017 guidelines for incidental pulmonary nodules found on CT (MacMahon et al.,
//! Radiology 2017;284:228–243), Table 1: solid nodules, and subsolid nodules.
//!
//! Scope, as the guideline states it: adults aged 35 or more, incidental findings — not lung cancer
//! screening (use Lung-RADS), not patients with known cancer, not immunocompromised patients.
//! Size is the mean of long and short axis rounded to the nearest millimetre; with several nodules the
//! largest (most suspicious) one guides management. Benign calcification or fat needs no follow-up.

use serde::{Deserialize, Serialize};

use crate::{Bilingual, Nodule, NoduleType, mean_diameter};

pub const GUIDELINE: &str = "Fleischner 2017";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    #[serde(default)]
    pub age: Option<f64>,
    /// Smoking history, exposures, family history…: the guideline's high-risk group. Unknown → both
    /// recommendations are given.
    #[serde(default)]
    pub high_risk: Option<bool>,
    #[serde(default)]
    pub screening: bool,
    #[serde(default)]
    pub known_cancer: bool,
    #[serde(default)]
    pub immunocompromised: bool,
}

/// Input of `medgemma-x guideline fleischner`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    #[serde(default)]
    pub patient: Patient,
    #[serde(default)]
    pub nodules: Vec<Nodule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Solid,
    Subsolid,
}

/// The row of Table 1 that applies to one group of nodules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub group: Group,
    /// The nodule that guides management (largest mean diameter).
    pub guiding_nodule: String,
    pub mean_diameter_mm: f64,
    pub multiple: bool,
    pub management: Bilingual,
    pub basis: Bilingual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub guideline: String,
    pub applicable: bool,
    /// Why the guideline applies or not, and what was assumed.
    pub scope: Bilingual,
    pub recommendations: Vec<Recommendation>,
}

pub fn assess(case: &Case) -> Assessment {
    let p = &case.patient;
    let out_of_scope = |zh: &str, en: &str| Assessment {
        guideline: GUIDELINE.into(),
        applicable: false,
        scope: Bilingual::new(format!("不适用Fleischner 2017：{zh}"), format!("Fleischner 2017 does not apply: {en}")),
        recommendations: vec![],
    };
    if p.screening {
        return out_of_scope("肺癌筛查人群请用Lung-RADS", "lung cancer screening (use Lung-RADS)");
    }
    if p.known_cancer {
        return out_of_scope("已知恶性肿瘤患者", "patient with known cancer");
    }
    if p.immunocompromised {
        return out_of_scope("免疫功能低下患者", "immunocompromised patient");
    }
    if let Some(age) = p.age.filter(|&a| a < 35.0) {
        return out_of_scope(&format!("年龄{age}岁，<35岁"), &format!("age {age}, under 35"));
    }
    let scope = match p.age {
        Some(age) => Bilingual::new(
            format!("适用：{age}岁偶发结节，非筛查，无已知肿瘤，非免疫低下"),
            format!("Applies: incidental nodule, age {age}, not screening, no known cancer, not immunocompromised"),
        ),
        None => Bilingual::new(
            "适用（未提供年龄，按≥35岁处理）：偶发结节，非筛查，无已知肿瘤，非免疫低下",
            "Applies (age not given, taken as ≥ 35): incidental nodule, not screening, no known cancer, not immunocompromised",
        ),
    };

    let relevant: Vec<&Nodule> =
        case.nodules.iter().filter(|n| !n.has("benign_calcification") && !n.has("fat")).collect();
    let solid: Vec<&Nodule> = relevant.iter().copied().filter(|n| n.nodule_type == NoduleType::Solid).collect();
    let subsolid: Vec<&Nodule> = relevant.iter().copied().filter(|n| n.nodule_type != NoduleType::Solid).collect();
    let mut recommendations = Vec::new();
    if let Some(r) = solid_row(&solid, p.high_risk) {
        recommendations.push(r);
    }
    if let Some(r) = subsolid_row(&subsolid) {
        recommendations.push(r);
    }
    Assessment { guideline: GUIDELINE.into(), applicable: true, scope, recommendations }
}

/// Mean diameter rounded to the nearest millimetre, as Fleischner 2017 measures.
fn size(n: &Nodule) -> f64 {
    (mean_diameter(n.axes.long_axis_mm, n.axes.short_axis_mm) + 1e-6).round()
}

fn largest<'a>(nodules: &[&'a Nodule]) -> Option<&'a Nodule> {
    nodules.iter().copied().max_by(|a, b| size(a).total_cmp(&size(b)))
}

fn solid_row(nodules: &[&Nodule], high_risk: Option<bool>) -> Option<Recommendation> {
    let guide = largest(nodules)?;
    let d = size(guide);
    let multiple = nodules.len() > 1;
    // (low-risk, high-risk) management of the row, and its wording.
    let (row_zh, row_en, low, high) = match (multiple, d) {
        (false, d) if d < 6.0 => (
            "单发实性 <6毫米",
            "single solid < 6 mm",
            ("无需常规随访", "No routine follow-up"),
            ("可选：12个月时CT", "Optional CT at 12 months"),
        ),
        (false, d) if d <= 8.0 => (
            "单发实性 6–8毫米",
            "single solid 6–8 mm",
            ("6–12个月CT，之后考虑18–24个月CT", "CT at 6–12 months, then consider CT at 18–24 months"),
            ("6–12个月CT，之后18–24个月CT", "CT at 6–12 months, then CT at 18–24 months"),
        ),
        (false, _) => (
            "单发实性 >8毫米",
            "single solid > 8 mm",
            ("考虑3个月CT、PET/CT或组织取样", "Consider CT at 3 months, PET/CT, or tissue sampling"),
            ("考虑3个月CT、PET/CT或组织取样", "Consider CT at 3 months, PET/CT, or tissue sampling"),
        ),
        (true, d) if d < 6.0 => (
            "多发实性 <6毫米",
            "multiple solid < 6 mm",
            ("无需常规随访", "No routine follow-up"),
            ("可选：12个月时CT", "Optional CT at 12 months"),
        ),
        (true, d) if d <= 8.0 => (
            "多发实性 6–8毫米",
            "multiple solid 6–8 mm",
            ("3–6个月CT，之后考虑18–24个月CT", "CT at 3–6 months, then consider CT at 18–24 months"),
            ("3–6个月CT，之后18–24个月CT", "CT at 3–6 months, then at 18–24 months"),
        ),
        (true, _) => (
            "多发实性 >8毫米",
            "multiple solid > 8 mm",
            ("3–6个月CT，之后考虑18–24个月CT", "CT at 3–6 months, then consider CT at 18–24 months"),
            ("3–6个月CT，之后18–24个月CT", "CT at 3–6 months, then at 18–24 months"),
        ),
    };
    let management = match high_risk {
        Some(false) => Bilingual::new(format!("低危：{}", low.0), format!("Low risk: {}", low.1)),
        Some(true) => Bilingual::new(format!("高危：{}", high.0), format!("High risk: {}", high.1)),
        None => Bilingual::new(
            format!("低危：{}；高危：{}", low.0, high.0),
            format!("Low risk: {}; high risk: {}", low.1, high.1),
        ),
    };
    Some(Recommendation {
        group: Group::Solid,
        guiding_nodule: guide.id.clone(),
        mean_diameter_mm: d,
        multiple,
        management,
        basis: Bilingual::new(
            format!("Fleischner 2017 表1 实性结节：{row_zh}（{}，平均直径{d:.0}毫米）", guide.id),
            format!("Fleischner 2017 Table 1, solid nodules: {row_en} ({}, mean diameter {d:.0} mm)", guide.id),
        ),
    })
}

fn subsolid_row(nodules: &[&Nodule]) -> Option<Recommendation> {
    let guide = largest(nodules)?;
    let d = size(guide);
    let multiple = nodules.len() > 1;
    let part_solid = guide.nodule_type == NoduleType::PartSolid;
    let (row_zh, row_en, zh, en) = match (multiple, part_solid, d < 6.0) {
        (false, false, true) => {
            ("单发磨玻璃 <6毫米", "single ground glass < 6 mm", "无需常规随访", "No routine follow-up")
        }
        (false, false, false) => (
            "单发磨玻璃 ≥6毫米",
            "single ground glass ≥ 6 mm",
            "6–12个月CT确认是否持续存在，之后每2年CT直至5年",
            "CT at 6–12 months to confirm persistence, then CT every 2 years until 5 years",
        ),
        (false, true, true) => {
            ("单发部分实性 <6毫米", "single part-solid < 6 mm", "无需常规随访", "No routine follow-up")
        }
        (false, true, false) => (
            "单发部分实性 ≥6毫米",
            "single part-solid ≥ 6 mm",
            "3–6个月CT确认是否持续存在；若无变化且实性成分仍<6毫米，每年CT共5年",
            "CT at 3–6 months to confirm persistence; if unchanged and solid component remains < 6 mm, annual CT \
             for 5 years",
        ),
        (true, _, true) => (
            "多发亚实性 <6毫米",
            "multiple subsolid < 6 mm",
            "3–6个月CT；若稳定，考虑2年和4年时CT",
            "CT at 3–6 months; if stable, consider CT at 2 and 4 years",
        ),
        (true, _, false) => (
            "多发亚实性 ≥6毫米",
            "multiple subsolid ≥ 6 mm",
            "3–6个月CT；之后依最可疑结节处理",
            "CT at 3–6 months; subsequent management based on the most suspicious nodule(s)",
        ),
    };
    Some(Recommendation {
        group: Group::Subsolid,
        guiding_nodule: guide.id.clone(),
        mean_diameter_mm: d,
        multiple,
        management: Bilingual::new(zh, en),
        basis: Bilingual::new(
            format!("Fleischner 2017 表1 亚实性结节：{row_zh}（{}，平均直径{d:.0}毫米）", guide.id),
            format!("Fleischner 2017 Table 1, subsolid nodules: {row_en} ({}, mean diameter {d:.0} mm)", guide.id),
        ),
    })
}
