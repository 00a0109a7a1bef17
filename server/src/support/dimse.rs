//! DIMSE command sets (PS3.7 §9.3, §E): the group-0000 elements that head every DICOM message, always in
//! implicit VR little endian. Read and written here by hand: a command set is a flat list of a dozen
//! small elements, and a reader that never allocates more than the bytes it was given is what a hostile
//! peer calls for. Here, below the layers, because both doors use them: the DICOM listener (`dimse/`)
//! answers requests, the delivery worker (`domain::deliveries`) sends reports to the PACS.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{InMemDicomObject, StandardDataDictionary};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::Pdu;
use dicom_ul::association::SyncAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType};

/// Study Root Query/Retrieve Information Model – FIND and – MOVE (PS3.4 C.6.2).
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";

/// The largest command set read; real ones are under 200 bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// Command Field values (0000,0100).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// Status values (0000,0900) this node answers with.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (the instance is over the size limit, the disk is full).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: the data set does not match the SOP class.
    pub const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
    /// Error: cannot understand.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// The request's command is not one this node serves.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Refused: the peer may not do this (a C-FIND from a peer without the right to query).
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// A match follows; more may come (C-FIND), or sub-operations go on (C-MOVE).
    pub const PENDING: u16 = 0xFF00;
    /// The same, with optional keys not supported.
    pub const PENDING_WARNING: u16 = 0xFF01;
    /// Matching or sub-operations stopped at the peer's C-CANCEL.
    pub const CANCELED: u16 = 0xFE00;

    /// Whether a response status says more responses follow.
    pub fn is_pending(status: u16) -> bool {
        matches!(status, PENDING | PENDING_WARNING)
    }
}

const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
const PRIORITY: u16 = 0x0700;
const COMMAND_FIELD: u16 = 0x0100;
const MESSAGE_ID: u16 = 0x0110;
const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
const STATUS: u16 = 0x0900;
const ERROR_COMMENT: u16 = 0x0902;
const MOVE_DESTINATION: u16 = 0x0600;
const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
const REMAINING_SUB_OPERATIONS: u16 = 0x1020;
const COMPLETED_SUB_OPERATIONS: u16 = 0x1021;
const FAILED_SUB_OPERATIONS: u16 = 0x1022;
const WARNING_SUB_OPERATIONS: u16 = 0x1023;

