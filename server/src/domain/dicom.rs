//! This server as a DICOM node: the peers it knows (who may send to it), and what its listener is doing
//! (shown by `/readyz` and `medgemma-x status`). The DIMSE protocol itself is in `dimse/`, beside `web/`.

use std::net::SocketAddr;
use std::sync::Mutex;

use app::status::DicomStatus;

use crate::domain::DomainError;
use crate::store::db::Pool;
use crate::store::dicom_peers::{self, PeerRow};
use crate::support::dimse_client::PeerAddress;

pub use crate::store::dicom_peers::PeerRow as Peer;

/// A checked AE title: 1–16 characters of the default repertoire without backslash or control
/// characters; leading and trailing spaces are not significant (PS3.5 §6.2, AE).
pub fn ae_title(text: &str) -> Result<String, DomainError> {
    let title = text.trim();
    let fine = !title.is_empty()
        && title.len() <= 16
        && title.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if fine {
        Ok(title.to_string())
    } else {
        Err(DomainError::invalid(
            format!("AE 名称“{text}”无效：须为 1–16 个 ASCII 字符，不含反斜杠"),
            format!("AE title `{text}` is invalid: 1–16 ASCII characters, no backslash"),
        ))
    }
}

/// Adds the peer (or changes the one with its AE title).
pub async fn put_peer(
    db: &Pool,
    ae: &str,
    host: &str,
    port: u16,
    may_store: bool,
    may_query: bool,
) -> Result<Peer, DomainError> {
    let ae_title = ae_title(ae)?;
    let host = host.trim();
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid(format!("主机“{host}”无效"), format!("host `{host}` is invalid")));
    }
    if port == 0 {
        return Err(DomainError::invalid("端口须为 1–65535", "the port must be 1–65535"));
    }
    let peer = PeerRow {
        ae_title,
        host: host.to_string(),
        port: i64::from(port),
        may_store,
        may_query,
        created_at: crate::support::clock::now_rfc3339(),
    };
    dicom_peers::put(db, &peer).await?;
    Ok(peer)
}

pub async fn remove_peer(db: &Pool, ae: &str) -> Result<(), DomainError> {
    let ae_title = ae_title(ae)?;
    if dicom_peers::remove(db, &ae_title).await? {
        Ok(())
    } else {
        Err(DomainError::not_found(
            format!("没有 AE 名称为 {ae_title} 的节点"),
            format!("no peer with AE title {ae_title}"),
        ))
    }
}

pub async fn peers(db: &Pool) -> Result<Vec<Peer>, DomainError> {
    Ok(dicom_peers::list(db).await?)
}

/// Where the peer `peer_ae` is, as it is set now (host and port are read at each use).
pub async fn address_of(db: &Pool, our_ae: &str, peer_ae: &str) -> Result<PeerAddress, DomainError> {
    let peer = peers(db).await?.into_iter().find(|p| p.ae_title == peer_ae.trim()).ok_or_else(|| {
        DomainError::not_found(
            format!("{peer_ae} 不是已知的 DICOM 节点（medgemma-x dicom peer add）"),
            format!("{peer_ae} is not a DICOM peer (medgemma-x dicom peer add)"),
        )
    })?;
    Ok(address(peer, our_ae))
}

/// Where a peer is, with who we are.
pub fn address(peer: Peer, our_ae: &str) -> PeerAddress {
    PeerAddress {
        our_ae: our_ae.to_string(),
        peer_ae: peer.ae_title,
        host: peer.host,
        // Stored from a u16 (put_peer).
        port: u16::try_from(peer.port).unwrap_or(104),
    }
}

/// What the DICOM listener is doing, for `/readyz` and `medgemma-x status`.
#[derive(Default)]
pub struct NodeStatus {
    state: Mutex<DicomStatus>,
}

impl NodeStatus {
    pub fn listening(&self, address: SocketAddr, ae_title: &str, accept_any: bool) {
        let mut state = self.lock();
        state.listening = Some(address.to_string());
        state.ae_title = ae_title.to_string();
        state.accept_any = accept_any;
    }

    pub fn failed_to_listen(&self, error: String) {
        self.lock().error = Some(error);
    }

    pub fn association_started(&self) {
        let mut state = self.lock();
        state.active_associations += 1;
        state.associations += 1;
    }

    pub fn association_ended(&self, stored: usize, failed: usize) {
        let mut state = self.lock();
        state.active_associations = state.active_associations.saturating_sub(1);
        state.instances_stored += stored as u64;
        state.instances_failed += failed as u64;
    }

    pub fn snapshot(&self) -> DicomStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DicomStatus> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ae_titles_are_checked_and_trimmed() {
        assert_eq!(ae_title(" CR_ROOM1 ").unwrap(), "CR_ROOM1");
        assert_eq!(ae_title("ABCDEFGHIJKLMNOP").unwrap().len(), 16);
        for bad in ["", "   ", "ABCDEFGHIJKLMNOPQ", "A\\B", "放射科", "A\tB"] {
            assert!(ae_title(bad).is_err(), "{bad:?} accepted");
        }
    }
}
