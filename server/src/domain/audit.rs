//! The audit trail: one row per access to the API (views, uploads, questions, exports, sign-ins, failed
//! sign-ins, admin actions), append-only and hash-chained.
//!
//! Each row's `hash` is SHA-256 over the row's content (id included) and the previous row's hash, so a row
//! changed, removed or inserted behind the server's back breaks the chain from that row on; [`verify`] finds
//! the first such row. SQL triggers refuse UPDATE and DELETE, so only somebody who edits the database file
//! directly (and drops the triggers) can try, and the chain shows it. Patients appear only as HMAC
//! pseudonyms ([`crate::support::pseudonym`]). Rows are kept: nothing deletes them (the ≥ 6 months the rules ask
//! for is a floor, not a schedule).

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::store::db::Pool;

/// What one row says, before it is chained.
#[derive(Clone, Debug, Default)]
pub struct AuditEvent {
    /// user / token / anonymous / system
    pub actor_kind: &'static str,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub role: Option<String>,
    pub ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub patient_ref: Option<String>,
    pub study_id: Option<i64>,
    /// ok / denied / failed
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub detail: Option<String>,
}

/// Longest account name, role or address a row keeps, in characters (sign-in names are at most this).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest action, target or detail a row keeps, in characters.
pub const MAX_TEXT_CHARS: usize = 512;

/// `text` cut to at most `max` characters, the cut marked with "…" (so no caller, however hostile, makes
/// a row longer than the bounds above).
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

impl AuditEvent {
    /// Every text field within its bound.
    fn bounded(self) -> AuditEvent {
        let name = |v: Option<String>| v.map(|s| bounded(&s, MAX_NAME_CHARS));
        let text = |v: Option<String>| v.map(|s| bounded(&s, MAX_TEXT_CHARS));
        AuditEvent {
            actor_name: name(self.actor_name),
            role: name(self.role),
            ip: name(self.ip),
            action: bounded(&self.action, MAX_TEXT_CHARS),
            target: text(self.target),
            patient_ref: name(self.patient_ref),
            detail: text(self.detail),
            ..self
        }
    }
}

/// A stored row, as exported and as hashed (field order is the hash's canonical order).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub ts: String,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub role: Option<String>,
    pub ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub patient_ref: Option<String>,
    pub study_id: Option<i64>,
    pub outcome: String,
    pub status: Option<i64>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRow {
    /// SHA-256 of the row's JSON without its own hash.
    fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let json = serde_json::to_vec(&unhashed).expect("rows serialize");
        hex::encode(Sha256::digest(&json))
    }
}

/// Appends rows one at a time (each needs the previous row's hash). The server serializes its own writes
/// with a lock; the console commands (`user add` …) write too, from another process, so the chain's head
/// is read from the table every time, and an insert that lost the race for the next id is redone.
pub struct AuditLog {
    pool: Pool,
    writing: Mutex<()>,
}

impl AuditLog {
    pub fn new(pool: Pool) -> AuditLog {
        AuditLog { pool, writing: Mutex::new(()) }
    }

