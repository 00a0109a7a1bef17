//! The requesting side of DIMSE: an association to a peer for one kind of request, messages out, their
//! responses in. Reports go to the PACS with it (C-STORE), priors are asked for and fetched with it
//! (C-FIND, C-MOVE). Blocking: callers run it off the async runtime. Every response is bounded: command
//! sets by `dimse::MAX_COMMAND_BYTES`, data sets by what the caller expects.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};
use dicom_ul::Pdu;
use dicom_ul::association::{ClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};

use crate::support::dimse::{self, Command};

/// Where a peer is, and the AE titles on both ends.
#[derive(Clone, Debug)]
pub struct PeerAddress {
    pub our_ae: String,
    pub peer_ae: String,
    pub host: String,
    pub port: u16,
}

/// An association for one abstract syntax.
pub struct Client {
    association: ClientAssociation<TcpStream>,
    peer_ae: String,
    context: u8,
    transfer_syntax: String,
    /// Fragments received past the end of the last message.
    pending: VecDeque<PDataValue>,
    next_message_id: u16,
}

impl Client {
    /// Associates with the peer for `abstract_syntax`, proposing `transfer_syntaxes` in our order of
    /// preference; waits up to `read_timeout` for each answer.
    pub fn connect(
        peer: &PeerAddress,
        abstract_syntax: &str,
        transfer_syntaxes: &[&str],
        read_timeout: Duration,
    ) -> anyhow::Result<Client> {
        let PeerAddress { our_ae, peer_ae, host, port } = peer;
        let association = ClientAssociationOptions::new()
            .calling_ae_title(our_ae.as_str())
            .called_ae_title(peer_ae.as_str())
            .with_presentation_context(abstract_syntax, transfer_syntaxes.to_vec())
            .connection_timeout(Duration::from_secs(10))
            .read_timeout(read_timeout)
            .write_timeout(Duration::from_secs(60))
            .establish((host.as_str(), *port))
            .with_context(|| format!("cannot associate with {peer_ae} at {host}:{port}"))?;
        let (context, transfer_syntax) = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_string()))
            .with_context(|| format!("{peer_ae} does not take {abstract_syntax} in {transfer_syntaxes:?}"))?;
        Ok(Client {
            association,
            peer_ae: peer_ae.clone(),
            context,
            transfer_syntax,
            pending: VecDeque::new(),
            next_message_id: 1,
        })
    }

    /// The transfer syntax the peer accepted (data sets go out and come back in it).
    pub fn transfer_syntax(&self) -> &str {
        &self.transfer_syntax
    }

    /// A message ID for the next request.
    pub fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// Sends one request: its command set, then its data set in as many PDUs as the peer's size needs.
    pub fn send(&mut self, command: Vec<u8>, data_set: Option<&[u8]>) -> anyhow::Result<()> {
        Ok(dimse::send_message(&mut self.association, self.context, command, data_set)?)
    }

    /// The next response: its command set, and its data set if one follows (at most `max_data_set` bytes).
    pub fn receive(&mut self, max_data_set: usize) -> anyhow::Result<(Command, Option<Vec<u8>>)> {
        let peer_ae = self.peer_ae.clone();
        let mut command_bytes = Vec::new();
        let command = loop {
            let value = self.next_value()?;
            if value.value_type != PDataValueType::Command {
                bail!("{peer_ae} sent a data set before its response's command");
            }
            command_bytes.extend_from_slice(&value.data);
            if command_bytes.len() > dimse::MAX_COMMAND_BYTES {
                bail!("{peer_ae} answered with an oversized command set");
            }
            if value.is_last {
                break Command::parse(&command_bytes).with_context(|| format!("{peer_ae}'s response"))?;
            }
        };
        if !command.has_data_set() {
            return Ok((command, None));
        }
        let mut data = Vec::new();
        loop {
            let value = self.next_value()?;
            if value.value_type != PDataValueType::Data {
                bail!("{peer_ae} sent a command inside a data set");
            }
            if data.len() + value.data.len() > max_data_set {
                bail!("{peer_ae} answered with a data set over {max_data_set} bytes");
            }
            data.extend_from_slice(&value.data);
            if value.is_last {
                return Ok((command, Some(data)));
            }
        }
    }

    fn next_value(&mut self) -> anyhow::Result<PDataValue> {
        loop {
            if let Some(value) = self.pending.pop_front() {
                return Ok(value);
            }
            match self.association.receive()? {
                Pdu::PData { data } => self.pending.extend(data),
                other => bail!("{} answered {} instead of a response", self.peer_ae, other.short_description()),
            }
        }
    }

    /// Ends the association politely (a peer that has gone already is no error of ours).
    pub fn release(self) {
        let _ = self.association.release();
    }
}