/// Command Data Set Type of a message without a data set (any other value: one follows).
const NO_DATA_SET: u16 = 0x0101;
const DATA_SET: u16 = 0x0000;
/// Priority (0000,0700): medium.
const MEDIUM: u16 = 0x0000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("a command set of {0} bytes is over the {MAX_COMMAND_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("the command set ends inside an element")]
    Truncated,
    #[error("element ({0:04X},{1:04X}) is not of the command group")]
    NotCommandGroup(u16, u16),
    #[error("element (0000,{0:04X}) appears twice")]
    Repeated(u16),
    #[error("no {0}")]
    Missing(&'static str),
}

/// A received command set: element number (group 0000) → raw value.
#[derive(Debug)]
pub struct Command {
    elements: BTreeMap<u16, Vec<u8>>,
}

impl Command {
    /// Parses the bytes of one command set; every length is checked against the bytes left.
    pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(CommandError::TooLarge(bytes.len()));
        }
        let mut elements = BTreeMap::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at_checked(8).ok_or(CommandError::Truncated)?;
            let group = u16::from_le_bytes([head[0], head[1]]);
            let element = u16::from_le_bytes([head[2], head[3]]);
            let length = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if group != 0 {
                return Err(CommandError::NotCommandGroup(group, element));
            }
            let (value, tail) = tail.split_at_checked(length).ok_or(CommandError::Truncated)?;
            if elements.insert(element, value.to_vec()).is_some() {
                return Err(CommandError::Repeated(element));
            }
            rest = tail;
        }
        let command = Command { elements };
        command.field().ok_or(CommandError::Missing("Command Field (0000,0100)"))?;
        Ok(command)
    }

    fn u16(&self, element: u16) -> Option<u16> {
        match self.elements.get(&element)?.as_slice() {
            [a, b] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    /// A text value without its padding (UIDs pad with NUL, other strings with spaces).
    fn text(&self, element: u16) -> Option<String> {
        let value = self.elements.get(&element)?;
        let text = String::from_utf8_lossy(value);
        Some(text.trim_end_matches(['\0', ' ']).trim_start().to_string())
    }

    pub fn field(&self) -> Option<u16> {
        self.u16(COMMAND_FIELD)
    }

    /// Message ID; requests without one are answered as message 0.
    pub fn message_id(&self) -> u16 {
        self.u16(MESSAGE_ID).unwrap_or(0)
    }

    pub fn affected_sop_class(&self) -> Option<String> {
        self.text(AFFECTED_SOP_CLASS_UID).filter(|s| !s.is_empty())
    }

    pub fn affected_sop_instance(&self) -> Option<String> {
        self.text(AFFECTED_SOP_INSTANCE_UID).filter(|s| !s.is_empty())
    }

    /// Whether a data set follows the command (Command Data Set Type other than 0101H).
    pub fn has_data_set(&self) -> bool {
        self.u16(COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATA_SET)
    }

    /// A response's Status (0000,0900).
    pub fn status(&self) -> Option<u16> {
        self.u16(STATUS)
    }

    /// A response's Error Comment (0000,0902), if it has one.
    pub fn error_comment(&self) -> Option<String> {
        self.text(ERROR_COMMENT).filter(|s| !s.is_empty())
    }

    /// The message a response answers (0000,0120).
    pub fn responding_to(&self) -> Option<u16> {
        self.u16(MESSAGE_ID_BEING_RESPONDED_TO)
    }

    /// A C-MOVE response's sub-operation counts.
    pub fn sub_operations(&self) -> SubOperations {
        SubOperations {
            remaining: self.u16(REMAINING_SUB_OPERATIONS),
            completed: self.u16(COMPLETED_SUB_OPERATIONS).unwrap_or(0),
            failed: self.u16(FAILED_SUB_OPERATIONS).unwrap_or(0),
            warning: self.u16(WARNING_SUB_OPERATIONS).unwrap_or(0),
        }
    }
}

/// Where a C-MOVE stands: the instances still to send, and those sent, failed and sent with a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubOperations {
    pub remaining: Option<u16>,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

/// A C-STORE request for one instance (a data set follows it).
pub fn store_request(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut elements = BTreeMap::new();
    elements.insert(AFFECTED_SOP_CLASS_UID, padded(sop_class.as_bytes(), 0));
    elements.insert(COMMAND_FIELD, field::C_STORE_RQ.to_le_bytes().to_vec());
    elements.insert(MESSAGE_ID, message_id.to_le_bytes().to_vec());
    elements.insert(PRIORITY, MEDIUM.to_le_bytes().to_vec());
    elements.insert(COMMAND_DATA_SET_TYPE, DATA_SET.to_le_bytes().to_vec());
    elements.insert(AFFECTED_SOP_INSTANCE_UID, padded(sop_instance.as_bytes(), 0));
    write(&elements)
}

/// A C-FIND request of `sop_class` (its identifier follows).
pub fn find_request(message_id: u16, sop_class: &str) -> Vec<u8> {
    write(&query_request(field::C_FIND_RQ, message_id, sop_class))
}

/// A C-MOVE request of `sop_class`, sending what the identifier names to the AE `destination`.
pub fn move_request(message_id: u16, sop_class: &str, destination: &str) -> Vec<u8> {
    let mut elements = query_request(field::C_MOVE_RQ, message_id, sop_class);
    elements.insert(MOVE_DESTINATION, padded(destination.as_bytes(), b' '));
    write(&elements)
}

fn query_request(command_field: u16, message_id: u16, sop_class: &str) -> BTreeMap<u16, Vec<u8>> {
    let mut elements = BTreeMap::new();
    elements.insert(AFFECTED_SOP_CLASS_UID, padded(sop_class.as_bytes(), 0));
    elements.insert(COMMAND_FIELD, command_field.to_le_bytes().to_vec());
    elements.insert(MESSAGE_ID, message_id.to_le_bytes().to_vec());
    elements.insert(PRIORITY, MEDIUM.to_le_bytes().to_vec());
    elements.insert(COMMAND_DATA_SET_TYPE, DATA_SET.to_le_bytes().to_vec());
    elements
}

/// A response command set, written in tag order with its group length first.
pub struct Response {
    elements: BTreeMap<u16, Vec<u8>>,
}

impl Response {
    /// The response to `request` with `status`; no data set follows.
    pub fn to(request: &Command, response_field: u16, status: u16) -> Response {
        let mut elements = BTreeMap::new();
        elements.insert(COMMAND_FIELD, response_field.to_le_bytes().to_vec());
        elements.insert(MESSAGE_ID_BEING_RESPONDED_TO, request.message_id().to_le_bytes().to_vec());
        elements.insert(COMMAND_DATA_SET_TYPE, NO_DATA_SET.to_le_bytes().to_vec());
        elements.insert(STATUS, status.to_le_bytes().to_vec());
        let mut response = Response { elements };
        if let Some(class) = request.affected_sop_class() {
            response.elements.insert(AFFECTED_SOP_CLASS_UID, padded(class.as_bytes(), 0));
        }
        if let Some(instance) = request.affected_sop_instance() {
            response.elements.insert(AFFECTED_SOP_INSTANCE_UID, padded(instance.as_bytes(), 0));
        }
        response
    }

    /// A data set (a C-FIND match) follows this response.
    pub fn with_data_set(mut self) -> Response {
        self.elements.insert(COMMAND_DATA_SET_TYPE, DATA_SET.to_le_bytes().to_vec());
        self
    }

    /// With `comment` as its Error Comment when `status` is not success.
    pub fn with_failure(self, status: u16, comment: Option<String>) -> Response {
        match comment {
            Some(comment) if status != status::SUCCESS => self.with_comment(&comment),
            _ => self,
        }
    }

    /// Error Comment (0000,0902): why, for the sender's log; at most 64 characters (LO), ASCII.
    pub fn with_comment(mut self, comment: &str) -> Response {
        let ascii: String = comment.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(64).collect();
        self.elements.insert(ERROR_COMMENT, padded(ascii.as_bytes(), b' '));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        write(&self.elements)
    }
}

/// The largest identifier (a C-FIND query, a match) read or written; real ones are a few hundred bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 64 * 1024;

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// The transfer syntaxes identifiers travel in (what C-FIND and C-MOVE contexts accept).
pub const IDENTIFIER_TRANSFER_SYNTAXES: &[&str] = &[EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN];

/// An identifier's data set in `transfer_syntax` (implicit or explicit VR little endian). Every length
/// in it is checked against the bytes there before the parser sees them: a lying length is an error,
/// not an allocation of what it claims.
pub fn read_identifier(bytes: &[u8], transfer_syntax: &str) -> Result<InMemDicomObject, String> {
    if bytes.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!("an identifier of {} bytes is over the {MAX_IDENTIFIER_BYTES}-byte limit", bytes.len()));
    }
    let explicit = match transfer_syntax.trim_end_matches('\0') {
        EXPLICIT_VR_LITTLE_ENDIAN => true,
        IMPLICIT_VR_LITTLE_ENDIAN => false,
        other => return Err(format!("identifiers in transfer syntax {other} are not read")),
    };
    lengths_fit(bytes, explicit)?;
    let syntax = TransferSyntaxRegistry.get(transfer_syntax).ok_or("unknown transfer syntax")?;
    InMemDicomObject::read_dataset_with_ts(bytes, syntax).map_err(|e| format!("unreadable identifier: {e}"))
}

