//! The counters behind `/metrics`, in the Prometheus text format: requests and latency by route, uploads
//! by outcome, chat answers. They live in memory (a restart starts them from zero, as Prometheus expects
//! of counters).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::domain::inference::QueueStatus;

/// Latency buckets, seconds: from a health probe to a large upload.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (method, route, status) → count
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency histogram
    latency: BTreeMap<String, Histogram>,
    /// (outcome, code) → files
    uploads: BTreeMap<(&'static str, &'static str), u64>,
    /// stop reason (eos, max_tokens, cancelled, …) or error code → answers
    chat_answers: BTreeMap<String, u64>,
    chat_first_token: Histogram,
    generated_tokens: u64,
    decode_seconds: f64,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (le, n) in BUCKETS.iter().zip(self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.lock();
        *inner.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        inner.latency.entry(route.to_string()).or_default().observe(seconds);
    }

    /// One uploaded file's outcome (`stored`, `duplicate`, `rejected`) and, for rejections, its code.
    pub fn record_upload(&self, outcome: &'static str, code: Option<&'static str>) {
        *self.lock().uploads.entry((outcome, code.unwrap_or(""))).or_default() += 1;
    }

    /// One answer: how it ended, its time to first token, tokens and decode time.
    pub fn record_chat(&self, outcome: &str, first_token_s: Option<f64>, tokens: i64, decode_s: f64) {
        let mut inner = self.lock();
        *inner.chat_answers.entry(outcome.to_string()).or_default() += 1;
        if let Some(seconds) = first_token_s {
            inner.chat_first_token.observe(seconds);
        }
        inner.generated_tokens += tokens.max(0) as u64;
        inner.decode_seconds += decode_s;
    }

    pub fn render(&self, queue: Option<QueueStatus>) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP medgemma_x_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE medgemma_x_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "medgemma_x_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP medgemma_x_http_request_duration_seconds Time to the response head, by route.\n");
        out.push_str("# TYPE medgemma_x_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            h.write(&mut out, "medgemma_x_http_request_duration_seconds", &format!("route=\"{}\"", escape(route)));
        }
        out.push_str("# HELP medgemma_x_uploaded_files_total Uploaded files by outcome, and rejection code.\n");
        out.push_str("# TYPE medgemma_x_uploaded_files_total counter\n");
        for ((outcome, code), n) in &inner.uploads {
            let _ = writeln!(out, "medgemma_x_uploaded_files_total{{outcome=\"{outcome}\",code=\"{code}\"}} {n}");
        }
        out.push_str(
            "# HELP medgemma_x_chat_answers_total Chat answers by how they ended (stop reason or error code).\n",
        );
        out.push_str("# TYPE medgemma_x_chat_answers_total counter\n");
        for (outcome, n) in &inner.chat_answers {
            let _ = writeln!(out, "medgemma_x_chat_answers_total{{outcome=\"{}\"}} {n}", escape(outcome));
        }
        out.push_str(
            "# HELP medgemma_x_chat_time_to_first_token_seconds From the question to its first streamed text.\n",
        );
        out.push_str("# TYPE medgemma_x_chat_time_to_first_token_seconds histogram\n");
        inner.chat_first_token.write(&mut out, "medgemma_x_chat_time_to_first_token_seconds", "");
        out.push_str("# HELP medgemma_x_generated_tokens_total Tokens generated by the model.\n");
        out.push_str("# TYPE medgemma_x_generated_tokens_total counter\n");
        let _ = writeln!(out, "medgemma_x_generated_tokens_total {}", inner.generated_tokens);
        out.push_str("# HELP medgemma_x_decode_seconds_total Time answers spent decoding (tokens/s = rate of tokens / rate of this).\n");
        out.push_str("# TYPE medgemma_x_decode_seconds_total counter\n");
        let _ = writeln!(out, "medgemma_x_decode_seconds_total {}", inner.decode_seconds);
        if let Some(q) = queue {
            out.push_str(
                "# HELP medgemma_x_inference_queue Questions waiting for the model and answers in progress.\n",
            );
            out.push_str("# TYPE medgemma_x_inference_queue gauge\n");
            let _ = writeln!(out, "medgemma_x_inference_queue{{state=\"waiting\"}} {}", q.waiting);
            let _ = writeln!(out, "medgemma_x_inference_queue{{state=\"active\"}} {}", q.active);
            out.push_str(
                "# HELP medgemma_x_inference_worker_restarts_total Inference workers replaced (hung, or exited), all together.\n",
            );
            out.push_str("# TYPE medgemma_x_inference_worker_restarts_total counter\n");
            let _ = writeln!(out, "medgemma_x_inference_worker_restarts_total {}", q.worker_restarts);
            out.push_str("# HELP medgemma_x_inference_worker_up Whether each inference worker has its model loaded and takes questions.\n");
            out.push_str("# TYPE medgemma_x_inference_worker_up gauge\n");
            for w in &q.workers {
                let labels = format!(
                    "worker=\"{}\",place=\"{}\",device=\"{}\",model=\"{}\"",
                    w.index,
                    w.place,
                    w.device.as_deref().unwrap_or(""),
                    w.model.as_deref().unwrap_or("").replace(['"', '\\', '\n'], "_")
                );
                let _ = writeln!(out, "medgemma_x_inference_worker_up{{{labels}}} {}", u8::from(w.state == "ready"));
            }
            out.push_str("# HELP medgemma_x_inference_worker_active Answers in progress on each inference worker.\n");
            out.push_str("# TYPE medgemma_x_inference_worker_active gauge\n");
            for w in &q.workers {
                let _ = writeln!(out, "medgemma_x_inference_worker_active{{worker=\"{}\"}} {}", w.index, w.active);
            }
            out.push_str("# HELP medgemma_x_inference_worker_restarts Times each inference worker was replaced.\n");
            out.push_str("# TYPE medgemma_x_inference_worker_restarts counter\n");
            for w in &q.workers {
                let _ = writeln!(out, "medgemma_x_inference_worker_restarts{{worker=\"{}\"}} {}", w.index, w.restarts);
            }
        }
        out
    }
}

/// Label values are route templates and fixed words; escape anyway, as the format asks.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
