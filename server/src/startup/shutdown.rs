//! The signals that begin a graceful shutdown (SIGTERM, Ctrl-C); the listener (`startup::listener`) then
//! stops accepting and lets in-flight requests and streams finish within a grace period.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM (systemd, docker stop, `medgemma-x stop`) and SIGINT (Ctrl-C) handlers.
///
/// Installed before the server reports that it listens: a signal that arrives between "listening" and
/// the first poll of a lazily installed handler would otherwise kill the process with the default action.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Resolves on the first of them.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = self.interrupt.recv() => tracing::info!("Ctrl-C received; shutting down"),
        }
    }
}
