//! A DICOM query against what we hold, at the study and series levels of the Study Root model (PS3.4
//! C.6.2): C-FIND's identifier now, QIDO-RS's parameters later. The keys a query gives are matched as
//! PS3.4 C.2.2.2 says — one value with `*` and `?`, a list of UIDs, a date range, names without regard to
//! case — and each match is answered with the attributes the query named. SQL narrows the rows by the
//! keys an index takes (`store::studies::StudyFilter`); every key is matched again here, exactly.

use app::studies::StudySummary;
use dicom_core::header::Header;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_object::InMemDicomObject;

use crate::domain::DomainError;
use crate::store::db::Pool;
use crate::store::studies::{self, HeldSeries, StudyFilter};

/// (group, element).
pub type Tag = (u16, u16);

pub const QUERY_RETRIEVE_LEVEL: Tag = (0x0008, 0x0052);
pub const SPECIFIC_CHARACTER_SET: Tag = (0x0008, 0x0005);
pub const RETRIEVE_AE_TITLE: Tag = (0x0008, 0x0054);
pub const STUDY_DATE: Tag = (0x0008, 0x0020);
pub const ACCESSION_NUMBER: Tag = (0x0008, 0x0050);
pub const MODALITIES_IN_STUDY: Tag = (0x0008, 0x0061);
pub const STUDY_DESCRIPTION: Tag = (0x0008, 0x1030);
pub const PATIENT_NAME: Tag = (0x0010, 0x0010);
pub const PATIENT_ID: Tag = (0x0010, 0x0020);
pub const STUDY_INSTANCE_UID: Tag = (0x0020, 0x000D);
pub const SERIES_INSTANCE_UID: Tag = (0x0020, 0x000E);
pub const INSTANCES_IN_STUDY: Tag = (0x0020, 0x1208);

/// The most studies (or series) one query is answered with; a query that would match more gets the
/// newest this many.
pub const MAX_MATCHES: i64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Study,
    Series,
}

impl Level {
    pub fn from_code(code: &str) -> Result<Level, DomainError> {
        match code.trim() {
            "STUDY" => Ok(Level::Study),
            "SERIES" => Ok(Level::Series),
            other => Err(DomainError::invalid(
                format!("不支持的查询级别“{other}”（支持 STUDY、SERIES）"),
                format!("query level `{other}` is not supported (STUDY and SERIES are)"),
            )),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Level::Study => "STUDY",
            Level::Series => "SERIES",
        }
    }
}

/// One key of a query: an attribute, and the value to match (empty: any value; return it).
#[derive(Clone, Debug)]
pub struct Key {
    pub tag: Tag,
    pub value: String,
}

/// One attribute of an answer; values of several parts are joined by `\` as DICOM writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub tag: Tag,
    pub vr: &'static str,
    pub value: String,
}

/// The attributes this node answers with at the study level, and their value representations.
const STUDY_ATTRIBUTES: &[(Tag, &str)] = &[
    (STUDY_DATE, "DA"),
    ((0x0008, 0x0030), "TM"), // Study Time: not kept, answered empty
    (ACCESSION_NUMBER, "SH"),
    (MODALITIES_IN_STUDY, "CS"),
    ((0x0008, 0x0090), "PN"), // Referring Physician's Name: not kept
    (STUDY_DESCRIPTION, "LO"),
    (PATIENT_NAME, "PN"),
    (PATIENT_ID, "LO"),
    ((0x0010, 0x0030), "DA"), // Patient's Birth Date
    ((0x0010, 0x0040), "CS"), // Patient's Sex
    (STUDY_INSTANCE_UID, "UI"),
    ((0x0020, 0x0010), "SH"),   // Study ID: not kept
    ((0x0020, 0x1206), "IS"),   // Number of Study Related Series
    (INSTANCES_IN_STUDY, "IS"), // Number of Study Related Instances
];

