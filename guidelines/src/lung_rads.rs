//! ACR Lung-RADS v2022 (lung cancer screening CT), the nodule rows of its assessment table.
//!
//! Conventions of v2022 applied here:
//! - size is the mean diameter (long + short axis) / 2, rounded to one decimal;
//! - growth is an increase of more than 1.5 mm in mean diameter (the table says "within a 12-month
//!   interval"; the interval is stated in the basis);
//! - part-solid nodules are categorised by the solid component (mean diameter of its axes);
//! - stepped management: a nodule stable at its follow-up is stepped down one category from the category
//!   of its size (4A stable at ≥ 3 months → 3, 3 stable at ≥ 6 months → 2; 4B only leaves 4B after a
//!   benign work-up). One prior exam gives one step; the report's follow-up chain gives the next;
//! - 4X: a category 3 or 4 nodule with additional features that increase suspicion (spiculation,
//!   lymphadenopathy);
//! - the exam takes the highest category of its nodules; no nodules → 1.
//!
//! Not modelled (say so rather than guess): category 0 (incomplete exam), atypical pulmonary cysts,
//! the S and C modifiers, and "slow growth over multiple screening exams".

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Bilingual, Nodule, NoduleType, mean_diameter, round1};

pub const GUIDELINE: &str = "Lung-RADS v2022";

/// Ordered from least to most suspicious.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    #[serde(rename = "1")]
    C1,
    #[serde(rename = "2")]
    C2,
    #[serde(rename = "3")]
    C3,
    #[serde(rename = "4A")]
    C4A,
    #[serde(rename = "4B")]
    C4B,
    #[serde(rename = "4X")]
    C4X,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::C1 => "1",
            Self::C2 => "2",
            Self::C3 => "3",
            Self::C4A => "4A",
            Self::C4B => "4B",
            Self::C4X => "4X",
        })
    }
}

impl Category {
    /// Management recommended by the v2022 table for the category.
    pub fn management(self) -> Bilingual {
        match self {
            Self::C1 | Self::C2 => {
                Bilingual::new("12个月后低剂量CT（继续年度筛查）", "Continue annual screening with LDCT in 12 months")
            }
            Self::C3 => Bilingual::new("6个月后低剂量CT", "LDCT in 6 months"),
            Self::C4A => Bilingual::new(
                "3个月后低剂量CT；实性结节或实性成分≥8毫米时可考虑PET/CT",
                "LDCT in 3 months; PET/CT may be considered if there is a ≥8 mm solid nodule or solid component",
            ),
            Self::C4B | Self::C4X => Bilingual::new(
                "诊断性胸部CT（平扫或增强）；实性成分≥8毫米时可考虑PET/CT；组织取样和/或转诊进一步临床评估",
                "Diagnostic chest CT with or without contrast; PET/CT may be considered if there is a ≥8 mm \
                 solid nodule or solid component; tissue sampling and/or referral for further clinical evaluation",
            ),
        }
    }

    fn step_down(self) -> Self {
        match self {
            Self::C4A => Self::C3,
            Self::C3 => Self::C2,
            other => other,
        }
    }
}

/// The screening exam: baseline, or a follow-up `interval_months` after the prior.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Exam {
    pub baseline: bool,
    #[serde(default)]
    pub interval_months: Option<f64>,
}

/// Input of `medgemma-x guideline lung-rads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub exam: Exam,
    #[serde(default)]
    pub nodules: Vec<Nodule>,
}

/// How the nodule behaves against the prior exam.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Baseline,
    New,
    Growing,
    Stable,
}

impl Status {
    fn zh(self) -> &'static str {
        match self {
            Self::Baseline => "基线",
            Self::New => "新发",
            Self::Growing => "增大",
            Self::Stable => "稳定",
        }
    }

    fn en(self) -> &'static str {
        match self {
            Self::Baseline => "at baseline",
            Self::New => "new",
            Self::Growing => "growing",
            Self::Stable => "stable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoduleResult {
    pub id: String,
    pub category: Category,
    pub status: Status,
    pub mean_diameter_mm: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solid_mean_diameter_mm: Option<f64>,
    /// Change in mean diameter against the prior exam.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_mm: Option<f64>,
    pub basis: Bilingual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub guideline: String,
    pub category: Category,
    pub management: Bilingual,
    pub basis: Bilingual,
    pub nodules: Vec<NoduleResult>,
}

/// Growth that counts in Lung-RADS: more than 1.5 mm in mean diameter.
pub const GROWTH_MM: f64 = 1.5;

