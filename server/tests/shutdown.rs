//! Graceful shutdown, in process: what happens to requests in flight when shutdown begins.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use server::startup::listener::{ConnectionLimits, Drain, serve_until};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A router whose one route reports that it started, then takes `takes` to answer.
fn slow_router(takes: Duration, started: mpsc::Sender<()>) -> Router {
    Router::new().route(
        "/slow",
        get(move || async move {
            started.send(()).await.unwrap();
            tokio::time::sleep(takes).await;
            "done"
        }),
    )
}

#[tokio::test]
async fn a_request_in_flight_finishes_and_new_connections_are_refused() {
    let (started_tx, mut started) = mpsc::channel(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_until(
        listener,
        slow_router(Duration::from_millis(500), started_tx),
        ConnectionLimits::default(),
        shutdown.clone(),
        Duration::from_secs(10),
    ));

    let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    started.recv().await.unwrap();
    shutdown.cancel();

    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    assert_eq!(server.await.unwrap().unwrap(), Drain::Complete);
    assert!(reqwest::get(format!("http://{addr}/slow")).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn a_request_longer_than_the_grace_period_does_not_hold_the_exit() {
    let (started_tx, mut started) = mpsc::channel(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let grace = Duration::from_millis(300);
    let server = tokio::spawn(serve_until(
        listener,
        slow_router(Duration::from_secs(600), started_tx),
        ConnectionLimits::default(),
        shutdown.clone(),
        grace,
    ));

    let _stuck = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    started.recv().await.unwrap();
    let cancelled_at = Instant::now();
    shutdown.cancel();

    assert_eq!(server.await.unwrap().unwrap(), Drain::GraceExpired);
    let took = cancelled_at.elapsed();
    assert!(took >= grace && took < Duration::from_secs(5), "drain took {took:?}");
}
