//! Delivery of signed reports to the hospital information system: HTTP POST of HL7 v2.5 (or FHIR R4) to a
//! configured endpoint, and/or files written atomically into a folder the HIS reads (HL7/FHIR and PDF).
//!
//! Durable outbox: signing a report and queueing its deliveries are one database transaction
//! ([`queue`] runs inside it). A worker ([`run`]) delivers due rows; a failure is retried after 2, 4, 8 …
//! seconds (at most 10 minutes apart) and recorded; after `give_up` the row is marked failed (an admin
//! can retry it). A restart simply finds the rows still pending.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::Pool;
use crate::exports::{self, Format, Hl7Site};
use crate::images::Images;

/// Where signed reports go (flags `--his-url`, `--his-format`, `--his-folder`, `--his-give-up-hours`).
#[derive(Clone, Debug, Default)]
pub struct DeliverySettings {
    /// `http://host:port/path` the HIS accepts messages at.
    pub url: Option<String>,
    /// What is POSTed: HL7 v2.5 (default) or FHIR R4.
    pub format: Option<Format>,
    /// A folder the HIS polls; each report lands as `<exam>-v<n>-<event>.hl7|.fhir.json` and `.pdf`.
    pub folder: Option<PathBuf>,
    pub give_up: Duration,
}

impl DeliverySettings {
    fn http_format(&self) -> Format {
        self.format.unwrap_or(Format::Hl7)
    }

    /// The (target, format) rows a report event queues.
    fn targets(&self) -> Vec<(&'static str, Format)> {
        let mut out = Vec::new();
        if self.url.is_some() {
            out.push(("http", self.http_format()));
        }
        if self.folder.is_some() {
            out.push(("folder", self.http_format()));
            out.push(("folder", Format::Pdf));
        }
        out
    }

    /// Refuses what this build cannot deliver to, at start rather than at the first signature.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.url {
            if url.starts_with("https://") {
                bail!(
                    "本版本以 HTTP 发送报告；HTTPS 接口请经院内 TLS 代理转发 / --his-url {url}: this build posts plain HTTP; \
                     put a TLS-terminating proxy in front of an HTTPS endpoint"
                );
            }
            if !url.starts_with("http://") {
                bail!("--his-url must be an http:// URL, not {url:?}");
            }
        }
        if matches!(self.format, Some(Format::Pdf | Format::Json)) {
            bail!("--his-format is hl7 or fhir");
        }
        Ok(())
    }
}

/// Queues the deliveries of a report event, inside the caller's transaction (the signature's).
pub async fn queue(
    tx: &mut sqlx::SqliteConnection,
    settings: &DeliverySettings,
    report_id: i64,
    event: &str,
) -> Result<(), sqlx::Error> {
    let now = crate::serve::now_rfc3339();
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

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Delivery {
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
    .bind(crate::serve::now_rfc3339())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The worker: delivers what is due, then waits for a new signature (`wake`) or 2 seconds; ends with the
/// server.
/// `images`: the PDF's key images are drawn from the study's stored images.
pub async fn run(
    pool: Pool,
    images: Arc<Images>,
    settings: DeliverySettings,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(30)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the HTTP client; reports are not delivered");
            return;
        }
    };
    loop {
        if let Err(e) = deliver_due(&pool, &images, &settings, &client).await {
            tracing::error!(error = format!("{e:#}"), "report delivery pass failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn deliver_due(
    pool: &Pool,
    images: &Arc<Images>,
    settings: &DeliverySettings,
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let now = crate::serve::now_rfc3339();
    let due =
        sqlx::query("SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT 20")
            .bind(&now)
            .fetch_all(pool)
            .await?;
    for row in due.iter().map(from_row) {
        let outcome = attempt(pool, images, settings, client, &row).await;
        let now = time::OffsetDateTime::now_utc();
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL WHERE id = $2")
                    .bind(crate::serve::now_rfc3339())
                    .bind(row.id)
                    .execute(pool)
                    .await?;
                tracing::info!(delivery = row.id, report = row.report_id, target = %row.target, format = %row.format, "report delivered");
            }
            Err(e) => {
                let attempts = row.attempts + 1;
                let wait =
                    Duration::from_secs(2u64.saturating_pow(u32::try_from(attempts).unwrap_or(u32::MAX)).min(600));
                let created =
                    time::OffsetDateTime::parse(&row.created_at, &time::format_description::well_known::Rfc3339)
                        .unwrap_or(now);
                let give_up = now - created > settings.give_up;
                let next = (now + wait).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                sqlx::query("UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $5")
                    .bind(if give_up { "failed" } else { "pending" })
                    .bind(attempts)
                    .bind(next)
                    .bind(format!("{e:#}"))
                    .bind(row.id)
                    .execute(pool)
                    .await?;
                tracing::warn!(delivery = row.id, report = row.report_id, target = %row.target, attempts, gave_up = give_up,
                    error = format!("{e:#}"), "report delivery failed");
            }
        }
    }
    Ok(())
}

async fn attempt(
    pool: &Pool,
    images: &Arc<Images>,
    settings: &DeliverySettings,
    client: &reqwest::Client,
    row: &Delivery,
) -> anyhow::Result<()> {
    let view = crate::reports::view(pool, row.report_id)
        .await
        .map_err(|e| anyhow::anyhow!("report {}: {e}", row.report_id))?;
    let format = match row.format.as_str() {
        "hl7" => Format::Hl7,
        "fhir.json" => Format::Fhir,
        "pdf" => Format::Pdf,
        other => bail!("unknown format {other}"),
    };
    let report = view.report.clone();
    let key_images = match format {
        Format::Pdf => crate::key_images::for_report(pool, images, view.study_id, &report).await,
        _ => Vec::new(),
    };
    let bytes =
        tokio::task::spawn_blocking(move || exports::render(&report, format, &Hl7Site::default(), None, &key_images))
            .await??;
    match row.target.as_str() {
        "http" => {
            let url = settings.url.as_deref().context("--his-url is no longer set")?;
            let response = client
                .post(url)
                .header("content-type", format.content_type())
                .body(bytes)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                bail!("the HIS answered {status}: {}", body.chars().take(200).collect::<String>());
            }
            Ok(())
        }
        "folder" => {
            let folder = settings.folder.as_ref().context("--his-folder is no longer set")?;
            let name =
                format!("{}-v{}-{}.{}", safe_name(&view.report.exam_id), view.version, row.event, format.extension());
            crate::files::write_atomically(&folder.join(name), &bytes)
        }
        other => bail!("unknown target {other}"),
    }
}

/// An exam id as a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`.
fn safe_name(exam_id: &str) -> String {
    let name: String = exam_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    name.trim_start_matches('.').chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exam_ids_become_plain_file_names() {
        assert_eq!(super::safe_name("CZ20240511-087"), "CZ20240511-087");
        assert_eq!(super::safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(super::safe_name("1.2.840.113619"), "1.2.840.113619");
    }
}
