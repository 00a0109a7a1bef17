//! Graceful shutdown: on SIGTERM or Ctrl-C stop accepting, let in-flight requests and streams
//! finish within a grace period, then return so the process exits 0.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

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

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished within the grace period.
    Complete,
    /// The grace period ran out; the remaining connections are cut when the process exits.
    GraceExpired,
}

/// Serves `router` until `shutdown` is cancelled, then drains for at most `grace`.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<Drain> {
    let stop_accepting = shutdown.clone();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { stop_accepting.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.map(|()| Drain::Complete),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => Ok(Drain::GraceExpired),
    }
}
