//! Studies, their series and instances: the worklist page, a study's detail, and the look-ups that the
//! chat, measurements and viewer routes make before they touch an image.
//!
//! The worklist puts studies with an urgent AI triage flag first (until a radiologist dismisses it), then
//! the newest. It is two queries whatever the page size (the page with its total, then the page's
//! modalities), the detail two (the summary, then series and instances in one join): a page of 500 used
//! to cost 502 round trips.

use app::studies::{InstanceSummary, SeriesDetail, StudyDetail, StudyList, StudySummary};
use sqlx::{FromRow, QueryBuilder};

use crate::store::db::{Backend, DbError, Pool};

/// The worklist's columns, a study and its patient with its counts, for the page and the detail.
macro_rules! summary_columns {
    () => {
        "SELECT studies.id, studies.study_uid, patients.patient_key, patients.patient_id, \
         patients.name AS patient_name, patients.birth_date AS patient_birth_date, patients.sex AS patient_sex, \
         studies.accession_number, studies.study_date, studies.description, studies.status, studies.source, \
         studies.created_at, triage.flags AS triage_flags, triage.urgent AS triage_urgent, \
         triage.basis AS triage_basis, triage.decision AS triage_decision, triage.model AS triage_model, \
         (SELECT COUNT(*) FROM series WHERE series.study_id = studies.id) AS series_count, \
         (SELECT COUNT(*) FROM instances JOIN series ON series.id = instances.series_id \
          WHERE series.study_id = studies.id) AS instance_count"
    };
}

macro_rules! summary_from {
    () => {
        " FROM studies JOIN patients ON patients.id = studies.patient_id \
         LEFT JOIN triage ON triage.study_id = studies.id"
    };
}

/// Part of a patient name, patient ID or accession number; `$1` is NULL for no search.
macro_rules! search_filter {
    () => {
        "($1 IS NULL OR patients.name LIKE $1 ESCAPE '\\' OR patients.patient_id LIKE $1 ESCAPE '\\' \
         OR studies.accession_number LIKE $1 ESCAPE '\\')"
    };
}

#[derive(FromRow)]
struct SummaryRow {
    id: i64,
    study_uid: String,
    patient_key: String,
    patient_id: Option<String>,
    patient_name: Option<String>,
    patient_birth_date: Option<String>,
    patient_sex: Option<String>,
    accession_number: Option<String>,
    study_date: Option<String>,
    description: Option<String>,
    status: String,
    source: String,
    created_at: String,
    series_count: i64,
    instance_count: i64,
    triage_flags: Option<String>,
    triage_urgent: Option<i64>,
    triage_basis: Option<String>,
    triage_decision: Option<String>,
    triage_model: Option<String>,
}

impl From<SummaryRow> for StudySummary {
    fn from(r: SummaryRow) -> StudySummary {
        StudySummary {
            id: r.id,
            study_uid: r.study_uid,
            patient_key: r.patient_key,
            patient_id: r.patient_id,
            patient_name: r.patient_name,
            patient_birth_date: r.patient_birth_date,
            patient_sex: r.patient_sex,
            accession_number: r.accession_number,
            study_date: r.study_date,
            description: r.description,
            status: r.status,
            source: r.source,
            created_at: r.created_at,
            series_count: r.series_count,
            instance_count: r.instance_count,
            modalities: Vec::new(),
            pre_read: None,
            triage: r.triage_flags.map(|flags| app::studies::TriageMark {
                flags: flags.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect(),
                urgent: r.triage_urgent == Some(1),
                basis: r.triage_basis.unwrap_or_default(),
                decision: r.triage_decision,
                model: r.triage_model.unwrap_or_default(),
            }),
        }
    }
}

/// A page row with the number of studies the search matches in all (a window over the same filter).
#[derive(FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    total: i64,
}

