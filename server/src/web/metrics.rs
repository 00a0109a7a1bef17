//! `/metrics` and the middleware that counts every request; the counters are domain::metrics.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::AppState;
use crate::web::error::AppError;

/// Middleware: counts every request under its route template (`/api/v1/instances/{id}`, never the
/// concrete path, so patient-related ids do not become label values).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("other", |p| p.as_str()).to_string();
    let response = next.run(request).await;
    state.metrics.record_request(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

pub async fn endpoint(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let mut text = state.metrics.render(state.inference.as_ref().map(|i| i.queue()));
    // NVML's first call loads and initialises the library: off the async threads.
    if let Ok(gpus) = tokio::task::spawn_blocking(crate::support::gpu::Gpus::query).await {
        gpus.write_metrics(&mut text);
    }
    text.push_str(
        "# HELP medgemma_x_report_deliveries Report deliveries to the HIS by state (pending, delivered, failed).\n",
    );
    text.push_str("# TYPE medgemma_x_report_deliveries gauge\n");
    let counts = crate::domain::deliveries::counts(&state.db).await?;
    for known in ["pending", "delivered", "failed"] {
        let n = counts.iter().find(|(s, _)| s == known).map_or(0, |(_, n)| *n);
        let _ = writeln!(text, "medgemma_x_report_deliveries{{state=\"{known}\"}} {n}");
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}
