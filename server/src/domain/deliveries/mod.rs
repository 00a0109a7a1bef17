//! Delivery of signed reports to the hospital information system: HTTP POST of HL7 v2.5 (or FHIR R4) to a
//! configured endpoint, and/or files written atomically into a folder the HIS reads (HL7/FHIR and PDF),
//! and/or the PDF as an Encapsulated PDF instance of the study, sent to the PACS by C-STORE ([`pacs`]).
//!
//! Durable outbox: signing a report and queueing its deliveries are one database transaction
//! ([`outbox::queue`] runs inside it). A worker ([`worker::run`]) delivers due rows; a failure is retried after 2, 4, 8 …
//! seconds (at most 10 minutes apart) and recorded; after `give_up` the row is marked failed (an admin
//! can retry it). A restart simply finds the rows still pending.

//!
//! [`outbox`] holds the table's operations (reports call it inside their transactions); [`worker`]
//! delivers, rendering each report through `reports` and `exports`. So reports → outbox, and
//! worker → reports, never back.

pub mod outbox;
pub mod pacs;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::domain::exports::Format;

pub use outbox::{Delivery, counts, for_report, for_study, list, queue, retry};
pub use worker::run;

/// Where signed reports go (flags `--his-url`, `--his-format`, `--his-folder`, `--his-give-up-hours`).
#[derive(Clone, Debug, Default)]
pub struct DeliverySettings {
    /// `http://host:port/path` the HIS accepts messages at.
    pub url: Option<String>,
    /// What is POSTed: HL7 v2.5 (default) or FHIR R4.
    pub format: Option<Format>,
    /// A folder the HIS polls; each report lands as `<exam>-v<n>-<event>.hl7|.fhir.json` and `.pdf`.
    pub folder: Option<PathBuf>,
    /// The PACS peer signed reports are sent to (`--dicom-reports-to`).
    pub pacs: Option<pacs::PacsSettings>,
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
        if self.pacs.is_some() {
            out.push(("dicom", Format::Pdf));
        }
        out
    }

    /// Whether reports go anywhere (else no delivery worker runs).
    pub fn any(&self) -> bool {
        !self.targets().is_empty()
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
