//! The report store and its signing workflow.
//!
//! ```text
//! create (AI draft or blank) → draft ⇄ edit → sign → signed → countersign → reviewed
//!                                    ↑                 └──── return (comment) → returned → edit → sign …
//! signed / reviewed → amend (reason) → a new version in draft; the old one is kept as superseded
//! ```
//! A signed report is frozen: its content hash (SHA-256 of the content without signatures and status) is
//! recorded in the row and in each signature, and a countersignature checks it again. Every step is a
//! report event with who did it and what changed (a JSON diff against the previous content); the changes
//! since the model's draft are computed for the reviewer.

use anyhow::Context;
use report::Report;
use report::model::{ReportStatus, Signature};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::domain::auth::Role;
use crate::domain::deliveries::Delivery;
use crate::store::db::{Pool, Row as DbRow};

/// Who and what a report is about, from the database (never from the client): the report's exam id,
/// patient and study blocks.
#[derive(Clone, Debug)]
pub struct StudyIdentity {
    /// The accession number, else the Study Instance UID.
    pub exam_id: String,
    pub patient: report::model::Patient,
    pub study: report::model::Study,
}

pub async fn study_identity(pool: &Pool, study_id: i64) -> Result<Option<StudyIdentity>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.study_uid, s.accession_number, s.study_date, s.description, \
         (SELECT modality FROM series WHERE series.study_id = s.id ORDER BY series_number, id LIMIT 1) AS modality, \
         p.patient_key, p.patient_id, p.name, p.sex, p.birth_date \
         FROM studies s JOIN patients p ON p.id = s.patient_id WHERE s.id = $1",
    )
    .bind(study_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let study_uid: String = r.get("study_uid");
        let accession: Option<String> = r.get("accession_number");
        let patient_key: String = r.get("patient_key");
        StudyIdentity {
            exam_id: accession.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| study_uid.clone()),
            patient: report::model::Patient {
                id: r.get::<Option<String>, _>("patient_id").unwrap_or(patient_key),
                name: r.get("name"),
                sex: r.get("sex"),
                birth_date: r.get("birth_date"),
            },
            study: report::model::Study {
                study_instance_uid: Some(study_uid),
                accession_number: accession,
                modality: r.get("modality"),
                study_date: r.get("study_date"),
                description: r.get("description"),
            },
        }
    }))
}

/// Puts the study's identity into a report, over whatever the client sent.
fn stamp(report: &mut Report, identity: &StudyIdentity) {
    report.exam_id = identity.exam_id.clone();
    report.patient = Some(identity.patient.clone());
    report.study = Some(identity.study.clone());
}

/// A report as the server stores an unsigned version: the workflow fields are the server's (draft, this
/// version, no signatures) and so is the identity.
fn as_draft(report: &mut Report, version: i64, identity: &StudyIdentity) {
    report.status = ReportStatus::Draft;
    report.version = u32::try_from(version).unwrap_or(u32::MAX);
    report.signatures.clear();
    stamp(report, identity);
    // The change against the prior exam and the Lung-RADS category follow from the findings as saved,
    // whatever the client sent.
    report.apply_followup();
    report.apply_lung_rads();
}

async fn identity_of(pool: &Pool, study_id: i64) -> Result<StudyIdentity, WorkflowError> {
    study_identity(pool, study_id).await?.ok_or(WorkflowError::NotFound)
}

/// Bounds on what a report holds, checked on every save: the PDF, HL7 and FHIR exports and the delivery
/// worker render every finding and draw every cited measurement, so none of them may grow without end.
pub mod limits {
    pub const FINDINGS: usize = 50;
    /// Measurements or images one finding cites.
    pub const CITED_PER_FINDING: usize = 10;
    pub const SUMMARY_CHARS: usize = 8000;
    pub const RECOMMENDATION_CHARS: usize = 4000;
    /// Any other text field (a finding's location, feature, density … or the exam id).
    pub const FIELD_CHARS: usize = 500;
    pub const NODULE_FEATURES: usize = 16;
}

fn invalid(zh: String, en: String) -> WorkflowError {
    WorkflowError::Invalid { zh, en }
}