pub fn assess(case: &Case) -> Assessment {
    let nodules: Vec<NoduleResult> = case.nodules.iter().map(|n| assess_nodule(&case.exam, n)).collect();
    match nodules.iter().max_by_key(|n| n.category) {
        None => Assessment {
            guideline: GUIDELINE.into(),
            category: Category::C1,
            management: Category::C1.management(),
            basis: Bilingual::new("Lung-RADS v2022 类别1：未见肺结节", "Lung-RADS v2022 Category 1: no lung nodules"),
            nodules,
        },
        Some(worst) => Assessment {
            guideline: GUIDELINE.into(),
            category: worst.category,
            management: worst.category.management(),
            basis: Bilingual::new(
                format!("检查按最高类别结节（{}）定级：{}", worst.id, worst.basis.zh),
                format!("The exam takes its highest nodule ({}): {}", worst.id, worst.basis.en),
            ),
            nodules,
        },
    }
}

fn assess_nodule(exam: &Exam, n: &Nodule) -> NoduleResult {
    let md = round1(mean_diameter(n.axes.long_axis_mm, n.axes.short_axis_mm));
    let solid = match (n.axes.solid_long_axis_mm, n.axes.solid_short_axis_mm) {
        (Some(l), Some(s)) => Some(round1(mean_diameter(l, s))),
        (Some(l), None) => Some(round1(l)),
        _ => None,
    };
    let growth = n.prior.as_ref().map(|p| round1(md - round1(mean_diameter(p.long_axis_mm, p.short_axis_mm))));
    let status = if exam.baseline {
        Status::Baseline
    } else if n.new {
        Status::New
    } else if growth.is_some_and(|g| g > GROWTH_MM) {
        Status::Growing
    } else {
        Status::Stable
    };
    let (category, rule) = categorise(exam, n, status, md, solid);
    let (category, rule) = with_4x(n, category, rule);
    let kind = match n.nodule_type {
        NoduleType::Solid => ("实性结节", "solid nodule"),
        NoduleType::PartSolid => ("部分实性结节", "part-solid nodule"),
        NoduleType::GroundGlass => ("磨玻璃结节", "non-solid (ground-glass) nodule"),
    };
    let growth_text = match (growth, exam.interval_months) {
        (Some(g), Some(m)) => (format!("，较前{g:+.1}毫米（间隔{m}个月）"), format!(", {g:+.1} mm in {m} months")),
        (Some(g), None) => (format!("，较前{g:+.1}毫米"), format!(", {g:+.1} mm since the prior exam")),
        _ => (String::new(), String::new()),
    };
    let solid_text = solid.map_or((String::new(), String::new()), |s| {
        (format!("，实性成分平均直径{s:.1}毫米"), format!(", solid component mean diameter {s:.1} mm"))
    });
    NoduleResult {
        id: n.id.clone(),
        category,
        status,
        mean_diameter_mm: md,
        solid_mean_diameter_mm: solid,
        growth_mm: growth,
        basis: Bilingual::new(
            format!(
                "Lung-RADS v2022 类别{category}：{}，{}，平均直径{md:.1}毫米{}{}；{}",
                kind.0,
                status.zh(),
                solid_text.0,
                growth_text.0,
                rule.zh
            ),
            format!(
                "Lung-RADS v2022 Category {category}: {} {}, mean diameter {md:.1} mm{}{}; {}",
                kind.1,
                status.en(),
                solid_text.1,
                growth_text.1,
                rule.en
            ),
        ),
    }
}

