//! The DICOM listener: modalities and the PACS send studies here (C-STORE), check that we answer
//! (C-ECHO) and ask what we hold (C-FIND). Associations and PDUs come from dicom-rs's `dicom-ul`; the DIMSE
//! messages on top of them are ours (`association`: fragments and statuses; `support::dimse`: command sets).
//! Beside `web/`, not under it: another door into the same domain (the same ingest as an upload, the same
//! audit trail, pre-reads).
//!
//! Each association runs on a thread of its own (at most `--dicom-max-associations`; more are refused at
//! once), with a read time-out (`--dicom-idle-timeout-secs`), PDUs up to `--dicom-max-pdu` and instances up
//! to `--max-file-mb`. Only known peers (`medgemma-x dicom peer add`) may associate, unless
//! `--dicom-accept-any`.

pub mod association;
pub mod find;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};

use crate::domain::audit::{AuditEvent, AuditLog};
use crate::domain::dicom::{self, NodeStatus, Peer};
use crate::domain::images::Images;
use crate::domain::pre_read::PreReads;
use crate::store::db::Pool;
use crate::support::data_dir::DiskGuard;

/// How the listener is set up (from `serve`'s flags).
#[derive(Clone, Debug)]
pub struct DicomSettings {
    /// None: no DICOM listener.
    pub bind: Option<SocketAddr>,
    pub ae_title: String,
    /// Accept associations from AE titles that are not peers (a first install, before any is added).
    pub accept_any: bool,
    /// The largest PDU we receive (told to the peer at association).
    pub max_pdu: u32,
    pub max_associations: usize,
    /// An association that sends nothing for this long is closed.
    pub idle_timeout: Duration,
}

/// Who is on the other end of an association, and what it may do.
pub struct Caller<'a> {
    pub ae_title: &'a str,
    pub ip: &'a str,
    pub may_store: bool,
    pub may_query: bool,
}

/// What an association needs from the rest of the server.
pub struct Node {
    pub settings: DicomSettings,
    pub db: Pool,
    pub images: Arc<Images>,
    pub pre_reads: Arc<PreReads>,
    pub audit: Arc<AuditLog>,
    pub disk: Arc<DiskGuard>,
    pub status: Arc<NodeStatus>,
    /// Received instances are written here before the ingest reads them.
    pub tmp_dir: PathBuf,
    /// The server's runtime: the ingest and the database are async.
    pub runtime: tokio::runtime::Handle,
    active: AtomicUsize,
}

impl Node {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: DicomSettings,
        db: Pool,
        images: Arc<Images>,
        pre_reads: Arc<PreReads>,
        audit: Arc<AuditLog>,
        disk: Arc<DiskGuard>,
        status: Arc<NodeStatus>,
        tmp_dir: PathBuf,
        runtime: tokio::runtime::Handle,
    ) -> Node {
        Node { settings, db, images, pre_reads, audit, disk, status, tmp_dir, runtime, active: AtomicUsize::new(0) }
    }

    /// Opens the port and accepts associations on a thread of its own. A port that cannot be opened is
    /// an error in the status and the log, not the end of the server: the web app keeps serving.
    pub fn start(self: Arc<Self>) {
        let Some(bind) = self.settings.bind else { return };
        let listener = match TcpListener::bind(bind) {
            Ok(listener) => listener,
            Err(e) => {
                let message = format!("cannot listen for DICOM on {bind}: {e}");
                tracing::error!(error = %message, "DICOM listener not started");
                self.status.failed_to_listen(message);
                return;
            }
        };
        let address = listener.local_addr().unwrap_or(bind);
        self.status.listening(address, &self.settings.ae_title, self.settings.accept_any);
        tracing::info!(addr = %address, ae_title = %self.settings.ae_title, "DICOM listening");
        let spawned = std::thread::Builder::new().name("dicom-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => Arc::clone(&self).accept(stream),
                    Err(e) => tracing::warn!(error = %e, "DICOM accept failed"),
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the DICOM listener's thread");
        }
    }

    /// One connection: its own thread, or refused at once when the associations are all taken.
    fn accept(self: Arc<Self>, stream: TcpStream) {
        let peer = stream.peer_addr().map_or_else(|_| "?".into(), |a| a.ip().to_string());
        if self.active.fetch_add(1, Ordering::SeqCst) >= self.settings.max_associations {
            self.active.fetch_sub(1, Ordering::SeqCst);
            let node = Arc::clone(&self);
            // Answered (A-ASSOCIATE-RJ), not dropped, but off the accept thread: the peer may be slow.
            let _ =
                std::thread::Builder::new().name("dicom-refuse".into()).spawn(move || node.refuse_busy(stream, peer));
            return;
        }
        let node = Arc::clone(&self);
        let spawned = std::thread::Builder::new().name("dicom-association".into()).spawn(move || {
            node.status.association_started();
            let served =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| association::serve(&node, stream, &peer)));
            // A bug in one association must not keep its slot taken for good.
            let (stored, failed) = served.unwrap_or_else(|_| {
                tracing::error!(%peer, "a DICOM association's thread panicked");
                (0, 0)
            });
            node.status.association_ended(stored, failed);
            node.active.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn refuse_busy(&self, stream: TcpStream, peer: String) {
        // Refuse rejects every request: this only reads it and answers A-ASSOCIATE-RJ.
        let _ = self.options(Refuse).establish(stream);
        let limit = self.settings.max_associations;
        tracing::warn!(%peer, error = %format!("more than {limit} at once"), "DICOM association refused");
    }

    /// The negotiation every association gets: our AE title, the storage SOP classes and Verification,
    /// every transfer syntax the decoder reads, our PDU limit and time-outs.
    fn options<A: AccessControl>(
        &self,
        access: A,
    ) -> dicom_ul::association::ServerAssociationOptions<'static, A, dicom_ul::association::server::DefaultNegotiation>
    {
        let mut options = dicom_ul::association::ServerAssociationOptions::new()
            .ae_access_control(access)
            .ae_title(self.settings.ae_title.clone())
            .max_pdu_length(self.settings.max_pdu)
            .strict(true)
            .read_timeout(self.settings.idle_timeout)
            .write_timeout(self.settings.idle_timeout);
        for uid in association::ABSTRACT_SYNTAXES {
            options = options.with_abstract_syntax(*uid);
        }
        for uid in association::TRANSFER_SYNTAXES {
            options = options.with_transfer_syntax(*uid);
        }
        options
    }

    /// The peers as they are now (read at each association, so a peer added at the console counts at once).
    fn known_peers(&self) -> Vec<Peer> {
        self.runtime.block_on(dicom::peers(&self.db)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the DICOM peers; refusing associations");
            Vec::new()
        })
    }

    fn audit(&self, event: AuditEvent) {
        if let Err(e) = self.runtime.block_on(self.audit.record(event)) {
            tracing::error!(error = %e, "DICOM audit row not written");
        }
    }
}

/// Who may associate: a known peer, or anybody with --dicom-accept-any; and only when calling us by our
/// AE title (a modality set up with another title is told so at once). The peers are read when the
/// request has arrived, so one added at the console a moment before counts.
struct KnownPeers<'a> {
    node: &'a Node,
}

impl AccessControl for KnownPeers<'_> {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling = calling_ae_title.trim();
        if self.node.settings.accept_any || self.node.known_peers().iter().any(|p| p.ae_title == calling) {
            Ok(())
        } else {
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        }
    }
}

/// Refuses every association (too many at once).
struct Refuse;

impl AccessControl for Refuse {
    fn check_access(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        Err(AssociationRJServiceUserReason::NoReasonGiven)
    }
}
