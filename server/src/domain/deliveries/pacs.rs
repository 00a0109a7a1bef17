//! Reports back to the PACS: a signed report as an Encapsulated PDF instance (PS3.3 A.45.1) of its own
//! study, in a series of its own, sent by C-STORE to the peer that `--dicom-reports-to` names.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::domain::reports::ReportView;
use crate::support::dimse;
use crate::support::dimse_client::{Client, PeerAddress};

pub const ENCAPSULATED_PDF_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Where reports go (`--dicom-reports-to`), and who we say we are.
#[derive(Clone, Debug)]
pub struct PacsSettings {
    /// A peer of `medgemma-x dicom peer add`: its host and port are read at each delivery.
    pub peer_ae: String,
    pub our_ae: String,
}

/// One instance, ready to send.
pub struct Instance {
    pub sop_instance_uid: String,
    /// Explicit VR little endian.
    pub data_set: Vec<u8>,
}

/// A UID under 2.25 (PS3.5 B.2) derived from `parts`: the same report version always gets the same
/// instance, so a retry after a lost answer stores it again instead of a second copy.
fn derived_uid(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(first))
}

/// The report's PDF as an Encapsulated PDF data set of the report's study. `event` is the delivery's
/// (`signed`, `reviewed`): the countersigned PDF is an instance of its own beside the signed one (a PACS
/// that keeps the first copy of a UID would otherwise ignore it), numbered after it.
pub fn encapsulated_pdf(
    view: &ReportView,
    event: &str,
    pdf: &[u8],
    now: time::OffsetDateTime,
) -> anyhow::Result<Instance> {
    let report = &view.report;
    let study = report.study.as_ref().context("the report has no study")?;
    let study_uid = study.study_instance_uid.as_deref().context("the report's study has no Study Instance UID")?;
    let patient = report.patient.as_ref().context("the report has no patient")?;
    let series_uid = derived_uid(&["medgemma-x report series", study_uid, &view.id.to_string()]);
    let (report_id, version) = (view.id.to_string(), view.version.to_string());
    let instance_uid = derived_uid(&["medgemma-x report", study_uid, &report_id, &version, event]);
    let instance_number = view.version * 2 - i64::from(event != "reviewed");
    let date = format!("{:04}{:02}{:02}", now.year(), u8::from(now.month()), now.day());
    let time = format!("{:02}{:02}{:02}", now.hour(), now.minute(), now.second());
    let text = |value: Option<&String>| value.map(String::as_str).unwrap_or_default().as_bytes().to_vec();

    let mut set = DataSet::default();
    set.put(0x0008, 0x0005, b"CS", b"ISO_IR 192".to_vec()); // UTF-8: names and the title are Chinese
    set.put(0x0008, 0x0016, b"UI", ENCAPSULATED_PDF_STORAGE.as_bytes().to_vec());
    set.put(0x0008, 0x0018, b"UI", instance_uid.as_bytes().to_vec());
    set.put(0x0008, 0x0020, b"DA", text(study.study_date.as_ref()));
    set.put(0x0008, 0x0023, b"DA", date.into_bytes());
    set.put(0x0008, 0x0030, b"TM", Vec::new());
    set.put(0x0008, 0x0033, b"TM", time.into_bytes());
    set.put(0x0008, 0x0050, b"SH", text(study.accession_number.as_ref()));
    set.put(0x0008, 0x0060, b"CS", b"DOC".to_vec());
    set.put(0x0008, 0x0064, b"CS", b"WSD".to_vec());
    set.put(0x0008, 0x0070, b"LO", b"MedGemma-X".to_vec());
    set.put(0x0008, 0x0090, b"PN", Vec::new());
    set.put(0x0010, 0x0010, b"PN", text(patient.name.as_ref()));
    set.put(0x0010, 0x0020, b"LO", patient.id.as_bytes().to_vec());
    set.put(0x0010, 0x0030, b"DA", text(patient.birth_date.as_ref()).into_iter().filter(u8::is_ascii_digit).collect());
    set.put(0x0010, 0x0040, b"CS", text(patient.sex.as_ref()));
    set.put(0x0020, 0x000D, b"UI", study_uid.as_bytes().to_vec());
    set.put(0x0020, 0x000E, b"UI", series_uid.into_bytes());
    set.put(0x0020, 0x0010, b"SH", Vec::new());
    set.put(0x0020, 0x0011, b"IS", b"999".to_vec());
    set.put(0x0020, 0x0013, b"IS", instance_number.to_string().into_bytes());
    set.put(0x0028, 0x0301, b"CS", b"YES".to_vec());
    set.put(0x0040, 0xA043, b"SQ", Vec::new());
    set.put(0x0042, 0x0010, b"ST", "放射学诊断报告".as_bytes().to_vec());
    set.put(0x0042, 0x0011, b"OB", pdf.to_vec());
    set.put(0x0042, 0x0012, b"LO", b"application/pdf".to_vec());
    Ok(Instance { sop_instance_uid: instance_uid, data_set: set.to_explicit_le()? })
}

