//! C-FIND SCP, Study Root, at the study and series levels: what a workstation or the PACS may ask of the
//! studies we hold. The identifier's keys go to `domain::dicom_query`; each match goes back as a pending
//! response with its data set, then the final status. Only peers allowed to query (`dicom peer add
//! --query`) are answered: with --dicom-accept-any, strangers may send images in, never read them out.

use std::net::TcpStream;

use dicom_ul::association::ServerAssociation;

use super::{Caller, Node};
use crate::domain::DomainError;
use crate::domain::audit::AuditEvent;
use crate::domain::dicom_query::{self, Level};
use crate::support::dimse::{self, Command, Response, STUDY_ROOT_FIND, field, status};

/// How one query ended: its final status and why (if not success), and how many matches went out.
struct Found {
    status: u16,
    comment: Option<String>,
    matches: usize,
    level: Option<Level>,
}

impl Found {
    fn failed(status: u16, comment: impl Into<String>) -> Found {
        Found { status, comment: Some(comment.into()), matches: 0, level: None }
    }
}

/// Answers one C-FIND request: sends a pending response with each match, audits the query and returns
/// the final response.
pub fn answer(
    node: &Node,
    association: &mut ServerAssociation<TcpStream>,
    context: u8,
    command: &Command,
    identifier: Result<Vec<u8>, String>,
    transfer_syntax: &str,
    caller: &Caller,
) -> Result<Response, String> {
    let found = if caller.may_query {
        find(node, association, context, command, identifier, transfer_syntax)?
    } else {
        Found::failed(status::NOT_AUTHORIZED, "this AE may not query (dicom peer add --query)")
    };
    node.audit(AuditEvent {
        actor_kind: "dicom",
        actor_name: Some(caller.ae_title.to_string()),
        ip: Some(caller.ip.to_string()),
        action: "dicom.find".into(),
        outcome: match found.status {
            status::SUCCESS => "ok",
            status::NOT_AUTHORIZED => "denied",
            _ => "failed",
        },
        status: Some(found.status),
        // The level and the count, never the keys: they are patients' names and IDs.
        detail: Some(format!(
            "level={} matches={}{}",
            found.level.map_or("?", |l| l.code()),
            found.matches,
            found.comment.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
        )),
        ..Default::default()
    });
    Ok(Response::to(command, field::C_FIND_RSP, found.status).with_failure(found.status, found.comment))
}

/// Runs the query and sends its matches as pending responses.
fn find(
    node: &Node,
    association: &mut ServerAssociation<TcpStream>,
    context: u8,
    command: &Command,
    identifier: Result<Vec<u8>, String>,
    transfer_syntax: &str,
) -> Result<Found, String> {
    if command.affected_sop_class().as_deref() != Some(STUDY_ROOT_FIND) {
        return Ok(Found::failed(status::CANNOT_UNDERSTAND, "only the Study Root model is served"));
    }
    let identifier = match identifier.and_then(|bytes| dimse::read_identifier(&bytes, transfer_syntax)) {
        Ok(identifier) => identifier,
        Err(reason) => return Ok(Found::failed(status::DATA_SET_DOES_NOT_MATCH, reason)),
    };
    let keys = dicom_query::keys_of(&identifier);
    let level_code = keys.iter().find(|k| k.tag == dicom_query::QUERY_RETRIEVE_LEVEL).map(|k| k.value.clone());
    let level = match Level::from_code(level_code.as_deref().unwrap_or_default()) {
        Ok(level) => level,
        Err(e) => return Ok(Found::failed(status::DATA_SET_DOES_NOT_MATCH, e.to_string())),
    };
    let ae_title = &node.settings.ae_title;
    let matches = match node.runtime.block_on(dicom_query::find(&node.db, level, &keys, Some(ae_title))) {
        Ok(matches) => matches,
        Err(DomainError::Invalid { en, .. }) => return Ok(Found::failed(status::DATA_SET_DOES_NOT_MATCH, en)),
        Err(e) => {
            tracing::error!(error = %e, "a C-FIND could not be answered");
            return Ok(Found::failed(status::CANNOT_UNDERSTAND, "the query failed"));
        }
    };
    for attributes in &matches {
        let data_set = dimse::write_identifier(&dicom_query::data_set_of(attributes), transfer_syntax)?;
        let pending = Response::to(command, field::C_FIND_RSP, status::PENDING).with_data_set();
        dimse::send_message(association, context, pending.to_bytes(), Some(&data_set)).map_err(|e| e.to_string())?;
    }
    Ok(Found { status: status::SUCCESS, comment: None, matches: matches.len(), level: Some(level) })
}