/// An identifier's bytes in `transfer_syntax`.
pub fn write_identifier(object: &InMemDicomObject, transfer_syntax: &str) -> Result<Vec<u8>, String> {
    let syntax = TransferSyntaxRegistry.get(transfer_syntax).ok_or("unknown transfer syntax")?;
    let mut bytes = Vec::new();
    object.write_dataset_with_ts(&mut bytes, syntax).map_err(|e| format!("cannot write an identifier: {e}"))?;
    Ok(bytes)
}

/// The VRs whose explicit-VR header has a 2-byte length (PS3.5 Table 7.1-2); any other, an unknown one
/// too (which the parser reads as UN), has 2 reserved bytes and a 4-byte length.
const SHORT_LENGTH_VRS: &[&[u8; 2]] = &[
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
    b"ST", b"TM", b"UI", b"UL", b"US",
];

/// How deep sequences may nest in an identifier (real ones nest one or two deep).
const MAX_IDENTIFIER_DEPTH: usize = 8;

/// A sequence or item being walked: where it ends, when its length is defined.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Sequence { end: Option<usize> },
    Item { end: Option<usize> },
}

impl Open {
    fn end(self) -> Option<usize> {
        match self {
            Open::Sequence { end } | Open::Item { end } => end,
        }
    }
}

