//! One association: P-DATA fragments gathered into messages, C-ECHO answered, C-STORE received through
//! the same ingest as an upload, C-FIND answered from what we hold (`find`). An instance is on disk and in
//! the database before its success status goes out; a failure gets the status that says why (A700 out of
//! resources, A900 data set does not match the SOP class, C000 cannot understand), never a dropped
//! association without an answer.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_ul::Pdu;
use dicom_ul::association::{Association, ServerAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};

use super::{Caller, Node};
use crate::domain::audit::AuditEvent;
use crate::domain::ingest::{self, FileOutcome, InflateBudget, Status, UploaderIdentity};
use crate::support::dimse::{self, Command, MAX_COMMAND_BYTES, Response, field, status};

/// The SOP classes we take (and Verification, for C-ECHO).
pub const ABSTRACT_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.1",             // Verification
    "1.2.840.10008.5.1.4.1.1.1",     // Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",   // Digital X-Ray, for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1", // Digital X-Ray, for processing
    "1.2.840.10008.5.1.4.1.1.2",     // CT
    "1.2.840.10008.5.1.4.1.1.4",     // MR
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",   // Multi-frame Grayscale Byte Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.3",   // Multi-frame Grayscale Word Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.4",   // Multi-frame True Color Secondary Capture
    dimse::STUDY_ROOT_FIND,
];

/// Every transfer syntax the decoder reads.
pub const TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.4.70", // JPEG Lossless, first-order prediction (SV1)
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.51", // JPEG Extended
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.1.99", // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired; older consoles)
];

/// Our implementation's identity in the files we write (PS3.7 D.3.3.2): a UUID-derived UID (PS3.5 B.2), as
/// we own no UID root.
const IMPLEMENTATION_CLASS_UID: &str = "2.25.146402275825657016035453945760652281494";

/// What has arrived of the message in progress.
#[derive(Default)]
struct Message {
    context: u8,
    command_bytes: Vec<u8>,
    /// Once its last fragment came.
    command: Option<Command>,
    /// The data set so far, on disk.
    data: Option<Spool>,
    data_bytes: u64,
    /// Over the size limit, or the disk refused it: the rest is read and dropped, the answer is A700.
    refused: Option<String>,
}

