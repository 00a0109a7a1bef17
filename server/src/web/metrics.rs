//! `/metrics` and the middleware that counts every request; the counters are domain::metrics.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::AppState;
use crate::web::error::AppError;

/// Middleware: counts every request under its route template (`/api/v1/instances/{id}`, never the
/// concrete path, so patient-related ids do not become label values).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or("other", |p| p.as_str()).to_string();
    let response = next.run(request).await;
    state.metrics.record_request(method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The method as a label: the standard ones by name, anything else (a client may send any token, of
/// any length) as `other`, so junk methods cannot grow the label set without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::CONNECT), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }
}