/// Walks the data set as the parser will — elements, sequences of items of elements, delimiters — and
/// refuses it unless every length fits where it stands, binary values are whole numbers of values, only
/// sequences have undefined lengths, every item and delimiter is where one may be, and nesting stays
/// shallow. The parser trusts lengths: any of these lies makes it allocate what a length claims (found by
/// the fuzzer, up to 4 GiB from 100 bytes). Implicit VR says nothing of the VR: the dictionary does, as it
/// does for the parser.
fn lengths_fit(bytes: &[u8], explicit: bool) -> Result<(), String> {
    use dicom_core::VR::{AT, FD, FL, OD, OF, OL, OV, OW, SL, SQ, SS, SV, UL, UN, US, UV};
    const UNDEFINED: u32 = u32::MAX;
    let mut open: Vec<Open> = Vec::new();
    let mut at = 0usize;
    let lie = |at: usize| format!("an element at byte {at} is longer than what holds it");
    loop {
        // Defined-length sequences and items end where their length says.
        while let Some(end) = open.last().and_then(|o| o.end()) {
            if at != end {
                break;
            }
            open.pop();
        }
        if at == bytes.len() {
            return if open.is_empty() { Ok(()) } else { Err("a sequence or item is not closed".into()) };
        }
        let limit = open.iter().filter_map(|o| o.end()).min().unwrap_or(bytes.len());
        let header = bytes.get(at..at + 8).filter(|_| at + 8 <= limit).ok_or_else(|| lie(at))?;
        let group = u16::from_le_bytes([header[0], header[1]]);
        let element = u16::from_le_bytes([header[2], header[3]]);
        let long_length = |from: usize| bytes.get(from..from + 4).map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]));
        // Items and delimiters: a tag and a 4-byte length, no VR; only inside a sequence (an item), or to
        // close an undefined-length item or sequence.
        if group == 0xFFFE {
            let length = long_length(at + 4).ok_or_else(|| lie(at))?;
            match (element, open.last().copied()) {
                (0xE000, Some(Open::Sequence { .. })) => {
                    let end = (length != UNDEFINED).then(|| at + 8 + length as usize);
                    if end.is_some_and(|end| end > limit) {
                        return Err(lie(at));
                    }
                    open.push(Open::Item { end });
                }
                (0xE00D, Some(Open::Item { end: None })) | (0xE0DD, Some(Open::Sequence { end: None }))
                    if length == 0 =>
                {
                    open.pop();
                }
                _ => return Err(format!("a malformed or misplaced item or delimiter at byte {at}")),
            }
            at += 8;
            continue;
        }
        if matches!(open.last(), Some(Open::Sequence { .. })) {
            return Err(format!("an element at byte {at} stands where a sequence's item should"));
        }
        // (length, header length, VR: None when unknown)
        let (length, header_length, vr) = if explicit {
            let code = [header[4], header[5]];
            let vr = dicom_core::VR::from_binary(code);
            if SHORT_LENGTH_VRS.contains(&&code) {
                (u32::from(u16::from_le_bytes([header[6], header[7]])), 8, vr)
            } else {
                (long_length(at + 8).ok_or_else(|| lie(at))?, 12, vr)
            }
        } else {
            let vr = StandardDataDictionary.by_tag(Tag(group, element)).map(|entry| entry.vr().relaxed());
            (long_length(at + 4).ok_or_else(|| lie(at))?, 8, vr)
        };
        let start = at;
        at += header_length;
        if at > limit {
            return Err(lie(start));
        }
        if length == UNDEFINED || vr == Some(SQ) {
            // The parser reads any undefined-length element as a sequence; we allow it where one may be.
            if !matches!(vr, None | Some(SQ | UN)) {
                return Err(format!("an element at byte {start} has an undefined length"));
            }
            if open.len() == 2 * MAX_IDENTIFIER_DEPTH {
                return Err(format!("sequences nested over {MAX_IDENTIFIER_DEPTH} deep"));
            }
            let end = (length != UNDEFINED).then(|| at + length as usize);
            if end.is_some_and(|end| end > limit) {
                return Err(lie(start));
            }
            open.push(Open::Sequence { end });
            continue;
        }
        // Binary values are read as whole numbers of values: a ragged length would put the parser's next
        // header elsewhere than ours.
        let unit = match vr {
            Some(FD | OD | OV | SV | UV) => 8,
            Some(FL | UL | SL | OF | OL | AT) => 4,
            Some(US | SS | OW) => 2,
            _ => 1,
        };
        if length % unit != 0 {
            return Err(format!("an element at byte {start} is not a whole number of {unit}-byte values"));
        }
        if length as usize > limit - at {
            return Err(lie(start));
        }
        at += length as usize;
    }
}

