//! The delivery worker: claims due outbox rows, renders each report in the target's format and sends it
//! (HTTP POST to the HIS, a file in its folder, or an instance to the PACS), recording the outcome and the
//! next retry.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::DeliverySettings;
use super::outbox::{Delivery, from_row};
use crate::domain::exports::{self, Format, Hl7Site};
use crate::domain::images::Images;
use crate::store::db::Pool;

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
    let now = crate::support::clock::now_rfc3339();
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
                    .bind(crate::support::clock::now_rfc3339())
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
    let view = crate::domain::reports::view(pool, row.report_id)
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
        Format::Pdf => crate::domain::key_images::for_report(pool, images, view.study_id, &report).await,
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
            // The report id as well: two studies may share an accession number, and one report's file must
            // never overwrite another's.
            let exam = safe_name(&view.report.exam_id);
            let name = format!("{exam}-r{}-v{}-{}.{}", row.report_id, view.version, row.event, format.extension());
            crate::support::files::write_atomically(&folder.join(name), &bytes)
        }
        "dicom" => {
            let pacs = settings.pacs.clone().context("--dicom-reports-to is no longer set")?;
            let peer = crate::domain::dicom::address_of(pool, &pacs.our_ae, &pacs.peer_ae)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let instance = super::pacs::encapsulated_pdf(&view, &row.event, &bytes, time::OffsetDateTime::now_utc())?;
            tokio::task::spawn_blocking(move || super::pacs::send(&peer, &instance)).await?
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
