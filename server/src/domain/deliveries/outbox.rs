//! The delivery outbox table: rows queued inside a report's signing transaction, listed for the admin
//! page and /metrics, and put back to pending on an admin's retry.

use serde::Serialize;
use sqlx::Row;

use super::DeliverySettings;
use crate::store::db::{Connection, Pool};

/// Queues the deliveries of a report event, inside the caller's transaction (the signature's).
pub async fn queue(
    tx: &mut Connection,
    settings: &DeliverySettings,
    report_id: i64,
    event: &str,
) -> Result<(), sqlx::Error> {
    let now = crate::support::clock::now_rfc3339();
    for (target, format) in settings.targets() {
        sqlx::query(
            "INSERT INTO deliveries (report_id, event, target, format, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(report_id)
        .bind(event)
        .bind(target)
        .bind(format.extension())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub report_id: i64,
    pub event: String,
    pub target: String,
    pub format: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

pub(super) fn from_row(r: &crate::store::db::Row) -> Delivery {
    Delivery {
        id: r.get("id"),
        report_id: r.get("report_id"),
        event: r.get("event"),
        target: r.get("target"),
        format: r.get("format"),
        state: r.get("state"),
        attempts: r.get("attempts"),
        next_attempt_at: r.get("next_attempt_at"),
        last_error: r.get("last_error"),
        created_at: r.get("created_at"),
        delivered_at: r.get("delivered_at"),
    }
}

pub async fn for_report(pool: &Pool, report_id: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM deliveries WHERE report_id = $1 ORDER BY id")
        .bind(report_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The deliveries of every report of a study, in the order they were queued.
pub async fn for_study(pool: &Pool, study_id: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT deliveries.* FROM deliveries JOIN reports ON reports.id = deliveries.report_id \
         WHERE reports.study_id = $1 ORDER BY deliveries.id",
    )
    .bind(study_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// The newest deliveries, optionally in one state (for the admin and for monitoring).
pub async fn list(pool: &Pool, state: Option<&str>, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM deliveries WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2")
        .bind(state)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Counts by state, for /metrics.
pub async fn counts(pool: &Pool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state")
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
}

/// A failed delivery back into the queue, due now. False when there is no failed row with that id.
pub async fn retry(pool: &Pool, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2 AND state = 'failed'",
    )
    .bind(crate::support::clock::now_rfc3339())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