/// Sends one message on either end of an association: its command set in one PDU, then its data set (if any)
/// in as many as the peer's PDU size needs.
pub fn send_message<A: SyncAssociation<TcpStream>>(
    association: &mut A,
    context: u8,
    command: Vec<u8>,
    data_set: Option<&[u8]>,
) -> std::io::Result<()> {
    let value = PDataValue {
        presentation_context_id: context,
        value_type: PDataValueType::Command,
        is_last: true,
        data: command,
    };
    SyncAssociation::send(association, &Pdu::PData { data: vec![value] }).map_err(std::io::Error::other)?;
    if let Some(data_set) = data_set {
        let mut writer = association.send_pdata(context);
        writer.write_all(data_set)?;
        writer.finish()?;
    }
    Ok(())
}

/// A command set's bytes: its elements in tag order, after the group length that counts them.
fn write(elements: &BTreeMap<u16, Vec<u8>>) -> Vec<u8> {
    let mut body = Vec::new();
    for (element, value) in elements {
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&element.to_le_bytes());
        body.extend_from_slice(&(value.len() as u32).to_le_bytes());
        body.extend_from_slice(value);
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// DICOM values have even lengths: one byte of padding where needed.
fn padded(bytes: &[u8], pad: u8) -> Vec<u8> {
    let mut value = bytes.to_vec();
    if !value.len().is_multiple_of(2) {
        value.push(pad);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(number: u16, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend_from_slice(&number.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn a_store_request() -> Vec<u8> {
        [
            element(AFFECTED_SOP_CLASS_UID, b"1.2.840.10008.5.1.4.1.1.1\0"),
            element(COMMAND_FIELD, &field::C_STORE_RQ.to_le_bytes()),
            element(MESSAGE_ID, &7u16.to_le_bytes()),
            element(COMMAND_DATA_SET_TYPE, &0u16.to_le_bytes()),
            element(AFFECTED_SOP_INSTANCE_UID, b"1.2.3.4\0"),
        ]
        .concat()
    }

    #[test]
    fn a_store_request_reads_and_its_response_reads_back() {
        let request = Command::parse(&a_store_request()).unwrap();
        assert_eq!(request.field(), Some(field::C_STORE_RQ));
        assert_eq!(request.message_id(), 7);
        assert_eq!(request.affected_sop_class().as_deref(), Some("1.2.840.10008.5.1.4.1.1.1"));
        assert_eq!(request.affected_sop_instance().as_deref(), Some("1.2.3.4"));
        assert!(request.has_data_set());

        let bytes = Response::to(&request, field::C_STORE_RSP, status::OUT_OF_RESOURCES)
            .with_comment("instance over 1 MiB: 2 MiB")
            .to_bytes();
        let response = Command::parse(&bytes).unwrap();
        assert_eq!(response.field(), Some(field::C_STORE_RSP));
        assert_eq!(response.status(), Some(status::OUT_OF_RESOURCES));
        assert_eq!(response.error_comment().as_deref(), Some("instance over 1 MiB: 2 MiB"));
        assert_eq!(response.u16(MESSAGE_ID_BEING_RESPONDED_TO), Some(7));
        assert_eq!(response.u16(STATUS), Some(status::OUT_OF_RESOURCES));
        assert_eq!(response.text(ERROR_COMMENT).as_deref(), Some("instance over 1 MiB: 2 MiB"));
        assert_eq!(response.affected_sop_instance().as_deref(), Some("1.2.3.4"));
        assert!(!response.has_data_set());
        // The group length counts the bytes after it.
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, bytes.len() - 12);
        assert!(bytes.len().is_multiple_of(2));
    }

    #[test]
    fn a_store_request_we_send_reads_as_one() {
        let request = Command::parse(&store_request(3, "1.2.840.10008.5.1.4.1.1.104.1", "2.25.7")).unwrap();
        assert_eq!(request.field(), Some(field::C_STORE_RQ));
        assert_eq!(request.message_id(), 3);
        assert_eq!(request.affected_sop_instance().as_deref(), Some("2.25.7"));
        assert!(request.has_data_set());
    }

    #[test]
    fn hostile_command_sets_are_refused_before_allocation() {
        let mut lying = element(COMMAND_FIELD, &field::C_ECHO_RQ.to_le_bytes());
        lying[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Command::parse(&lying).unwrap_err(), CommandError::Truncated);
        assert_eq!(Command::parse(&a_store_request()[..13]).unwrap_err(), CommandError::Truncated);
        assert_eq!(Command::parse(&[0; 5]).unwrap_err(), CommandError::Truncated);
        let other_group = [vec![8, 0, 0x18, 0], 4u32.to_le_bytes().to_vec(), b"abcd".to_vec()].concat();
        assert_eq!(Command::parse(&other_group).unwrap_err(), CommandError::NotCommandGroup(8, 0x18));
        let twice = [a_store_request(), element(MESSAGE_ID, &1u16.to_le_bytes())].concat();
        assert_eq!(Command::parse(&twice).unwrap_err(), CommandError::Repeated(MESSAGE_ID));
        assert_eq!(
            Command::parse(&element(MESSAGE_ID, &1u16.to_le_bytes())).unwrap_err(),
            CommandError::Missing("Command Field (0000,0100)")
        );
        assert_eq!(
            Command::parse(&vec![0; MAX_COMMAND_BYTES + 1]).unwrap_err(),
            CommandError::TooLarge(MAX_COMMAND_BYTES + 1)
        );
    }

    #[test]
    fn find_and_move_requests_read_back() {
        let find = Command::parse(&find_request(5, STUDY_ROOT_FIND)).unwrap();
        assert_eq!((find.field(), find.message_id()), (Some(field::C_FIND_RQ), 5));
        assert_eq!(find.affected_sop_class().as_deref(), Some(STUDY_ROOT_FIND));
        assert!(find.has_data_set());
        let moved = Command::parse(&move_request(6, STUDY_ROOT_MOVE, "MEDGEMMAX")).unwrap();
        assert_eq!(moved.field(), Some(field::C_MOVE_RQ));
        assert_eq!(moved.text(MOVE_DESTINATION).as_deref(), Some("MEDGEMMAX"));
        let pending = Response::to(&find, field::C_FIND_RSP, status::PENDING).with_data_set().to_bytes();
        let pending = Command::parse(&pending).unwrap();
        assert!(pending.has_data_set() && status::is_pending(pending.status().unwrap()));
        assert_eq!(pending.responding_to(), Some(5));
    }

    #[test]
    fn identifiers_round_trip_in_both_little_endian_syntaxes() {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(Tag(0x0008, 0x0005), VR::CS, PrimitiveValue::from("ISO_IR 192")));
        object.put(DataElement::new(Tag(0x0008, 0x0052), VR::CS, PrimitiveValue::from("STUDY")));
        object.put(DataElement::new(Tag(0x0010, 0x0010), VR::PN, PrimitiveValue::from("张*")));
        object.put(DataElement::new(Tag(0x0020, 0x000D), VR::UI, PrimitiveValue::Empty));
        for syntax in IDENTIFIER_TRANSFER_SYNTAXES {
            let bytes = write_identifier(&object, syntax).unwrap();
            let back = read_identifier(&bytes, syntax).unwrap();
            let name = back.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap().to_string();
            assert_eq!(name.trim_end(), "张*", "{syntax}");
            assert!(back.element(Tag(0x0020, 0x000D)).is_ok(), "{syntax}");
        }
        assert!(read_identifier(&[], "1.2.840.10008.1.2.4.70").unwrap_err().contains("not read"));
    }

    #[test]
    fn identifiers_that_lie_about_lengths_are_refused_before_parsing() {
        let level = [&[0x08, 0x00, 0x52, 0x00][..], b"CS", &6u16.to_le_bytes(), b"STUDY "].concat();
        assert!(read_identifier(&level, EXPLICIT_VR_LITTLE_ENDIAN).is_ok());
        // A patient name claiming 4 GiB (UT has a 4-byte length), in explicit VR.
        let lying =
            [&level[..], &[0x10, 0x00, 0x10, 0x00], b"UT\0\0", &0xFFFF_FFF0u32.to_le_bytes(), b"ZHANG"].concat();
        assert!(read_identifier(&lying, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("longer than"));
        // A VR no one knows is read as UN, with a 4-byte length (found by the fuzzer): here 2 GiB, whose bytes
        // would also pass for an empty Study Date after a 2-byte length of 0.
        let unknown =
            [&level[..], &[0x10, 0x00, 0x10, 0x00], b"\0\xE0\0\0", &[0x08, 0x00, 0xE0, 0x7F], b"DA\0\0"].concat();
        assert!(read_identifier(&unknown, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("longer than"));
        // An undefined length on a value that cannot have one (a UL, in implicit VR): found by the fuzzer.
        let undefined = [&[0x00, 0x00, 0x00, 0x00][..], &u32::MAX.to_le_bytes()].concat();
        assert!(read_identifier(&undefined, IMPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("undefined length"));
        // A double (FD) of 6 bytes: the parser reads whole values, so it takes the next header 6 bytes early,
        // where it finds (0009,0010) UT of 1 GiB; from here, the rest reads as one empty element (found by the
        // fuzzer).
        let ragged = [
            &[0x08, 0x00, 0x07, 0x00][..],
            b"FD",
            &6u16.to_le_bytes(),
            &[0x09, 0x00, 0x10, 0x00],
            b"UT",
            &[0, 0],
            &0x4000_0000u32.to_le_bytes(),
            &[0, 0, 0, 0, 0, 0],
        ]
        .concat();
        let error = read_identifier(&ragged, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err();
        assert!(error.contains("whole number"), "{error}");
        let ragged_ov = [&[0x09, 0x00, 0x10, 0x00][..], b"OV\0\0", &159u32.to_le_bytes(), &[0; 159]].concat();
        assert!(read_identifier(&ragged_ov, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("whole number"));
        // A tag of the item group that is no item nor delimiter, claiming 3.6 GiB (found by the fuzzer).
        let not_an_item = [&[0xFE, 0xFF, 0xFF, 0xEF][..], &0xE7FF_FFFEu32.to_le_bytes(), &[0xFF; 8]].concat();
        assert!(
            read_identifier(&not_an_item, IMPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("malformed or misplaced")
        );
        // An item outside any sequence, where the parser reads an element (found by the fuzzer); a sequence
        // never closed; sequences nested deeper than any query needs.
        let loose_item =
            [&level[..], &[0xFE, 0xFF, 0x00, 0xE0], &4u32.to_le_bytes(), &[0x08, 0x00, 0x60, 0x00]].concat();
        assert!(read_identifier(&loose_item, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("misplaced"));
        let open_sequence = [&[0x08, 0x00, 0x10, 0x11][..], b"SQ\0\0", &u32::MAX.to_le_bytes()].concat();
        assert!(read_identifier(&open_sequence, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("not closed"));
        let nest = [&open_sequence[..], &[0xFE, 0xFF, 0x00, 0xE0], &u32::MAX.to_le_bytes()].concat();
        assert!(read_identifier(&nest.repeat(9), EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("nested over"));
        let closed = [&nest[..], &[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0], &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]].concat();
        assert!(read_identifier(&[&level[..], &closed].concat(), EXPLICIT_VR_LITTLE_ENDIAN).is_ok());
        // An item of 10 bytes holding a 12-byte header (found by the fuzzer: an overflow in the walker itself).
        let short_item = [
            &[0x08, 0x00, 0x10, 0x11][..],
            b"SQ\0\0",
            &u32::MAX.to_le_bytes(),
            &[0xFE, 0xFF, 0x00, 0xE0],
            &10u32.to_le_bytes(),
            &[0x08, 0x00, 0x60, 0x00],
            b"OB\0\0",
            &[0; 8],
        ]
        .concat();
        assert!(read_identifier(&short_item, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("longer than"));
        // The same lie in implicit VR, and one inside a sequence's item.
        let implicit = [&[0x10, 0x00, 0x10, 0x00][..], &0x7FFF_FFF0u32.to_le_bytes(), b"ZH"].concat();
        assert!(read_identifier(&implicit, IMPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("longer than"));
        let item = [&[0xFE, 0xFF, 0x00, 0xE0][..], &0xFFFF_FFFFu32.to_le_bytes(), &implicit].concat();
        let sequence = [&[0x08, 0x00, 0x10, 0x11][..], &0xFFFF_FFFFu32.to_le_bytes(), &item].concat();
        assert!(read_identifier(&sequence, IMPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("longer than"));
        // Cut inside a header; over the size limit.
        assert!(read_identifier(&level[..5], EXPLICIT_VR_LITTLE_ENDIAN).is_err());
        let huge = vec![0u8; MAX_IDENTIFIER_BYTES + 2];
        assert!(read_identifier(&huge, EXPLICIT_VR_LITTLE_ENDIAN).unwrap_err().contains("over the"));
    }
}
