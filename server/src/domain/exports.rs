//! A report rendered for the outside world: JSON, HL7 v2.5 ORU^R01, FHIR R4 or PDF. The CLI
//! (`medgemma-x report render`) and the API (`GET /api/v1/reports/{id}/export`) both come here.

use std::path::Path;

use report::Report;

use crate::domain::pdf::KeyImage;

#[derive(clap::ValueEnum, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Hl7,
    Fhir,
    Pdf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Hl7 => "x-application/hl7-v2+er7; charset=utf-8",
            Format::Fhir => "application/fhir+json; charset=utf-8",
            Format::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Hl7 => "hl7",
            Format::Fhir => "fhir.json",
            Format::Pdf => "pdf",
        }
    }
}

/// HL7 message header fields that depend on the site.
#[derive(Clone, Debug)]
pub struct Hl7Site {
    /// MSH-4.
    pub facility: String,
    /// MSH-5.
    pub receiver: String,
}

impl Default for Hl7Site {
    fn default() -> Self {
        Hl7Site { facility: "MEDGEMMA-X".into(), receiver: "HIS".into() }
    }
}

/// `font` is the CJK font for PDF (found with [`crate::domain::pdf::find_font`] when None); `key_images` go into
/// the PDF only (the server makes them from the study's measurements, [`crate::domain::key_images`]).
pub fn render(
    report: &Report,
    format: Format,
    site: &Hl7Site,
    font: Option<&Path>,
    key_images: &[KeyImage],
) -> anyhow::Result<Vec<u8>> {
    let now = time::OffsetDateTime::now_utc();
    Ok(match format {
        Format::Pdf => crate::domain::pdf::render(report, &crate::domain::pdf::find_font(font)?, key_images)?,
        Format::Json => (serde_json::to_string_pretty(report)? + "\n").into_bytes(),
        Format::Fhir => (serde_json::to_string_pretty(&report::fhir::render(report))? + "\n").into_bytes(),
        Format::Hl7 => report::hl7::render(
            report,
            &report::hl7::Envelope {
                sending_facility: site.facility.clone(),
                receiving_application: site.receiver.clone(),
                receiving_facility: String::new(),
                control_id: format!("{}-{}", report.exam_id, now.unix_timestamp()),
                timestamp: format!(
                    "{:04}{:02}{:02}{:02}{:02}{:02}",
                    now.year(),
                    u8::from(now.month()),
                    now.day(),
                    now.hour(),
                    now.minute(),
                    now.second()
                ),
            },
        )
        .into_bytes(),
    })
}