/// Checks a report's text and shape against [`limits`]; and, when `study` is given, that every
/// measurement and image it cites is the study's own, once per finding.
async fn check_content(pool: &Pool, report: &Report, study: Option<i64>) -> Result<(), WorkflowError> {
    use limits::*;
    let too_long = |what_zh: &str, what_en: &str, text: &str, max: usize| {
        (text.chars().count() > max).then(|| {
            invalid(format!("{what_zh}过长（最多 {max} 字）"), format!("{what_en} longer than {max} characters"))
        })
    };
    if report.findings.len() > FINDINGS {
        return Err(invalid(format!("所见过多（最多 {FINDINGS} 条）"), format!("more than {FINDINGS} findings")));
    }
    let mut texts = vec![
        ("报告摘要", "report_summary", report.report_summary.as_str(), SUMMARY_CHARS),
        ("建议", "recommendation", report.recommendation.as_str(), RECOMMENDATION_CHARS),
        ("检查号", "exam_id", report.exam_id.as_str(), FIELD_CHARS),
    ];
    for f in &report.findings {
        texts.push(("部位", "location", &f.location, FIELD_CHARS));
        texts.push(("所见描述", "feature", &f.feature, FIELD_CHARS));
        let optional = [&f.density, &f.boundary, &f.morphology, &f.adjacent_structures, &f.change];
        texts.extend(optional.into_iter().flatten().map(|t| ("所见描述", "finding text", t.as_str(), FIELD_CHARS)));
        if let Some(basis) = f.measurements.as_ref().and_then(|m| m.basis.as_deref()) {
            texts.push(("测量依据", "measurement basis", basis, FIELD_CHARS));
        }
        if f.nodule_features.len() > NODULE_FEATURES || f.nodule_features.iter().any(|n| n.chars().count() > 64) {
            return Err(invalid(
                format!("结节特征过多（最多 {NODULE_FEATURES} 项）"),
                "too many nodule features".into(),
            ));
        }
    }
    if let Some(refused) = texts.into_iter().find_map(|(zh, en, text, max)| too_long(zh, en, text, max)) {
        return Err(refused);
    }
    let Some(study) = study else { return Ok(()) };
    let measurements = crate::store::measurements::live_ids(pool, study).await?;
    let images = crate::store::studies::instance_ids(pool, study).await?;
    for f in &report.findings {
        cited(&f.measurement_ids, &measurements, ("测量", "measurement"))?;
        cited(&f.image_ids, &images, ("图像", "image"))?;
    }
    Ok(())
}