const SERIES_ATTRIBUTES: &[(Tag, &str)] = &[
    ((0x0008, 0x0060), "CS"), // Modality
    ((0x0008, 0x103E), "LO"), // Series Description
    ((0x0018, 0x0015), "CS"), // Body Part Examined
    (STUDY_INSTANCE_UID, "UI"),
    (SERIES_INSTANCE_UID, "UI"),
    ((0x0020, 0x0011), "IS"), // Series Number
    ((0x0020, 0x1209), "IS"), // Number of Series Related Instances
];

/// The value representation of an attribute this node answers with, if it is one.
pub fn vr_of(tag: Tag) -> Option<&'static str> {
    STUDY_ATTRIBUTES.iter().chain(SERIES_ATTRIBUTES).find(|(t, _)| *t == tag).map(|(_, vr)| *vr)
}

/// The matches of a query, each as the attributes it asked for, with the level and (when given) the AE
/// title to retrieve from. Keys this node does not know are answered empty and do not narrow.
pub async fn find(
    db: &Pool,
    level: Level,
    keys: &[Key],
    retrieve_ae: Option<&str>,
) -> Result<Vec<Vec<Attribute>>, DomainError> {
    let held: Vec<Vec<Attribute>> = match level {
        Level::Study => {
            studies::studies_matching(db, &study_filter(keys)).await?.iter().map(study_attributes).collect()
        }
        Level::Series => {
            let study_uid = value_of(keys, STUDY_INSTANCE_UID).filter(|uid| !uid.contains(['\\', '*', '?']));
            let Some(study_uid) = study_uid else {
                return Err(DomainError::invalid(
                    "序列级查询须给出一个检查实例 UID",
                    "a series query needs one Study Instance UID",
                ));
            };
            let series_uids = value_of(keys, SERIES_INSTANCE_UID).map(uid_list).unwrap_or_default();
            let found = studies::series_matching(db, &study_uid, &series_uids, MAX_MATCHES).await?;
            found.iter().map(series_attributes).collect()
        }
    };
    Ok(held
        .into_iter()
        .filter(|attributes| matches(keys, attributes))
        .map(|a| answer(level, keys, &a, retrieve_ae))
        .collect())
}

/// What SQL can narrow by; a key that is only `*` narrows nothing.
fn study_filter(keys: &[Key]) -> StudyFilter {
    let pattern = |tag| value_of(keys, tag).filter(|v| v != "*" && !v.contains('\\'));
    let (date_from, date_to) = value_of(keys, STUDY_DATE).and_then(|v| date_range(&v)).unwrap_or((None, None));
    StudyFilter {
        patient_id: pattern(PATIENT_ID),
        patient_name: pattern(PATIENT_NAME).map(|p| as_held_name(&p)),
        accession_number: pattern(ACCESSION_NUMBER),
        description: pattern(STUDY_DESCRIPTION),
        study_uids: value_of(keys, STUDY_INSTANCE_UID).map(uid_list).unwrap_or_default(),
        date_from,
        date_to,
        modality: pattern(MODALITIES_IN_STUDY).filter(|m| !m.contains(['*', '?'])),
        limit: MAX_MATCHES,
    }
}

/// A key's value, if the query gives one (empty is no condition).
fn value_of(keys: &[Key], tag: Tag) -> Option<String> {
    keys.iter().find(|k| k.tag == tag).map(|k| k.value.trim().to_string()).filter(|v| !v.is_empty())
}

fn uid_list(value: String) -> Vec<String> {
    value.split('\\').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect()
}

/// `A-B`, `A-`, `-B` or `A` (YYYYMMDD, inclusive); None when it is none of them.
fn date_range(value: &str) -> Option<(Option<String>, Option<String>)> {
    let date = |s: &str| -> Option<Option<String>> {
        let s = s.trim();
        match s.len() {
            0 => Some(None),
            8 if s.chars().all(|c| c.is_ascii_digit()) => Some(Some(s.to_string())),
            _ => None,
        }
    };
    match value.split_once('-') {
        Some((from, to)) => Some((date(from)?, date(to)?)),
        None => {
            let day = date(value)??;
            Some((Some(day.clone()), Some(day)))
        }
    }
}

