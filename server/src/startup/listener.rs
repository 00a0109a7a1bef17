//! The HTTP listener: accepts connections under the limits that keep slow or greedy clients from taking
//! the server's file descriptors, serves each with hyper (HTTP/1.1: what browsers and nginx speak to a
//! server without TLS), and drains them on shutdown.
//!
//! The limits: a cap on open connections in all (the next waits in the kernel's backlog until one
//! closes) and per client address (the next gets a short 503 and is closed), a deadline for a request's
//! head (which also closes idle keep-alive connections), and one for each pause in a request's body.
//! Responses are not timed: an answer streamed as server-sent events runs as long as the model writes
//! (and a keep-alive comment every 15 s keeps proxies from cutting it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How many connections, and how long a client may take to send its request.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address (behind a proxy every ward shares one: raise it there).
    pub max_per_client: usize,
    /// From the connection (or the previous response) to the end of the next request's head.
    pub header_timeout: Duration,
    /// Longest pause between two pieces of a request's body.
    pub body_timeout: Duration,
}

impl ConnectionLimits {
    /// Open files a connection does not use: the database, logs, images being read, libtorch.
    const FILES_FOR_THE_REST: u64 = 256;

    /// The limits with `max_connections` lowered to what the process may open (raising its soft limit of
    /// open files to the hard one first), so that a full house never makes `open` fail elsewhere.
    pub fn fitted_to_open_file_limit(self) -> ConnectionLimits {
        let Some(files) = raise_open_file_limit() else { return self };
        let room = files.saturating_sub(Self::FILES_FOR_THE_REST).max(16) as usize;
        if room < self.max_connections {
            tracing::warn!(
                requested = self.max_connections,
                allowed = room,
                open_file_limit = files,
                "max_connections lowered to fit the open-file limit (raise LimitNOFILE / ulimit -n)"
            );
        }
        ConnectionLimits { max_connections: self.max_connections.min(room), ..self }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_per_client: 256,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
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

/// Serves `router` until `shutdown` is cancelled, then lets open connections finish for at most `grace`.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<Drain> {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    // One permit per open connection; all of them back means every connection has closed.
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClient::new(limits.max_per_client);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was accepted: the listener
                // itself is fine. A short pause keeps an EMFILE from spinning a core.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(slot) = per_client.take(remote.ip()) else {
            refuse_busy_client(stream, remote);
            continue;
        };
        let service = router.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        });
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, service, limits.header_timeout, shutdown).await;
            drop((slot, permit));
        });
    }
    drop(listener);
    let all_closed = open.acquire_many(limits.max_connections as u32);
    match tokio::time::timeout(grace, all_closed).await {
        Ok(_) => Ok(Drain::Complete),
        Err(_) => Ok(Drain::GraceExpired),
    }
}

async fn serve_connection<S>(stream: TcpStream, service: S, header_timeout: Duration, shutdown: CancellationToken)
where
    S: tower::Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    // Shutting down: the request in progress (if any) finishes, then the connection closes.
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended with an error while draining");
    }
}

/// A client over its connection cap gets one short answer it can show, and the connection closes. The
/// answer is written only if the socket takes it at once: a client that does not read gets nothing.
fn refuse_busy_client(stream: TcpStream, remote: SocketAddr) {
    // Debug, not warn: a flood of these must not become a flood of log lines.
    tracing::debug!(client = %remote.ip(), "connection refused: too many open connections from this address");
    let body = r#"{"error":{"code":"too_many_connections","message_zh":"来自该地址的连接过多，请稍后再试","message_en":"Too many open connections from this address; try again shortly"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Open connections by client address.
#[derive(Clone)]
struct PerClient {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of `ip`; dropping it gives the place back.
struct ClientSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    fn new(max: usize) -> PerClient {
        PerClient { max, open: Arc::default() }
    }

    fn take(&self, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot { ip, open: Arc::clone(&self.open) })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Raises the soft limit of open files to the hard limit; returns the limit now in force.
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_places_back_when_its_connections_close() {
        let per_client = PerClient::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = per_client.take(a).unwrap();
        let _second = per_client.take(a).unwrap();
        assert!(per_client.take(a).is_none(), "a third connection from one address");
        assert!(per_client.take(b).is_some(), "another address is not held up");
        drop(first);
        assert!(per_client.take(a).is_some());
    }
}