/// A finding's citations of one kind: at most [`limits::CITED_PER_FINDING`], each once, each one of
/// `own` (the study's).
fn cited(ids: &[String], own: &[i64], (zh, en): (&str, &str)) -> Result<(), WorkflowError> {
    let max = limits::CITED_PER_FINDING;
    if ids.len() > max {
        return Err(invalid(
            format!("一条所见最多引用 {max} 项{zh}"),
            format!("a finding cites at most {max} of its {en}s"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            return Err(invalid(format!("{zh} {id} 重复引用"), format!("{en} {id} is cited twice")));
        }
        if !id.parse::<i64>().is_ok_and(|n| own.contains(&n)) {
            return Err(invalid(
                format!("{zh} {} 不属于该检查", id.chars().take(40).collect::<String>()),
                format!("{en} {} is not part of this study", id.chars().take(40).collect::<String>()),
            ));
        }
    }
    Ok(())
}

/// Who acts, as the workflow records them.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("no such report")]
    NotFound,
    /// The step does not fit the report's state (sign a signed report, edit a frozen one …).
    #[error("{en}")]
    Conflict { zh: String, en: String },
    #[error("{en}")]
    Invalid { zh: String, en: String },
    /// The report is somebody else's to change, or the reviewer wrote or changed what they would review.
    #[error("{en}")]
    NotYours { zh: String, en: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for WorkflowError {
    fn from(e: sqlx::Error) -> Self {
        WorkflowError::Other(e.into())
    }
}

fn conflict(zh: &str, en: &str) -> WorkflowError {
    WorkflowError::Conflict { zh: zh.into(), en: en.into() }
}

fn changed_meanwhile() -> WorkflowError {
    conflict("报告状态已变化，请刷新", "the report changed state meanwhile; reload it")
}

/// Who may change a report (edit, sign, amend): its author, or a department head; for an amendment also
/// whoever signed it. A colleague may read it, not change it.
fn may_change(stored: &Stored, actor: &Actor) -> Result<(), WorkflowError> {
    let own = stored.created_by == actor.user_id || stored.signed_by == Some(actor.user_id);
    if own || actor.role == Role::DepartmentHead {
        return Ok(());
    }
    Err(WorkflowError::NotYours {
        zh: "这份报告由其他医师撰写，只有撰写者或科室主任可以修改、签发或修订".into(),
        en: "another radiologist wrote this report: only its author or a department head may change, sign or amend it"
            .into(),
    })
}

/// One difference between two JSON documents: `findings[0].location` was "右肺上叶", is "右肺下叶".
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Change {
    pub path: String,
    pub before: Value,
    pub after: Value,
}

/// Leaf-level differences, objects by key (in the order of `after`, then keys only `before` has), arrays
/// by position. Something added or removed is one change, from or to null (a new finding is one change).
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                walk(&child, b.get(key).unwrap_or(&Value::Null), a.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for i in 0..a.len().max(b.len()) {
                walk(&format!("{path}[{i}]"), b.get(i).unwrap_or(&Value::Null), a.get(i).unwrap_or(&Value::Null), out);
            }
        }
        (b, a) if b != a => out.push(Change { path: path.to_string(), before: b.clone(), after: a.clone() }),
        _ => {}
    }
}

/// The content a signature covers: the report without its workflow fields (status, version, signatures).
fn content_only(report: &Report) -> Value {
    let mut bare = report.clone();
    bare.status = ReportStatus::Draft;
    bare.version = 1;
    bare.signatures.clear();
    serde_json::to_value(bare).expect("reports serialize")
}

/// SHA-256 (hex) of [`content_only`].
pub fn content_hash(report: &Report) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(&content_only(report)).expect("values serialize")))
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub ts: String,
    pub username: String,
    pub role: String,
    pub action: String,
    pub changes: Vec<Change>,
    pub comment: Option<String>,
}

/// A report as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub id: i64,
    pub study_id: i64,
    pub version: i64,
    pub supersedes: Option<i64>,
    pub state: String,
    pub content_sha256: Option<String>,
    pub created_at: String,
    pub signed_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_comment: Option<String>,
    pub amend_reason: Option<String>,
    pub report: Report,
    /// What people changed after the model's draft (empty when the report did not start from one).
    pub changes_since_ai_draft: Vec<Change>,
    pub events: Vec<Event>,
    /// To the HIS: one row per target and report event, with its state.
    pub deliveries: Vec<Delivery>,
}

struct Stored {
    id: i64,
    study_id: i64,
    version: i64,
    state: String,
    content: Report,
    ai_draft: Option<Value>,
    content_sha256: Option<String>,
    created_by: i64,
    signed_by: Option<i64>,
}