fn study_attributes(study: &StudySummary) -> Vec<Attribute> {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let digits = |value: &Option<String>| text(value).chars().filter(char::is_ascii_digit).collect::<String>();
    let values: Vec<String> = vec![
        digits(&study.study_date),
        String::new(),
        text(&study.accession_number),
        study.modalities.join("\\"),
        String::new(),
        text(&study.description),
        text(&study.patient_name),
        text(&study.patient_id),
        digits(&study.patient_birth_date),
        text(&study.patient_sex),
        study.study_uid.clone(),
        String::new(),
        study.series_count.to_string(),
        study.instance_count.to_string(),
    ];
    with_values(STUDY_ATTRIBUTES, values)
}

fn series_attributes(series: &HeldSeries) -> Vec<Attribute> {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let values = vec![
        text(&series.modality),
        text(&series.description),
        text(&series.body_part),
        series.study_uid.clone(),
        series.series_uid.clone(),
        series.series_number.map(|n| n.to_string()).unwrap_or_default(),
        series.instance_count.to_string(),
    ];
    with_values(SERIES_ATTRIBUTES, values)
}

fn with_values(known: &[(Tag, &'static str)], values: Vec<String>) -> Vec<Attribute> {
    known.iter().zip(values).map(|(&(tag, vr), value)| Attribute { tag, vr, value }).collect()
}

/// Whether every key with a value matches the attribute it names (keys we do not hold are ignored).
fn matches(keys: &[Key], attributes: &[Attribute]) -> bool {
    keys.iter().all(|key| {
        let wanted = key.value.trim();
        match attributes.iter().find(|a| a.tag == key.tag) {
            Some(attribute) if !wanted.is_empty() => matches_value(attribute, wanted),
            _ => true,
        }
    })
}

/// PS3.4 C.2.2.2: a UID list, a date range, or one value with wildcards (any of a multi-valued
/// attribute's values, any of the key's values); names match without regard to case.
fn matches_value(attribute: &Attribute, wanted: &str) -> bool {
    let have: Vec<&str> = attribute.value.split('\\').map(str::trim).collect();
    match attribute.vr {
        "UI" => wanted.split('\\').map(str::trim).any(|uid| have.contains(&uid)),
        "DA" => match date_range(wanted) {
            Some((from, to)) => {
                let day = attribute.value.as_str();
                !day.is_empty()
                    && from.as_deref().is_none_or(|from| day >= from)
                    && to.as_deref().is_none_or(|to| day <= to)
            }
            None => false,
        },
        "PN" => {
            let pattern = as_held_name(wanted);
            have.iter().any(|value| wildcard(&pattern, value, true))
        }
        _ => wanted.split('\\').any(|pattern| have.iter().any(|value| wildcard(pattern.trim(), value, false))),
    }
}

/// A person-name key as names are held (the ingest keeps them as shown: the ideographic group when there is
/// one, components joined by a space, or by nothing in Chinese): `ZHANG^SAN*` → `ZHANG SAN*`,
/// `Zhang^San=张^三` → `张三`. Wildcards stay.
fn as_held_name(pattern: &str) -> String {
    let groups: Vec<&str> = pattern.split('=').collect();
    let chosen = groups.get(1).filter(|g| !g.trim().is_empty()).unwrap_or(&groups[0]);
    let parts: Vec<&str> = chosen.split('^').map(str::trim).filter(|p| !p.is_empty()).collect();
    let cjk = parts.iter().all(|p| p.chars().all(|c| c as u32 >= 0x2E80 || matches!(c, '*' | '?')));
    parts.join(if cjk { "" } else { " " })
}

/// `*` matches any run of characters (none too), `?` one character.
fn wildcard(pattern: &str, text: &str, fold_case: bool) -> bool {
    let lower = |s: &str| if fold_case { s.to_lowercase() } else { s.to_string() };
    let pattern: Vec<char> = lower(pattern).chars().collect();
    let text: Vec<char> = lower(text).chars().collect();
    // can[j]: the pattern so far matches text[..j].
    let mut can = vec![false; text.len() + 1];
    can[0] = true;
    for p in pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => can[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && can[j - 1],
                c => j > 0 && can[j - 1] && text[j - 1] == c,
            };
        }
        can = next;
    }
    can[text.len()]
}