/// What a worklist page asks for.
#[derive(Clone, Debug, Default)]
pub struct WorklistQuery {
    /// Part of a patient name, patient ID or accession number; blank is no search.
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// LIKE pattern for a search term, with the term's own wildcards escaped.
fn like_pattern(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of the worklist, newest study first, with the total the search matches.
pub async fn worklist(pool: &Pool, query: &WorklistQuery) -> Result<StudyList, DbError> {
    let term = query.search.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(like_pattern);
    let rows: Vec<PageRow> = sqlx::query_as(concat!(
        summary_columns!(),
        ", (SELECT COUNT(*)",
        summary_from!(),
        " WHERE ",
        search_filter!(),
        ") AS total",
        summary_from!(),
        " WHERE ",
        search_filter!(),
        // Urgent AI triage flags first, until a radiologist dismisses them; then newest first.
        " ORDER BY (COALESCE(triage.urgent, 0) = 1 AND COALESCE(triage.decision, '') <> 'dismissed') DESC, \
         studies.study_date DESC, studies.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(&term)
    .bind(query.limit)
    .bind(query.offset)
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(row) => row.total,
        // A page past the end still says how many there are.
        None => count(pool, term.as_deref()).await?,
    };
    let mut studies: Vec<StudySummary> = rows.into_iter().map(|r| r.summary.into()).collect();
    fill_modalities(pool, &mut studies).await?;
    Ok(StudyList { studies, total })
}

async fn count(pool: &Pool, term: Option<&str>) -> Result<i64, DbError> {
    sqlx::query_scalar(concat!("SELECT COUNT(*)", summary_from!(), " WHERE ", search_filter!()))
        .bind(term)
        .fetch_one(pool)
        .await
}

/// The modalities of every study of a page, in one query.
async fn fill_modalities(pool: &Pool, studies: &mut [StudySummary]) -> Result<(), DbError> {
    if studies.is_empty() {
        return Ok(());
    }
    let mut query: QueryBuilder<Backend> = QueryBuilder::new(
        "SELECT DISTINCT study_id, modality FROM series WHERE modality IS NOT NULL AND study_id IN (",
    );
    let mut ids = query.separated(", ");
    for study in studies.iter() {
        ids.push_bind(study.id);
    }
    query.push(") ORDER BY study_id, modality");
    let pairs: Vec<(i64, String)> = query.build_query_as().fetch_all(pool).await?;
    for (study_id, modality) in pairs {
        if let Some(study) = studies.iter_mut().find(|s| s.id == study_id) {
            study.modalities.push(modality);
        }
    }
    Ok(())
}

#[derive(FromRow)]
struct SeriesInstanceRow {
    series_id: i64,
    series_uid: String,
    modality: Option<String>,
    series_number: Option<i64>,
    series_description: Option<String>,
    body_part: Option<String>,
    instance_id: Option<i64>,
    sop_instance_uid: Option<String>,
    instance_number: Option<i64>,
    format: Option<String>,
    rows: Option<i64>,
    columns: Option<i64>,
    frames: Option<i64>,
}

/// A study with its series and their instances in display order; None when there is no such study.
pub async fn detail(pool: &Pool, id: i64) -> Result<Option<StudyDetail>, DbError> {
    let summary: Option<SummaryRow> =
        sqlx::query_as(concat!(summary_columns!(), summary_from!(), " WHERE studies.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some(summary) = summary else { return Ok(None) };
    let rows: Vec<SeriesInstanceRow> = sqlx::query_as(
        "SELECT series.id AS series_id, series.series_uid, series.modality, series.series_number, \
         series.description AS series_description, series.body_part, instances.id AS instance_id, \
         instances.sop_instance_uid, instances.instance_number, instances.format, instances.rows, \
         instances.columns, instances.frames \
         FROM series LEFT JOIN instances ON instances.series_id = series.id WHERE series.study_id = $1 \
         ORDER BY series.series_number, series.id, instances.instance_number, instances.id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut series: Vec<SeriesDetail> = Vec::new();
    for row in rows {
        if series.last().is_none_or(|s| s.id != row.series_id) {
            series.push(SeriesDetail {
                id: row.series_id,
                series_uid: row.series_uid,
                modality: row.modality,
                series_number: row.series_number,
                description: row.series_description,
                body_part: row.body_part,
                instances: Vec::new(),
            });
        }
        let (Some(id), Some(sop_instance_uid), Some(format)) = (row.instance_id, row.sop_instance_uid, row.format)
        else {
            continue; // a series without instances (LEFT JOIN)
        };
        series.last_mut().expect("pushed above").instances.push(InstanceSummary {
            id,
            sop_instance_uid,
            instance_number: row.instance_number,
            format,
            rows: row.rows.unwrap_or_default(),
            columns: row.columns.unwrap_or_default(),
            frames: row.frames.unwrap_or_default(),
        });
    }
    let mut summary = StudySummary::from(summary);
    summary.modalities = series.iter().filter_map(|s| s.modality.clone()).collect();
    summary.modalities.sort();
    summary.modalities.dedup();
    Ok(Some(StudyDetail { summary, series }))
}

/// Studies not yet read that arrived at or after `since` (RFC 3339) and have no complete AI draft in
/// their conversation, oldest first, at most `limit`: the pre-reads a restart left undone.
pub async fn awaiting_pre_read(pool: &Pool, since: &str, limit: i64) -> Result<Vec<i64>, DbError> {
    sqlx::query_scalar(
        "SELECT id FROM studies WHERE status = 'new' AND created_at >= $1 AND NOT EXISTS \
         (SELECT 1 FROM chat_messages AS m WHERE m.study_id = studies.id AND m.role = 'assistant' \
          AND m.mode = 'report_draft' AND m.stop IN ('eos', 'max_tokens')) \
         ORDER BY id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Whether a study exists: for routes that act on a study's reports or measurements.
pub async fn exists(pool: &Pool, id: i64) -> Result<bool, DbError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM studies WHERE id = $1").bind(id).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// A study's patient and date, as the prompt, the prior look-up and a report draft need them.
#[derive(Clone, Debug, FromRow)]
pub struct StudyRef {
    pub id: i64,
    pub patient_id: i64,
    /// DICOM date, YYYYMMDD.
    pub study_date: Option<String>,
}

pub async fn study_ref(pool: &Pool, id: i64) -> Result<Option<StudyRef>, DbError> {
    sqlx::query_as("SELECT id, patient_id, study_date FROM studies WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The patient (database id) a study belongs to.
pub async fn patient_of_study(pool: &Pool, study_id: i64) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar("SELECT patient_id FROM studies WHERE id = $1").bind(study_id).fetch_optional(pool).await
}

/// The study date of the study an instance belongs to.
pub async fn study_date_of_instance(pool: &Pool, instance_id: i64) -> Result<Option<String>, DbError> {
    let date: Option<Option<String>> = sqlx::query_scalar(
        "SELECT studies.study_date FROM instances JOIN series ON series.id = instances.series_id \
         JOIN studies ON studies.id = series.study_id WHERE instances.id = $1",
    )
    .bind(instance_id)
    .fetch_optional(pool)
    .await?;
    Ok(date.flatten())
}

/// A study's first series (by number): its modality and its instances as (id, frames), in order. None
/// when the study has no series.
pub async fn first_series_instances(
    pool: &Pool,
    study_id: i64,
) -> Result<Option<(Option<String>, Vec<(i64, i64)>)>, DbError> {
    let first: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, modality FROM series WHERE study_id = $1 ORDER BY series_number, id LIMIT 1")
            .bind(study_id)
            .fetch_optional(pool)
            .await?;
    let Some((series_id, modality)) = first else { return Ok(None) };
    let instances: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, frames FROM instances WHERE series_id = $1 ORDER BY instance_number, id")
            .bind(series_id)
            .fetch_all(pool)
            .await?;
    Ok(Some((modality, instances)))
}

/// The first instance of the same patient's latest study on or before `study`'s date (not itself).
pub async fn prior_instance(pool: &Pool, study: &StudyRef) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar(
        "SELECT instances.id FROM studies JOIN series ON series.study_id = studies.id \
         JOIN instances ON instances.series_id = series.id \
         WHERE studies.patient_id = $1 AND studies.id <> $2 AND COALESCE(studies.study_date, '') <= COALESCE($3, '') \
         ORDER BY studies.study_date DESC, studies.id DESC, series.series_number, instances.instance_number, instances.id \
         LIMIT 1",
    )
    .bind(study.patient_id)
    .bind(study.id)
    .bind(&study.study_date)
    .fetch_optional(pool)
    .await
}

/// The ids of a study's instances.
pub async fn instance_ids(pool: &Pool, study_id: i64) -> Result<Vec<i64>, DbError> {
    sqlx::query_scalar(
        "SELECT instances.id FROM instances JOIN series ON series.id = instances.series_id WHERE series.study_id = $1",
    )
    .bind(study_id)
    .fetch_all(pool)
    .await
}

/// One stored instance with the study it belongs to, as the viewer, chat and measurement routes read it.
#[derive(Clone, Debug, FromRow)]
pub struct InstanceRow {
    pub id: i64,
    pub series_id: i64,
    pub study_id: i64,
    pub format: String,
    pub object_sha256: String,
    pub object_bytes: i64,
    /// The decoder's `DicomInfo` as JSON.
    pub metadata: String,
}

pub async fn instance(pool: &Pool, id: i64) -> Result<Option<InstanceRow>, DbError> {
    sqlx::query_as(
        "SELECT instances.id, instances.series_id, series.study_id, instances.format, instances.object_sha256, \
         instances.object_bytes, instances.metadata FROM instances JOIN series ON series.id = instances.series_id \
         WHERE instances.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

// ---- DICOM queries (C-FIND, later QIDO-RS) ----------------------------------------------------------
// The studies and series a query asks about, narrowed in SQL by the keys an index or a LIKE can take.
// Patterns use DICOM's wildcards (`*` any run, `?` one character). `domain::dicom_query` matches every
// key again exactly: this only keeps the rows few.

/// What narrows the studies; None (or empty) is no condition.
#[derive(Debug, Default)]
pub struct StudyFilter {
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub accession_number: Option<String>,
    pub description: Option<String>,
    pub study_uids: Vec<String>,
    /// YYYYMMDD, inclusive.
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub modality: Option<String>,
    pub limit: i64,
}

/// Studies that may match, newest first, with their modalities.
pub async fn studies_matching(pool: &Pool, filter: &StudyFilter) -> Result<Vec<StudySummary>, DbError> {
    let mut query: QueryBuilder<Backend> =
        QueryBuilder::new(concat!(summary_columns!(), summary_from!(), " WHERE 1 = 1"));
    push_like(&mut query, "patients.patient_id", filter.patient_id.as_deref());
    push_like(&mut query, "patients.name", filter.patient_name.as_deref());
    push_like(&mut query, "studies.accession_number", filter.accession_number.as_deref());
    push_like(&mut query, "studies.description", filter.description.as_deref());
    push_in(&mut query, "studies.study_uid", &filter.study_uids);
    if let Some(from) = &filter.date_from {
        query.push(" AND studies.study_date >= ").push_bind(from.clone());
    }
    if let Some(to) = &filter.date_to {
        query.push(" AND studies.study_date <= ").push_bind(to.clone());
    }
    if let Some(modality) = &filter.modality {
        query
            .push(" AND EXISTS (SELECT 1 FROM series WHERE series.study_id = studies.id AND series.modality = ")
            .push_bind(modality.clone())
            .push(")");
    }
    query.push(" ORDER BY studies.study_date DESC, studies.id DESC LIMIT ").push_bind(filter.limit);
    let rows: Vec<SummaryRow> = query.build_query_as().fetch_all(pool).await?;
    let mut found: Vec<StudySummary> = rows.into_iter().map(StudySummary::from).collect();
    fill_modalities(pool, &mut found).await?;
    Ok(found)
}

/// Our ids of the studies with these Study Instance UIDs (those we hold), as (UID, id).
pub async fn ids_by_study_uid(pool: &Pool, uids: &[String]) -> Result<Vec<(String, i64)>, DbError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query: QueryBuilder<Backend> = QueryBuilder::new("SELECT study_uid, id FROM studies WHERE 1 = 1");
    push_in(&mut query, "study_uid", uids);
    query.build_query_as().fetch_all(pool).await
}

/// A series as a query answers it.
#[derive(Debug, FromRow)]
pub struct HeldSeries {
    pub study_uid: String,
    pub series_uid: String,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub instance_count: i64,
}

/// The series of one study (by its Study Instance UID), narrowed to `series_uids` when any are given.
pub async fn series_matching(
    pool: &Pool,
    study_uid: &str,
    series_uids: &[String],
    limit: i64,
) -> Result<Vec<HeldSeries>, DbError> {
    let mut query: QueryBuilder<Backend> = QueryBuilder::new(
        "SELECT studies.study_uid, series.series_uid, series.modality, series.series_number, series.description, \
         series.body_part, (SELECT COUNT(*) FROM instances WHERE instances.series_id = series.id) AS instance_count \
         FROM series JOIN studies ON studies.id = series.study_id WHERE studies.study_uid = ",
    );
    query.push_bind(study_uid.to_string());
    push_in(&mut query, "series.series_uid", series_uids);
    query.push(" ORDER BY series.series_number, series.id LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(pool).await
}

/// `AND column LIKE pattern`, DICOM's wildcards turned into LIKE's and LIKE's own escaped.
fn push_like(query: &mut QueryBuilder<'_, Backend>, column: &'static str, pattern: Option<&str>) {
    let Some(pattern) = pattern else { return };
    let like: String = pattern
        .chars()
        .flat_map(|c| match c {
            '*' => vec!['%'],
            '?' => vec!['_'],
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    query.push(" AND ").push(column).push(" LIKE ").push_bind(like).push(" ESCAPE '\\'");
}

/// `AND column IN (…)` for a non-empty list.
fn push_in(query: &mut QueryBuilder<'_, Backend>, column: &'static str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    query.push(" AND ").push(column).push(" IN (");
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value.clone());
    }
    list.push_unseparated(")");
}