async fn load(pool: &Pool, id: i64) -> Result<Stored, WorkflowError> {
    let row = sqlx::query(
        "SELECT id, study_id, version, state, content, ai_draft, content_sha256, created_by, signed_by FROM reports \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(WorkflowError::NotFound)?;
    stored_of(&row)
}

/// The workflow's part of a reports row (any query that selects these columns).
fn stored_of(row: &DbRow) -> Result<Stored, WorkflowError> {
    let content: String = row.get("content");
    let ai_draft: Option<String> = row.get("ai_draft");
    Ok(Stored {
        id: row.get("id"),
        study_id: row.get("study_id"),
        version: row.get("version"),
        state: row.get("state"),
        content: serde_json::from_str(&content).context("stored report")?,
        ai_draft: ai_draft.map(|d| serde_json::from_str(&d)).transpose().context("stored AI draft")?,
        content_sha256: row.get("content_sha256"),
        created_by: row.get("created_by"),
        signed_by: row.get("signed_by"),
    })
}

async fn record(
    tx: &mut crate::store::db::Connection,
    report_id: i64,
    actor: &Actor,
    action: &str,
    changes: &[Change],
    comment: Option<&str>,
) -> Result<(), WorkflowError> {
    sqlx::query(
        "INSERT INTO report_events (report_id, ts, user_id, username, role, action, changes, comment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(report_id)
    .bind(crate::support::clock::now_rfc3339())
    .bind(actor.user_id)
    .bind(&actor.username)
    .bind(actor.role.as_str())
    .bind(action)
    .bind(serde_json::to_string(changes).context("changes")?)
    .bind(comment)
    .execute(tx)
    .await?;
    Ok(())
}

async fn set_study_status(
    tx: &mut crate::store::db::Connection,
    study_id: i64,
    status: &str,
) -> Result<(), WorkflowError> {
    sqlx::query("UPDATE studies SET status = $1 WHERE id = $2").bind(status).bind(study_id).execute(tx).await?;
    Ok(())
}

fn to_json(report: &Report) -> Result<String, WorkflowError> {
    Ok(serde_json::to_string(report).context("report")?)
}

/// A new report for a study (version 1), from the model's draft or typed from scratch. A study has one
/// live report: a second is refused (edit or amend the one there).
pub async fn create(
    pool: &Pool,
    study_id: i64,
    actor: &Actor,
    mut report: Report,
    ai_draft: Option<Report>,
) -> Result<i64, WorkflowError> {
    let live: Option<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE study_id = $1 AND state != 'superseded'")
        .bind(study_id)
        .fetch_optional(pool)
        .await?;
    if let Some(id) = live {
        return Err(conflict(
            &format!("该检查已有报告（编号 {id}），请修改或修订该报告"),
            &format!("the study already has report {id}: edit or amend it"),
        ));
    }
    check_content(pool, &report, Some(study_id)).await?;
    if let Some(draft) = &ai_draft {
        check_content(pool, draft, None).await?;
    }
    let identity = identity_of(pool, study_id).await?;
    as_draft(&mut report, 1, &identity);
    // The draft gets the same identity, so the diff shows what people changed, not what the server filled.
    let ai_draft = ai_draft.map(|mut draft| {
        stamp(&mut draft, &identity);
        draft
    });
    let ai_json = ai_draft.as_ref().map(|d| serde_json::to_string(&content_only(d))).transpose().context("draft")?;
    let changes = match &ai_draft {
        Some(d) => diff(&content_only(d), &content_only(&report)),
        None => Vec::new(),
    };
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (study_id, version, state, content, ai_draft, created_by, created_at) \
         VALUES ($1, 1, 'draft', $2, $3, $4, $5) RETURNING id",
    )
    .bind(study_id)
    .bind(to_json(&report)?)
    .bind(ai_json)
    .bind(actor.user_id)
    .bind(crate::support::clock::now_rfc3339())
    .fetch_one(&mut *tx)
    .await?;
    record(&mut tx, id, actor, "create", &changes, None).await?;
    set_study_status(&mut tx, study_id, if ai_draft.is_some() { "ai_draft" } else { "draft" }).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a draft (or a returned report). Signed reports are frozen.
pub async fn edit(pool: &Pool, id: i64, actor: &Actor, mut report: Report) -> Result<(), WorkflowError> {
    let stored = load(pool, id).await?;
    if !matches!(stored.state.as_str(), "draft" | "returned") {
        return Err(conflict(
            "已签发的报告不能修改，请使用修订（amend）",
            "a signed report is frozen: amend it to make a new version",
        ));
    }
    may_change(&stored, actor)?;
    check_content(pool, &report, Some(stored.study_id)).await?;
    as_draft(&mut report, stored.version, &identity_of(pool, stored.study_id).await?);
    let changes = diff(&content_only(&stored.content), &content_only(&report));
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE reports SET content = $1 WHERE id = $2 AND state IN ('draft', 'returned')")
        .bind(to_json(&report)?)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(changed_meanwhile());
    }
    record(&mut tx, id, actor, "edit", &changes, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Signs a draft: freezes it, records the content hash, adds the signature.
pub async fn sign(
    pool: &Pool,
    id: i64,
    actor: &Actor,
    deliveries: &crate::domain::deliveries::DeliverySettings,
) -> Result<(), WorkflowError> {
    let stored = load(pool, id).await?;
    if !matches!(stored.state.as_str(), "draft" | "returned") {
        return Err(conflict("该报告已签发", "the report is already signed"));
    }
    may_change(&stored, actor)?;
    let mut report = stored.content;
    if report.report_summary.trim().is_empty() {
        return Err(WorkflowError::Invalid {
            zh: "报告摘要为空，不能签发".into(),
            en: "the report summary is empty: nothing to sign".into(),
        });
    }
    let hash = content_hash(&report);
    let now = crate::support::clock::now_rfc3339();
    report.status = if stored.version > 1 { ReportStatus::Amended } else { ReportStatus::Signed };
    report.signatures = vec![Signature {
        role: actor.role.as_str().into(),
        name: actor.display_name.clone(),
        signed_at: now.clone(),
        content_hash: Some(hash.clone()),
    }];
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE reports SET state = 'signed', content = $1, content_sha256 = $2, signed_by = $3, signed_at = $4, \
         reviewed_by = NULL, reviewed_at = NULL WHERE id = $5 AND state IN ('draft', 'returned')",
    )
    .bind(to_json(&report)?)
    .bind(&hash)
    .bind(actor.user_id)
    .bind(&now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(changed_meanwhile());
    }
    record(&mut tx, id, actor, "sign", &[], None).await?;
    set_study_status(&mut tx, stored.study_id, "signed").await?;
    crate::domain::deliveries::queue(&mut tx, deliveries, id, "signed").await?;
    tx.commit().await?;
    Ok(())
}

/// The department head's review: countersign (the content must still match the signed hash), or return
/// it to the radiologist with a comment (the signature is withdrawn; it must be signed again).
pub async fn review(
    pool: &Pool,
    id: i64,
    actor: &Actor,
    countersign: bool,
    comment: Option<&str>,
    deliveries: &crate::domain::deliveries::DeliverySettings,
) -> Result<(), WorkflowError> {
    let stored = load(pool, id).await?;
    if stored.state != "signed" {
        return Err(conflict(
            "只有已签发、待审核的报告可以审核",
            "only a signed report awaiting review can be reviewed",
        ));
    }
    if stored.signed_by == Some(actor.user_id) {
        return Err(conflict("不能审核自己签发的报告", "you cannot review a report you signed yourself"));
    }
    if wrote_or_edited(pool, &stored, actor).await? {
        return Err(WorkflowError::NotYours {
            zh: "不能审核自己撰写或修改过的报告，请由另一位主任审核".into(),
            en: "you wrote or edited this version: another department head reviews it".into(),
        });
    }
    let mut report = stored.content;
    let now = crate::support::clock::now_rfc3339();
    let mut tx = pool.begin().await?;
    if countersign {
        let hash = content_hash(&report);
        if stored.content_sha256.as_deref() != Some(hash.as_str()) {
            return Err(conflict(
                "报告内容与签发时的哈希不符，已拒绝会签",
                "the report's content does not match the hash it was signed with; countersigning refused",
            ));
        }
        report.status = ReportStatus::Reviewed;
        report.signatures.push(Signature {
            role: actor.role.as_str().into(),
            name: actor.display_name.clone(),
            signed_at: now.clone(),
            content_hash: Some(hash),
        });
        let done = sqlx::query(
            "UPDATE reports SET state = 'reviewed', content = $1, reviewed_by = $2, reviewed_at = $3, \
             review_comment = $4 WHERE id = $5 AND state = 'signed'",
        )
        .bind(to_json(&report)?)
        .bind(actor.user_id)
        .bind(&now)
        .bind(comment)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(changed_meanwhile());
        }
        record(&mut tx, id, actor, "countersign", &[], comment).await?;
        set_study_status(&mut tx, stored.study_id, "reviewed").await?;
        crate::domain::deliveries::queue(&mut tx, deliveries, id, "reviewed").await?;
    } else {
        let Some(comment) = comment.filter(|c| !c.trim().is_empty()) else {
            return Err(WorkflowError::Invalid {
                zh: "退回时请写明修改意见".into(),
                en: "returning a report needs a comment saying what to change".into(),
            });
        };
        report.status = ReportStatus::Draft;
        report.signatures.clear();
        let done = sqlx::query(
            "UPDATE reports SET state = 'returned', content = $1, content_sha256 = NULL, signed_by = NULL, \
             signed_at = NULL, reviewed_by = $2, reviewed_at = $3, review_comment = $4 WHERE id = $5 AND state = 'signed'",
        )
        .bind(to_json(&report)?)
        .bind(actor.user_id)
        .bind(&now)
        .bind(comment)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(changed_meanwhile());
        }
        record(&mut tx, id, actor, "return", &[], Some(comment)).await?;
        set_study_status(&mut tx, stored.study_id, "returned").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the reviewer wrote this version or changed it before it was signed (a countersignature is a
/// second pair of eyes: it cannot be one's own).
async fn wrote_or_edited(pool: &Pool, stored: &Stored, actor: &Actor) -> Result<bool, WorkflowError> {
    if stored.created_by == actor.user_id {
        return Ok(true);
    }
    let edits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM report_events WHERE report_id = $1 AND user_id = $2 AND action IN ('create', 'edit')",
    )
    .bind(stored.id)
    .bind(actor.user_id)
    .fetch_one(pool)
    .await?;
    Ok(edits > 0)
}

/// Amends a signed or reviewed report: the old version is kept (superseded) and a new version starts as
/// a draft with the new content; the diff against the old version is recorded.
pub async fn amend(
    pool: &Pool,
    id: i64,
    actor: &Actor,
    mut report: Report,
    reason: &str,
) -> Result<i64, WorkflowError> {
    if reason.trim().is_empty() {
        return Err(WorkflowError::Invalid {
            zh: "请写明修订原因".into(), en: "an amendment needs a reason".into()
        });
    }
    let stored = load(pool, id).await?;
    if !matches!(stored.state.as_str(), "signed" | "reviewed") {
        return Err(conflict(
            "只有已签发的报告需要修订；草稿请直接修改",
            "only signed reports are amended; edit a draft directly",
        ));
    }
    may_change(&stored, actor)?;
    check_content(pool, &report, Some(stored.study_id)).await?;
    as_draft(&mut report, stored.version + 1, &identity_of(pool, stored.study_id).await?);
    let changes = diff(&content_only(&stored.content), &content_only(&report));
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE reports SET state = 'superseded' WHERE id = $1 AND state IN ('signed', 'reviewed')")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(changed_meanwhile());
    }
    let new_id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (study_id, version, supersedes, state, content, ai_draft, created_by, created_at, amend_reason) \
         VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(stored.study_id)
    .bind(stored.version + 1)
    .bind(stored.id)
    .bind(to_json(&report)?)
    .bind(stored.ai_draft.as_ref().map(Value::to_string))
    .bind(actor.user_id)
    .bind(crate::support::clock::now_rfc3339())
    .bind(reason.trim())
    .fetch_one(&mut *tx)
    .await?;
    record(&mut tx, new_id, actor, "amend", &changes, Some(reason.trim())).await?;
    set_study_status(&mut tx, stored.study_id, "draft").await?;
    tx.commit().await?;
    Ok(new_id)
}

/// Columns of a report's row that its view shows.
macro_rules! view_columns {
    () => {
        "id, study_id, version, state, content, ai_draft, content_sha256, created_by, signed_by, supersedes, created_at, \
         signed_at, reviewed_at, review_comment, amend_reason"
    };
}

/// Columns of report_events, with the report they belong to.
macro_rules! event_columns {
    () => {
        "report_events.report_id, report_events.ts, report_events.username, report_events.role, \
         report_events.action, report_events.changes, report_events.comment"
    };
}

pub async fn view(pool: &Pool, id: i64) -> Result<ReportView, WorkflowError> {
    let row = sqlx::query(concat!("SELECT ", view_columns!(), " FROM reports WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(WorkflowError::NotFound)?;
    let events =
        sqlx::query(concat!("SELECT ", event_columns!(), " FROM report_events WHERE report_id = $1 ORDER BY id"))
            .bind(id)
            .fetch_all(pool)
            .await?;
    let deliveries = crate::domain::deliveries::for_report(pool, id).await?;
    view_of(&row, events.iter().collect(), deliveries)
}

/// Every version of a study's reports, newest first: three statements however many versions there are.
pub async fn for_study(pool: &Pool, study_id: i64) -> Result<Vec<ReportView>, WorkflowError> {
    let rows =
        sqlx::query(concat!("SELECT ", view_columns!(), " FROM reports WHERE study_id = $1 ORDER BY version DESC"))
            .bind(study_id)
            .fetch_all(pool)
            .await?;
    let events = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM report_events JOIN reports ON reports.id = report_events.report_id WHERE reports.study_id = $1 \
         ORDER BY report_events.id"
    ))
    .bind(study_id)
    .fetch_all(pool)
    .await?;
    let deliveries = crate::domain::deliveries::for_study(pool, study_id).await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.get("id");
            let own_events = events.iter().filter(|e| e.get::<i64, _>("report_id") == id).collect();
            let own_deliveries = deliveries.iter().filter(|d| d.report_id == id).cloned().collect();
            view_of(row, own_events, own_deliveries)
        })
        .collect()
}