/// A data set being received, written to the tmp dir as it comes: an association holds no more than a
/// PDU in memory, however large the instance. Removed when dropped (the message ended, or the
/// association broke off half-way).
struct Spool {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl Spool {
    fn create(dir: &Path) -> std::io::Result<Spool> {
        static RECEIVED: AtomicU64 = AtomicU64::new(0);
        let name = format!("dicom-{}-{}.part", std::process::id(), RECEIVED.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(name);
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        Ok(Spool { path, file })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What one association did.
#[derive(Default)]
struct Tally {
    stored: usize,
    failed: usize,
}

/// Runs one association to its end; returns the instances it stored and those it refused.
pub fn serve(node: &Node, stream: TcpStream, peer: &str) -> (usize, usize) {
    let mut association = match node.options(super::KnownPeers { node }).establish(stream) {
        Ok(association) => association,
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(%peer, error = %reason, "DICOM association refused");
            node.audit(AuditEvent {
                actor_kind: "dicom",
                ip: Some(peer.to_string()),
                action: "dicom.association".into(),
                outcome: "denied",
                detail: Some(reason),
                ..Default::default()
            });
            return (0, 0);
        }
    };
    let calling = association.peer_ae_title().trim().to_string();
    let called = association.called_ae_title().trim().to_string();
    // A stranger let in by --dicom-accept-any may send images, never query.
    let known = node.known_peers().into_iter().find(|p| p.ae_title == calling);
    let caller = Caller {
        ae_title: &calling,
        ip: peer,
        may_store: known.as_ref().is_none_or(|p| p.may_store),
        may_query: known.as_ref().is_some_and(|p| p.may_query),
    };
    let mut tally = Tally::default();
    let mut stored_studies = Vec::new();
    let ending = receive_all(node, &mut association, &caller, &mut tally, &mut stored_studies);
    if ending.is_err() {
        // Told, not just dropped: an oversized or garbled PDU, a time-out (a peer that aborted first
        // ignores this).
        let _ = association.abort();
    }
    let (outcome, detail) = match &ending {
        Ok(()) => ("ok", String::new()),
        Err(reason) => ("failed", format!(" ({reason})")),
    };
    tracing::info!(
        %peer, calling_ae = %calling, stored = tally.stored, failed = tally.failed, error = ending.err(),
        "DICOM association ended"
    );
    node.audit(AuditEvent {
        actor_kind: "dicom",
        actor_name: Some(calling.clone()),
        ip: Some(peer.to_string()),
        action: "dicom.association".into(),
        outcome,
        detail: Some(format!("called={called} stored={} failed={}{detail}", tally.stored, tally.failed)),
        ..Default::default()
    });
    // Once the association is over: a CT series is pre-read with all its slices, as an upload is.
    stored_studies.sort_unstable();
    stored_studies.dedup();
    let _in_runtime = node.runtime.enter(); // arrived() spawns its tasks on the server's runtime
    node.pre_reads.arrived(stored_studies);
    (tally.stored, tally.failed)
}

/// Reads PDUs until the peer releases or aborts the association.
fn receive_all(
    node: &Node,
    association: &mut ServerAssociation<TcpStream>,
    caller: &Caller,
    tally: &mut Tally,
    stored_studies: &mut Vec<i64>,
) -> Result<(), String> {
    let max_instance = node.images.limits.max_file_bytes;
    let mut message = Message::default();
    loop {
        let pdu = association.receive().map_err(|e| e.to_string())?;
        match pdu {
            Pdu::PData { data } => {
                for value in data {
                    if gather(&mut message, value, max_instance, &node.tmp_dir)? {
                        let finished = std::mem::take(&mut message);
                        respond(node, association, finished, caller, tally, stored_studies)?;
                    }
                }
            }
            Pdu::ReleaseRQ => {
                association.send(&Pdu::ReleaseRP).map_err(|e| e.to_string())?;
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Err("the peer aborted the association".into()),
            other => return Err(format!("unexpected {}", other.short_description())),
        }
    }
}

/// Adds one fragment to the message in progress; true when the message is complete (its command, and
/// its data set if the command announces one).
fn gather(message: &mut Message, value: PDataValue, max_instance: u64, tmp_dir: &Path) -> Result<bool, String> {
    if message.command_bytes.is_empty() {
        message.context = value.presentation_context_id;
    } else if value.presentation_context_id != message.context {
        return Err("fragments of one message on two presentation contexts".into());
    }
    match value.value_type {
        PDataValueType::Command => {
            if message.command.is_some() {
                return Err("a command fragment after the command ended".into());
            }
            if message.command_bytes.len() + value.data.len() > MAX_COMMAND_BYTES {
                return Err(format!("a command set over {MAX_COMMAND_BYTES} bytes"));
            }
            message.command_bytes.extend_from_slice(&value.data);
            if !value.is_last {
                return Ok(false);
            }
            let command = Command::parse(&message.command_bytes).map_err(|e| e.to_string())?;
            let complete = !command.has_data_set();
            message.command = Some(command);
            Ok(complete)
        }
        PDataValueType::Data => {
            if message.command.is_none() {
                return Err("a data fragment before the command".into());
            }
            message.data_bytes += value.data.len() as u64;
            if message.refused.is_none() && message.data_bytes > max_instance {
                message.refused = Some(format!("instance over the {max_instance}-byte limit"));
                message.data = None;
            }
            if message.refused.is_none() {
                let written = match &mut message.data {
                    Some(spool) => spool.file.write_all(&value.data),
                    None => Spool::create(tmp_dir).and_then(|mut spool| {
                        spool.file.write_all(&value.data)?;
                        message.data = Some(spool);
                        Ok(())
                    }),
                };
                if let Err(e) = written {
                    tracing::error!(error = %e, "cannot write a received instance");
                    message.refused = Some("cannot write to disk".into());
                    message.data = None;
                }
            }
            Ok(value.is_last)
        }
    }
}

/// Answers one complete message (a C-FIND with its pending matches first, then the final response).
fn respond(
    node: &Node,
    association: &mut ServerAssociation<TcpStream>,
    mut message: Message,
    caller: &Caller,
    tally: &mut Tally,
    stored_studies: &mut Vec<i64>,
) -> Result<(), String> {
    let context = message.context;
    // A message is complete only once its command has come.
    let Some(command) = message.command.take() else { unreachable!("a message completes with its command") };
    let transfer_syntax = association
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == context && pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| pc.transfer_syntax.clone());
    let response = match (command.field(), transfer_syntax) {
        (Some(field::C_ECHO_RQ), _) => Response::to(&command, field::C_ECHO_RSP, status::SUCCESS),
        // Nothing of ours runs long enough to cancel: a cancel arrives after its answer and gets none.
        (Some(field::C_CANCEL_RQ), _) => return Ok(()),
        (Some(field::C_STORE_RQ | field::C_FIND_RQ), None) => {
            Response::to(&command, command.field().unwrap_or(0) | 0x8000, status::CANNOT_UNDERSTAND)
                .with_comment("no accepted presentation context")
        }
        (Some(field::C_STORE_RQ), Some(transfer_syntax)) => {
            receive_instance(node, &command, message, &transfer_syntax, caller, tally, stored_studies)
        }
        (Some(field::C_FIND_RQ), Some(transfer_syntax)) => {
            let identifier = identifier_bytes(message);
            super::find::answer(node, association, context, &command, identifier, &transfer_syntax, caller)?
        }
        (Some(other), _) => Response::to(&command, other | 0x8000, status::UNRECOGNIZED_OPERATION)
            .with_comment("this node serves C-ECHO, C-STORE and C-FIND"),
        (None, _) => unreachable!("a command without a Command Field does not parse"),
    };
    dimse::send_message(association, context, response.to_bytes(), None).map_err(|e| e.to_string())
}

/// Stores one instance (if the caller may send), counts and audits it; the C-STORE response.
fn receive_instance(
    node: &Node,
    command: &Command,
    message: Message,
    transfer_syntax: &str,
    caller: &Caller,
    tally: &mut Tally,
    stored_studies: &mut Vec<i64>,
) -> Response {
    let (status_code, comment, study) = if caller.may_store {
        store(node, command, message, transfer_syntax, caller.ae_title)
    } else {
        (status::NOT_AUTHORIZED, Some("this AE may not store to us".to_string()), None)
    };
    if status_code == status::SUCCESS {
        tally.stored += 1;
        stored_studies.extend(study);
    } else {
        tally.failed += 1;
    }
    node.audit(AuditEvent {
        actor_kind: "dicom",
        actor_name: Some(caller.ae_title.to_string()),
        ip: Some(caller.ip.to_string()),
        action: "dicom.store".into(),
        study_id: study,
        outcome: if status_code == status::SUCCESS { "ok" } else { "failed" },
        status: Some(status_code),
        detail: comment.clone(),
        ..Default::default()
    });
    Response::to(command, field::C_STORE_RSP, status_code).with_failure(status_code, comment)
}

/// A C-FIND's identifier, read back from its spool (small: bounded before it is read).
fn identifier_bytes(mut message: Message) -> Result<Vec<u8>, String> {
    if message.refused.is_some() || message.data_bytes > dimse::MAX_IDENTIFIER_BYTES as u64 {
        return Err(format!("an identifier of {} bytes is over the limit", message.data_bytes));
    }
    let Some(spool) = message.data.as_mut() else { return Err("no identifier".into()) };
    spool.file.flush().map_err(|e| e.to_string())?;
    std::fs::read(&spool.path).map_err(|e| e.to_string())
}

/// Stores one received instance: written as a DICOM file (our file meta, the data set exactly as it
/// came), checked against the command, and ingested. Returns the status, why if not success, and the
/// study it landed in.
fn store(
    node: &Node,
    command: &Command,
    message: Message,
    transfer_syntax: &str,
    calling: &str,
) -> (u16, Option<String>, Option<i64>) {
    if let Some(why) = message.refused {
        return (status::OUT_OF_RESOURCES, Some(format!("{why} ({} bytes)", message.data_bytes)), None);
    }
    if let Some(free) = node.disk.low() {
        return (status::OUT_OF_RESOURCES, Some(format!("disk almost full ({} MiB free)", free >> 20)), None);
    }
    let (Some(class), Some(instance)) = (command.affected_sop_class(), command.affected_sop_instance()) else {
        return (status::CANNOT_UNDERSTAND, Some("no Affected SOP Class or Instance UID".into()), None);
    };
    let Some(data) = message.data else {
        return (status::CANNOT_UNDERSTAND, Some("an empty data set".into()), None);
    };
    let tmp = data.path.with_extension("dcm");
    if let Err(e) = write_part10(&tmp, &class, &instance, transfer_syntax, calling, data) {
        let _ = std::fs::remove_file(&tmp);
        tracing::error!(error = %e, "cannot write a received instance");
        return (status::OUT_OF_RESOURCES, Some("cannot write to disk".into()), None);
    }
    match data_set_identity(&tmp) {
        Ok((data_class, data_instance)) if data_class == class && data_instance == instance => {}
        Ok((data_class, data_instance)) => {
            let _ = std::fs::remove_file(&tmp);
            let comment = format!("data set is {data_class} / {data_instance}, the command says {class} / {instance}");
            return (status::DATA_SET_DOES_NOT_MATCH, Some(comment), None);
        }
        Err(reason) => {
            let _ = std::fs::remove_file(&tmp);
            return (status::CANNOT_UNDERSTAND, Some(reason), None);
        }
    }
    let name = format!("{calling}:{instance}");
    let mut inflate = InflateBudget(0);
    let ingested = node.runtime.block_on(ingest::ingest_file(
        &node.db,
        &node.images,
        tmp.clone(),
        name,
        &UploaderIdentity::default(),
        &mut inflate,
    ));
    let _ = std::fs::remove_file(&tmp);
    match ingested.map(|mut outcomes| outcomes.pop()) {
        Ok(Some(FileOutcome { status: Status::Stored | Status::Duplicate, study_id, .. })) => {
            (status::SUCCESS, None, study_id)
        }
        Ok(Some(FileOutcome { code, message_en, .. })) => {
            let status = match code {
                Some("too_large") => status::OUT_OF_RESOURCES,
                Some("no_pixels") => status::DATA_SET_DOES_NOT_MATCH,
                _ => status::CANNOT_UNDERSTAND,
            };
            (status, message_en, None)
        }
        Ok(None) => (status::CANNOT_UNDERSTAND, Some("nothing in the data set".into()), None),
        Err(e) => {
            tracing::error!(error = %e, "a received instance could not be stored");
            (status::OUT_OF_RESOURCES, Some("could not be stored".into()), None)
        }
    }
}

/// A DICOM file: preamble, "DICM", our file meta group, and the data set bytes as received (copied from
/// the spool, which goes with it).
fn write_part10(
    path: &Path,
    class: &str,
    instance: &str,
    transfer_syntax: &str,
    calling: &str,
    mut data_set: Spool,
) -> anyhow::Result<()> {
    let meta = dicom_object::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(instance)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(format!("MEDGEMMAX_{}", crate::VERSION).chars().take(16).collect::<String>())
        .source_application_entity_title(calling)
        .build()?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&[0u8; 128])?;
    file.write_all(b"DICM")?;
    meta.write(&mut file)?;
    data_set.file.flush()?;
    std::io::copy(&mut std::fs::File::open(&data_set.path)?, &mut file)?;
    file.flush()?;
    Ok(())
}

/// The SOP Class and Instance UIDs the data set itself carries (read up to the pixel data only).
fn data_set_identity(path: &std::path::Path) -> Result<(String, String), String> {
    use dicom_dictionary_std::tags;
    let object = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| format!("unreadable data set: {e}"))?;
    let text = |tag| {
        object.element(tag).ok().and_then(|e| e.to_str().ok()).map(|s| s.trim_end_matches(['\0', ' ']).to_string())
    };
    match (text(tags::SOP_CLASS_UID), text(tags::SOP_INSTANCE_UID)) {
        (Some(class), Some(instance)) => Ok((class, instance)),
        _ => Err("the data set has no SOP Class or Instance UID".into()),
    }
}