    pub async fn record(&self, event: AuditEvent) -> anyhow::Result<i64> {
        let _one_at_a_time = self.writing.lock().await;
        let mut attempts = 0;
        loop {
            match self.append(&event).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempts < 5 => attempts += 1,
                result => return result.context("cannot write the audit trail"),
            }
        }
    }

    async fn append(&self, event: &AuditEvent) -> Result<i64, sqlx::Error> {
        let (last_id, last_hash) = sqlx::query("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .map_or((0, GENESIS.to_string()), |r| (r.get("id"), r.get("hash")));
        let event = event.clone().bounded();
        let mut row = AuditRow {
            id: last_id + 1,
            ts: crate::support::clock::now_rfc3339(),
            actor_kind: event.actor_kind.to_string(),
            actor_id: event.actor_id,
            actor_name: event.actor_name,
            role: event.role,
            ip: event.ip,
            action: event.action,
            target: event.target,
            patient_ref: event.patient_ref,
            study_id: event.study_id,
            outcome: event.outcome.to_string(),
            status: event.status.map(i64::from),
            detail: event.detail,
            prev_hash: last_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        sqlx::query(
            "INSERT INTO audit_events (id, ts, actor_kind, actor_id, actor_name, role, ip, action, target, \
             patient_ref, study_id, outcome, status, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(row.id)
        .bind(&row.ts)
        .bind(&row.actor_kind)
        .bind(row.actor_id)
        .bind(&row.actor_name)
        .bind(&row.role)
        .bind(&row.ip)
        .bind(&row.action)
        .bind(&row.target)
        .bind(&row.patient_ref)
        .bind(row.study_id)
        .bind(&row.outcome)
        .bind(row.status)
        .bind(&row.detail)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&self.pool)
        .await?;
        Ok(row.id)
    }
}

fn from_row(r: &crate::store::db::Row) -> AuditRow {
    AuditRow {
        id: r.get("id"),
        ts: r.get("ts"),
        actor_kind: r.get("actor_kind"),
        actor_id: r.get("actor_id"),
        actor_name: r.get("actor_name"),
        role: r.get("role"),
        ip: r.get("ip"),
        action: r.get("action"),
        target: r.get("target"),
        patient_ref: r.get("patient_ref"),
        study_id: r.get("study_id"),
        outcome: r.get("outcome"),
        status: r.get("status"),
        detail: r.get("detail"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

/// Which rows to read: newest first up to `limit`, or a time window.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    pub patient_ref: Option<String>,
    pub limit: Option<i64>,
}

pub async fn rows(pool: &Pool, q: &Query) -> anyhow::Result<Vec<AuditRow>> {
    let rows = sqlx::query(
        "SELECT * FROM audit_events WHERE ($1 IS NULL OR ts >= $1) AND ($2 IS NULL OR ts < $2) \
         AND ($3 IS NULL OR patient_ref = $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(&q.from)
    .bind(&q.to)
    .bind(&q.patient_ref)
    .bind(q.limit.unwrap_or(1000).clamp(1, 1_000_000))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The rows as CSV (RFC 4180 quoting), header first.
pub fn to_csv(rows: &[AuditRow]) -> String {
    fn field(s: &str) -> String {
        // A cell a spreadsheet would run as a formula is made text with a leading quote (OWASP CSV injection).
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    }
    let opt = |v: &Option<String>| v.as_deref().map(field).unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let mut out = String::from(
        "id,ts,actor_kind,actor_id,actor_name,role,ip,action,target,patient_ref,study_id,outcome,status,detail,prev_hash,hash\n",
    );
    for r in rows {
        let cells = [
            r.id.to_string(),
            field(&r.ts),
            field(&r.actor_kind),
            num(r.actor_id),
            opt(&r.actor_name),
            opt(&r.role),
            opt(&r.ip),
            field(&r.action),
            opt(&r.target),
            opt(&r.patient_ref),
            num(r.study_id),
            field(&r.outcome),
            num(r.status),
            opt(&r.detail),
            field(&r.prev_hash),
            field(&r.hash),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verification {
    pub rows: i64,
    pub ok: bool,
    /// The first row where the chain breaks, and how.
    pub first_bad_id: Option<i64>,
    pub problem: Option<String>,
}

/// Walks the whole chain in id order.
pub async fn verify(pool: &Pool) -> anyhow::Result<Verification> {
    use futures_util::TryStreamExt;
    let mut stream = sqlx::query("SELECT * FROM audit_events ORDER BY id").fetch(pool);
    let (mut expected_id, mut prev_hash, mut count) = (1i64, GENESIS.to_string(), 0i64);
    while let Some(r) = stream.try_next().await? {
        let row = from_row(&r);
        count += 1;
        let problem = if row.id != expected_id {
            Some(format!("row {expected_id} is missing (next row is {})", row.id))
        } else if row.prev_hash != prev_hash {
            Some("its prev_hash is not the previous row's hash".to_string())
        } else if row.compute_hash() != row.hash {
            Some("its content does not match its hash (changed after it was written)".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Ok(Verification { rows: count, ok: false, first_bad_id: Some(row.id), problem: Some(problem) });
        }
        expected_id = row.id + 1;
        prev_hash = row.hash;
    }
    Ok(Verification { rows: count, ok: true, first_bad_id: None, problem: None })
}

/// The patient and study a route's path parameters point at, for the audit row (pseudonymized).
pub async fn subject(
    pool: &Pool,
    site_key: &crate::support::pseudonym::SiteKey,
    route: &str,
    id: Option<&str>,
) -> anyhow::Result<(Option<String>, Option<i64>)> {
    let Some(id) = id.and_then(|v| v.parse::<i64>().ok()) else { return Ok((None, None)) };
    let sql = if route.starts_with("/api/v1/studies/{id}") {
        "SELECT s.id, p.patient_key FROM studies s JOIN patients p ON p.id = s.patient_id WHERE s.id = $1"
    } else if route.starts_with("/api/v1/reports/{id}") {
        "SELECT s.id, p.patient_key FROM reports r JOIN studies s ON s.id = r.study_id \
         JOIN patients p ON p.id = s.patient_id WHERE r.id = $1"
    } else if route.starts_with("/api/v1/instances/{id}") {
        "SELECT s.id, p.patient_key FROM instances i JOIN series se ON se.id = i.series_id \
         JOIN studies s ON s.id = se.study_id JOIN patients p ON p.id = s.patient_id WHERE i.id = $1"
    } else if route.starts_with("/api/v1/measurements/{id}") {
        "SELECT s.id, p.patient_key FROM measurements m JOIN studies s ON s.id = m.study_id \
         JOIN patients p ON p.id = s.patient_id WHERE m.id = $1"
    } else {
        return Ok((None, None));
    };
    let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
    Ok(row.map_or((None, None), |r| {
        let key: String = r.get("patient_key");
        (Some(site_key.patient(&key)), Some(r.get("id")))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, Pool) {
        let tmp = tempfile::tempdir().unwrap();
        let location = crate::store::db::DatabaseLocation::SqliteFile(tmp.path().join("a.sqlite3"));
        let pool = crate::store::db::connect(&location).await.unwrap();
        (tmp, pool)
    }

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            actor_kind: "user",
            actor_name: Some("zhang".into()),
            action: action.into(),
            outcome: "ok",
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_chain_verifies_and_shows_a_changed_a_removed_and_a_forged_row() {
        let (_tmp, pool) = pool().await;
        let log = AuditLog::new(pool.clone());
        for i in 0..5 {
            log.record(event(&format!("GET /x/{i}"))).await.unwrap();
        }
        assert_eq!(verify(&pool).await.unwrap(), Verification { rows: 5, ok: true, first_bad_id: None, problem: None });

        // Through SQL the table refuses changes.
        let refused = sqlx::query("UPDATE audit_events SET actor_name = 'li' WHERE id = 3").execute(&pool).await;
        assert!(refused.unwrap_err().to_string().contains("append-only"));
        assert!(sqlx::query("DELETE FROM audit_events WHERE id = 3").execute(&pool).await.is_err());

        // Somebody with the file drops the trigger and edits row 3: the chain breaks there.
        sqlx::query("DROP TRIGGER audit_events_no_update").execute(&pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET actor_name = 'li' WHERE id = 3").execute(&pool).await.unwrap();
        let v = verify(&pool).await.unwrap();
        assert_eq!((v.ok, v.first_bad_id), (false, Some(3)), "{v:?}");
        assert!(v.problem.unwrap().contains("does not match its hash"));

        // ... and recomputes row 3's hash to hide it: now row 4 no longer follows.
        let row = rows(&pool, &Query::default()).await.unwrap().into_iter().find(|r| r.id == 3).unwrap();
        sqlx::query("UPDATE audit_events SET hash = $1 WHERE id = 3")
            .bind(row.compute_hash())
            .execute(&pool)
            .await
            .unwrap();
        let v = verify(&pool).await.unwrap();
        assert_eq!(v.first_bad_id, Some(4), "{v:?}");

        // Removing a row shows as a gap.
        let (_tmp2, pool2) = self::pool().await;
        let log2 = AuditLog::new(pool2.clone());
        for i in 0..3 {
            log2.record(event(&format!("GET /y/{i}"))).await.unwrap();
        }
        sqlx::query("DROP TRIGGER audit_events_no_delete").execute(&pool2).await.unwrap();
        sqlx::query("DELETE FROM audit_events WHERE id = 2").execute(&pool2).await.unwrap();
        let v = verify(&pool2).await.unwrap();
        assert_eq!(v.first_bad_id, Some(3));
        assert!(v.problem.unwrap().contains("row 2 is missing"));
    }

    #[tokio::test]
    async fn a_restarted_log_continues_the_chain() {
        let (_tmp, pool) = pool().await;
        AuditLog::new(pool.clone()).record(event("a")).await.unwrap();
        AuditLog::new(pool.clone()).record(event("b")).await.unwrap();
        assert!(verify(&pool).await.unwrap().ok);
        assert_eq!(verify(&pool).await.unwrap().rows, 2);
    }

    #[test]
    fn every_text_field_is_bounded() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "ab…");
        assert_eq!(bounded("张医生张医生", 4), "张医生…");
        let long = "x".repeat(100_000);
        let event = AuditEvent {
            actor_name: Some(long.clone()),
            action: long.clone(),
            target: Some(long.clone()),
            detail: Some(long),
            ..Default::default()
        }
        .bounded();
        assert_eq!(event.actor_name.unwrap().chars().count(), MAX_NAME_CHARS);
        assert_eq!(event.action.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(event.target.unwrap().chars().count(), MAX_TEXT_CHARS);
        assert_eq!(event.detail.unwrap().chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn csv_cells_that_look_like_formulas_are_made_text() {
        let row = |name: &str| AuditRow {
            id: 1,
            ts: "t".into(),
            actor_kind: "anonymous".into(),
            actor_id: None,
            actor_name: Some(name.into()),
            role: None,
            ip: None,
            action: "a".into(),
            target: None,
            patient_ref: None,
            study_id: None,
            outcome: "denied".into(),
            status: Some(401),
            detail: None,
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        for (name, cell) in [
            ("=1+2", "'=1+2"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
            ("plain", "plain"),
        ] {
            let csv = to_csv(&[row(name)]);
            assert!(
                csv.lines().nth(1).unwrap().starts_with(&format!("1,t,anonymous,,{cell},")) || name == "\rx",
                "{csv}"
            );
            assert!(csv.contains(&format!(",{cell},")), "{name}: {csv}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let row = AuditRow {
            id: 1,
            ts: "t".into(),
            actor_kind: "user".into(),
            actor_id: Some(2),
            actor_name: Some("a,b".into()),
            role: None,
            ip: None,
            action: "say \"hi\"".into(),
            target: None,
            patient_ref: None,
            study_id: None,
            outcome: "ok".into(),
            status: Some(200),
            detail: None,
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        let csv = to_csv(&[row]);
        assert!(
            csv.lines().nth(1).unwrap().starts_with("1,t,user,2,\"a,b\",,,\"say \"\"hi\"\"\",,,,ok,200,,p,h"),
            "{csv}"
        );
    }
}