/// A report's view from its row (the [`view_columns`]), its events and its deliveries.
fn view_of(row: &DbRow, events: Vec<&DbRow>, deliveries: Vec<Delivery>) -> Result<ReportView, WorkflowError> {
    let stored = stored_of(row)?;
    let events = events
        .into_iter()
        .map(|r| {
            let changes: String = r.get("changes");
            Ok(Event {
                ts: r.get("ts"),
                username: r.get("username"),
                role: r.get("role"),
                action: r.get("action"),
                changes: serde_json::from_str(&changes).context("stored changes")?,
                comment: r.get("comment"),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let changes_since_ai_draft = match &stored.ai_draft {
        Some(draft) => diff(draft, &content_only(&stored.content)),
        None => Vec::new(),
    };
    Ok(ReportView {
        id: stored.id,
        study_id: stored.study_id,
        version: stored.version,
        supersedes: row.get("supersedes"),
        state: stored.state,
        content_sha256: stored.content_sha256,
        created_at: row.get("created_at"),
        signed_at: row.get("signed_at"),
        reviewed_at: row.get("reviewed_at"),
        review_comment: row.get("review_comment"),
        amend_reason: row.get("amend_reason"),
        report: stored.content,
        changes_since_ai_draft,
        events,
        deliveries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_name_the_leaf_that_changed() {
        let before =
            json!({"exam_id": "A", "findings": [{"location": "右肺上叶", "feature": "结节"}], "recommendation": ""});
        let after = json!({"exam_id": "A", "findings": [{"location": "右肺下叶", "feature": "结节"}, {"location": "左肺", "feature": "斑片"}], "recommendation": "随访"});
        let changes = diff(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["findings[0].location", "findings[1]", "recommendation"]);
        assert_eq!(changes[0].before, "右肺上叶");
        assert_eq!(changes[0].after, "右肺下叶");
        assert_eq!(changes[1].before, Value::Null);
        assert_eq!(changes[1].after["feature"], "斑片");
        assert!(diff(&before, &before).is_empty());
    }

    #[test]
    fn the_content_hash_ignores_workflow_fields_only() {
        let mut a: Report = serde_json::from_value(json!({"exam_id": "A", "report_summary": "两肺清晰"})).unwrap();
        let h = content_hash(&a);
        a.status = ReportStatus::Signed;
        a.signatures.push(Signature {
            role: "radiologist".into(),
            name: "王".into(),
            signed_at: "t".into(),
            content_hash: None,
        });
        assert_eq!(content_hash(&a), h);
        a.report_summary.push('。');
        assert_ne!(content_hash(&a), h);
    }
}