/// The attributes the query named, with ours, and the level (and where to retrieve from) always.
fn answer(level: Level, keys: &[Key], held: &[Attribute], retrieve_ae: Option<&str>) -> Vec<Attribute> {
    let mut out = vec![Attribute { tag: QUERY_RETRIEVE_LEVEL, vr: "CS", value: level.code().into() }];
    if let Some(ae) = retrieve_ae {
        out.push(Attribute { tag: RETRIEVE_AE_TITLE, vr: "AE", value: ae.into() });
    }
    for key in keys {
        if out.iter().any(|a| a.tag == key.tag) || key.tag == SPECIFIC_CHARACTER_SET {
            continue;
        }
        match held.iter().find(|a| a.tag == key.tag) {
            Some(attribute) => out.push(attribute.clone()),
            // Asked for, not held: answered empty (its VR from the dictionary of what we know, else LO).
            None => out.push(Attribute { tag: key.tag, vr: vr_of(key.tag).unwrap_or("LO"), value: String::new() }),
        }
    }
    // The unique keys of the level and above always come back (PS3.4 C.4.1.1.3.2).
    for tag in [STUDY_INSTANCE_UID, SERIES_INSTANCE_UID] {
        if let Some(attribute) = held.iter().find(|a| a.tag == tag)
            && !out.iter().any(|a| a.tag == tag)
        {
            out.push(attribute.clone());
        }
    }
    out.sort_by_key(|a| a.tag);
    out
}

