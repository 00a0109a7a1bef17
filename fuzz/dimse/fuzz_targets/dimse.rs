//! What a DICOM peer sends before anything is stored, on arbitrary bytes: a PDU as dicom-ul reads it off
//! the socket (at our default 64 KiB limit, strict), a DIMSE command set, a C-FIND identifier in either
//! little-endian transfer syntax. The first byte picks which. Any panic, abort, sanitizer report or
//! out-of-memory is a bug: a lying length must be an error, never an allocation of what it claims.
//!
//! The server's own source file, compiled here on its own: the server crate links libtorch, which a
//! sanitizer build cannot take, and the command-set reader needs none of it.
#![no_main]

#[allow(dead_code)]
#[path = "../../../server/src/support/dimse.rs"]
mod dimse;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    match which % 4 {
        0 => {
            let _ = dicom_ul::pdu::read_pdu(bytes, 65536, true);
        }
        1 => {
            if let Ok(command) = dimse::Command::parse(bytes) {
                let _ = (command.field(), command.message_id(), command.affected_sop_class(), command.has_data_set());
                let _ = (command.sub_operations(), command.error_comment(), command.status());
            }
        }
        2 => {
            let _ = dimse::read_identifier(bytes, "1.2.840.10008.1.2");
        }
        _ => {
            let _ = dimse::read_identifier(bytes, "1.2.840.10008.1.2.1");
        }
    }
});
