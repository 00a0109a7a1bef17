//! DIMSE command sets (PS3.7 §9.3, §E): the group-0000 elements that head every DICOM message, always in
//! implicit VR little endian. Read and written here by hand: a command set is a flat list of a dozen
//! small elements, and a reader that never allocates more than the bytes it was given is what a hostile
//! peer calls for. Here, below the layers, because both doors use them: the DICOM listener (`dimse/`)
//! answers requests, the delivery worker (`domain::deliveries`) sends reports to the PACS.

use std::collections::BTreeMap;

/// The largest command set read; real ones are under 200 bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// Command Field values (0000,0100).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
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
}

const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
const PRIORITY: u16 = 0x0700;
const COMMAND_FIELD: u16 = 0x0100;
const MESSAGE_ID: u16 = 0x0110;
const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
const STATUS: u16 = 0x0900;
const ERROR_COMMENT: u16 = 0x0902;
const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;

/// Command Data Set Type of a message without a data set.
const NO_DATA_SET: u16 = 0x0101;

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
}

/// A C-STORE request for one instance (a data set follows it).
pub fn store_request(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut elements = BTreeMap::new();
    elements.insert(AFFECTED_SOP_CLASS_UID, padded(sop_class.as_bytes(), 0));
    elements.insert(COMMAND_FIELD, field::C_STORE_RQ.to_le_bytes().to_vec());
    elements.insert(MESSAGE_ID, message_id.to_le_bytes().to_vec());
    elements.insert(PRIORITY, 0u16.to_le_bytes().to_vec());
    elements.insert(COMMAND_DATA_SET_TYPE, 0u16.to_le_bytes().to_vec());
    elements.insert(AFFECTED_SOP_INSTANCE_UID, padded(sop_instance.as_bytes(), 0));
    write(&elements)
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
}