/// The keys of an identifier (C-FIND's data set, or a match from a peer): every element but sequences,
/// as text (values of several parts joined by `\`).
pub fn keys_of(identifier: &InMemDicomObject) -> Vec<Key> {
    identifier
        .iter()
        .filter(|element| element.vr() != VR::SQ)
        .map(|element| Key {
            tag: (element.tag().group(), element.tag().element()),
            value: element
                .to_str()
                .map(|v| v.trim_end_matches(['\0', ' ']).trim_start().to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// Attributes as a data set, its text in UTF-8 (ISO_IR 192: names are Chinese).
pub fn data_set_of(attributes: &[Attribute]) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    object.put(DataElement::new(dicom_core::Tag(0x0008, 0x0005), VR::CS, PrimitiveValue::from("ISO_IR 192")));
    for attribute in attributes {
        let vr = attribute.vr.parse::<VR>().unwrap_or(VR::LO);
        let value = if attribute.value.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(attribute.value.as_str())
        };
        object.put(DataElement::new(dicom_core::Tag(attribute.tag.0, attribute.tag.1), vr, value));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(tag: Tag, vr: &'static str, value: &str) -> Attribute {
        Attribute { tag, vr, value: value.into() }
    }

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(wildcard("ZHANG*", "ZHANG^SAN", false));
        assert!(wildcard("*SAN", "ZHANG^SAN", false));
        assert!(wildcard("Z?ANG*", "ZHANG^SAN", false));
        assert!(wildcard("*", "", false));
        assert!(wildcard("张*", "张三", false));
        assert!(!wildcard("ZHANG", "ZHANG^SAN", false));
        assert!(!wildcard("zhang*", "ZHANG^SAN", false));
        assert!(wildcard("zhang*", "ZHANG^SAN", true));
        assert!(!wildcard("?", "", false));
    }

    #[test]
    fn dates_match_single_days_and_ranges() {
        let day = attribute(STUDY_DATE, "DA", "20240315");
        for wanted in ["20240315", "20240101-20241231", "20240315-", "-20240315", "20240301-20240331"] {
            assert!(matches_value(&day, wanted), "{wanted}");
        }
        for wanted in ["20240316", "20240316-", "-20240314", "2024", "garbage"] {
            assert!(!matches_value(&day, wanted), "{wanted}");
        }
        assert!(!matches_value(&attribute(STUDY_DATE, "DA", ""), "20240101-"), "no date, no match");
    }

    #[test]
    fn uid_lists_and_multi_valued_attributes_match_any() {
        let uid = attribute(STUDY_INSTANCE_UID, "UI", "1.2.3");
        assert!(matches_value(&uid, "1.2.4\\1.2.3"));
        assert!(!matches_value(&uid, "1.2.*"), "no wildcards in UIDs");
        let modalities = attribute(MODALITIES_IN_STUDY, "CS", "CT\\SR");
        assert!(matches_value(&modalities, "CT"));
        assert!(matches_value(&modalities, "MR\\SR"));
        assert!(!matches_value(&modalities, "CR"));
        let name = attribute(PATIENT_NAME, "PN", "Zhang San");
        for wanted in ["ZHANG*", "Zhang^San", "zhang^s*", "*^SAN", "Zhang^San=张^三^^"] {
            assert_eq!(matches_value(&name, wanted), !wanted.contains('='), "{wanted}");
        }
        assert!(matches_value(&attribute(PATIENT_NAME, "PN", "张三"), "Zhang^San=张^三"));
        assert!(matches_value(&attribute(PATIENT_NAME, "PN", "张三"), "张*"));
    }

    #[test]
    fn answers_carry_the_asked_keys_the_level_and_the_unique_keys() {
        let held = vec![
            attribute(PATIENT_ID, "LO", "P1"),
            attribute(STUDY_INSTANCE_UID, "UI", "1.2.3"),
            attribute(STUDY_DATE, "DA", "20240315"),
        ];
        let keys = vec![
            Key { tag: PATIENT_ID, value: "P*".into() },
            Key { tag: (0x0008, 0x0080), value: String::new() }, // Institution Name: not held
            Key { tag: SPECIFIC_CHARACTER_SET, value: "ISO_IR 192".into() },
        ];
        assert!(matches(&keys, &held));
        let answer = answer(Level::Study, &keys, &held, Some("MEDGEMMAX"));
        let tags: Vec<Tag> = answer.iter().map(|a| a.tag).collect();
        assert_eq!(
            tags,
            vec![QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE, (0x0008, 0x0080), PATIENT_ID, STUDY_INSTANCE_UID]
        );
        assert_eq!(answer[0].value, "STUDY");
        assert_eq!(answer[2].value, "");
        assert!(!matches(&[Key { tag: PATIENT_ID, value: "Q*".into() }], &held));
        assert!(matches(&[Key { tag: (0x0008, 0x0080), value: "X".into() }], &held), "unknown keys do not narrow");
    }

    #[test]
    fn the_sql_filter_takes_only_what_narrows_safely() {
        let keys = vec![
            Key { tag: PATIENT_ID, value: "P1".into() },
            Key { tag: PATIENT_NAME, value: "*".into() },
            Key { tag: STUDY_DATE, value: "20240101-".into() },
            Key { tag: MODALITIES_IN_STUDY, value: "CT\\MR".into() },
            Key { tag: STUDY_INSTANCE_UID, value: "1.2\\1.3".into() },
        ];
        let filter = study_filter(&keys);
        assert_eq!(filter.patient_id.as_deref(), Some("P1"));
        assert_eq!(filter.patient_name, None, "`*` alone matches empty names too");
        assert_eq!((filter.date_from.as_deref(), filter.date_to), (Some("20240101"), None));
        assert_eq!(filter.modality, None, "a list is matched after SQL");
        assert_eq!(filter.study_uids, vec!["1.2", "1.3"]);
        assert_eq!(filter.limit, MAX_MATCHES);
    }
}