/// The table row for one nodule: its category and the row's wording.
fn categorise(exam: &Exam, n: &Nodule, status: Status, md: f64, solid: Option<f64>) -> (Category, Bilingual) {
    use Category::*;
    let row = |c: Category, zh: &str, en: &str| (c, Bilingual::new(zh, en));

    if n.has("benign_calcification") {
        return row(C1, "良性钙化（完全、中央、爆米花样或同心环状）", "benign pattern of calcification");
    }
    if n.has("fat") {
        return row(C1, "含脂肪结节", "fat-containing nodule");
    }
    if n.has("endobronchial") {
        if n.has("subsegmental") {
            return row(C2, "亚段气道结节", "subsegmental airway nodule");
        }
        return match status {
            Status::Stable => row(
                C4B,
                "段或更近端气道结节，随访稳定",
                "segmental or more proximal airway nodule, stable at follow-up",
            ),
            _ => row(
                C4A,
                "段或更近端气道结节，基线或新发",
                "segmental or more proximal airway nodule at baseline or new",
            ),
        };
    }

    let sized = match n.nodule_type {
        NoduleType::Solid => {
            let smooth_juxtapleural = (n.has("perifissural") || n.has("juxtapleural")) && !n.has("spiculation");
            if smooth_juxtapleural && md < 10.0 && matches!(status, Status::Baseline | Status::New) {
                return row(
                    C2,
                    "边缘光整的叶间裂旁/胸膜下实性结节 <10毫米",
                    "smooth perifissural/juxtapleural solid nodule < 10 mm",
                );
            }
            match status {
                Status::Baseline | Status::Stable => match md {
                    x if x < 6.0 => row(C2, "基线 <6毫米", "< 6 mm at baseline"),
                    x if x < 8.0 => row(C3, "基线 ≥6至<8毫米", "≥ 6 to < 8 mm at baseline"),
                    x if x < 15.0 => row(C4A, "基线 ≥8至<15毫米", "≥ 8 to < 15 mm at baseline"),
                    _ => row(C4B, "基线 ≥15毫米", "≥ 15 mm at baseline"),
                },
                Status::New => match md {
                    x if x < 4.0 => row(C2, "新发 <4毫米", "new < 4 mm"),
                    x if x < 6.0 => row(C3, "新发 4至<6毫米", "new 4 to < 6 mm"),
                    x if x < 8.0 => row(C4A, "新发 6至<8毫米", "new 6 to < 8 mm"),
                    _ => row(C4B, "新发 ≥8毫米", "new ≥ 8 mm"),
                },
                Status::Growing => match md {
                    x if x < 8.0 => row(C4A, "增大 <8毫米", "growing < 8 mm"),
                    _ => row(C4B, "增大 ≥8毫米", "growing ≥ 8 mm"),
                },
            }
        }
        NoduleType::PartSolid => {
            let s = solid.unwrap_or(0.0);
            match status {
                Status::Baseline | Status::Stable => match (md, s) {
                    (total, _) if total < 6.0 => {
                        row(C2, "基线总平均直径 <6毫米", "< 6 mm total mean diameter at baseline")
                    }
                    (_, s) if s < 6.0 => row(
                        C3,
                        "基线总径 ≥6毫米且实性成分 <6毫米",
                        "≥ 6 mm total with solid component < 6 mm at baseline",
                    ),
                    (_, s) if s < 8.0 => {
                        row(C4A, "基线实性成分 ≥6至<8毫米", "solid component ≥ 6 to < 8 mm at baseline")
                    }
                    _ => row(C4B, "基线实性成分 ≥8毫米", "solid component ≥ 8 mm at baseline"),
                },
                Status::New if md < 6.0 => row(C3, "新发，总平均直径 <6毫米", "new, < 6 mm total mean diameter"),
                Status::New | Status::Growing => match s {
                    s if s < 4.0 => {
                        row(C4A, "新发或增大，实性成分 <4毫米", "new or growing with solid component < 4 mm")
                    }
                    _ => row(C4B, "新发或增大，实性成分 ≥4毫米", "new or growing with solid component ≥ 4 mm"),
                },
            }
        }
        NoduleType::GroundGlass => match (status, md) {
            (Status::Stable, x) if x >= 30.0 => row(C2, "≥30毫米，稳定或缓慢增大", "≥ 30 mm, stable or slowly growing"),
            (Status::Growing, x) if x >= 30.0 => {
                row(C2, "≥30毫米，稳定或缓慢增大", "≥ 30 mm, stable or slowly growing")
            }
            (_, x) if x < 30.0 => row(C2, "<30毫米（基线、新发或增大）", "< 30 mm at baseline, new or growing"),
            _ => row(C3, "基线或新发 ≥30毫米", "≥ 30 mm at baseline or new"),
        },
    };

    // Stepped management: an unchanged nodule at its short-interval follow-up steps down one category.
    if status == Status::Stable {
        let (c, r) = &sized;
        let months = exam.interval_months.unwrap_or(0.0);
        let stepped = match c {
            C4A if months >= 3.0 => Some(("4A类结节3个月随访稳定", "category 4A nodule stable at 3-month follow-up")),
            C3 if months >= 6.0 => Some(("3类结节6个月随访稳定", "category 3 nodule stable at 6-month follow-up")),
            _ => None,
        };
        if let Some((zh, en)) = stepped {
            return (c.step_down(), Bilingual::new(format!("{zh}（{}）", r.zh), format!("{en} ({})", r.en)));
        }
    }
    sized
}

/// 4X: a category 3 or 4 nodule with additional features that increase suspicion of cancer.
fn with_4x(n: &Nodule, category: Category, rule: Bilingual) -> (Category, Bilingual) {
    let suspicious: Vec<&str> = ["spiculation", "lymphadenopathy"].into_iter().filter(|f| n.has(f)).collect();
    if category >= Category::C3 && category < Category::C4X && !suspicious.is_empty() {
        let zh: Vec<&str> =
            suspicious.iter().map(|f| if *f == "spiculation" { "毛刺征" } else { "淋巴结肿大" }).collect();
        return (
            Category::C4X,
            Bilingual::new(
                format!("{}类结节伴增加恶性可能的征象（{}）→ 4X", category, zh.join("、")),
                format!(
                    "category {category} nodule with additional features increasing suspicion ({}) → 4X",
                    suspicious.join(", ")
                ),
            ),
        );
    }
    (category, rule)
}