/// A value representation, as written ("UI", "OB" …).
type Vr = &'static [u8; 2];

/// A flat data set, written in tag order: (group, element) → (VR, value).
#[derive(Default)]
struct DataSet {
    elements: BTreeMap<(u16, u16), (Vr, Vec<u8>)>,
}

impl DataSet {
    fn put(&mut self, group: u16, element: u16, vr: Vr, value: Vec<u8>) {
        self.elements.insert((group, element), (vr, value));
    }

    fn to_explicit_le(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        for (&(group, element), (vr, value)) in &self.elements {
            let mut value = value.clone();
            if !value.len().is_multiple_of(2) {
                value.push(if matches!(*vr, b"UI" | b"OB") { 0 } else { b' ' });
            }
            out.extend_from_slice(&group.to_le_bytes());
            out.extend_from_slice(&element.to_le_bytes());
            out.extend_from_slice(*vr);
            if matches!(*vr, b"OB" | b"SQ") {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&u32::try_from(value.len())?.to_le_bytes());
            } else {
                let length = u16::try_from(value.len())
                    .with_context(|| format!("({group:04X},{element:04X}) is over 65534 bytes"))?;
                out.extend_from_slice(&length.to_le_bytes());
            }
            out.extend_from_slice(&value);
        }
        Ok(out)
    }
}

/// Sends one instance by C-STORE and waits for the answer. Blocking.
pub fn send(peer: &PeerAddress, instance: &Instance) -> anyhow::Result<()> {
    let peer_ae = &peer.peer_ae;
    let mut client =
        Client::connect(peer, ENCAPSULATED_PDF_STORAGE, &[EXPLICIT_VR_LITTLE_ENDIAN], Duration::from_secs(60))?;
    let message_id = client.message_id();
    client.send(
        dimse::store_request(message_id, ENCAPSULATED_PDF_STORAGE, &instance.sop_instance_uid),
        Some(&instance.data_set),
    )?;
    let (answer, _) = client.receive(dimse::MAX_IDENTIFIER_BYTES)?;
    client.release();
    match answer.status() {
        // Success, or a warning (coerced, elements discarded): the instance is stored.
        Some(0x0000 | 0x0001 | 0xB000..=0xBFFF) => Ok(()),
        status => bail!(
            "{peer_ae} refused the report: status {}{}",
            status.map_or_else(|| "missing".into(), |s| format!("{s:04X}")),
            answer.error_comment().map(|c| format!(" ({c})")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_are_valid_and_stable() {
        let a = derived_uid(&["x", "1.2.3", "7"]);
        assert_eq!(a, derived_uid(&["x", "1.2.3", "7"]));
        assert_ne!(a, derived_uid(&["x", "1.2.3", "8"]));
        assert!(a.len() <= 64 && a.starts_with("2.25.") && a[5..].chars().all(|c| c.is_ascii_digit()), "{a}");
        assert!(!a[5..].starts_with('0') || a.len() == 6, "no leading zero: {a}");
    }
}
