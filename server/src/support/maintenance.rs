//! `logs/maintenance.log`: one JSON line for each problem the server or its supervisor detected and what
//! was done about it — what a nurse's "实时体检" and the vendor's support read first. No patient data goes
//! here (events are about processes, files and disks).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    /// What happened: `server_exited`, `server_hung`, `partial_uploads_removed`, …
    event: &'a str,
    /// What was seen, in words.
    seen: &'a str,
    /// What was done.
    action: &'a str,
    /// How it ended (`ok`, `pending`, `failed`).
    outcome: &'a str,
}

/// Appends one line (O_APPEND: lines from the supervisor and the server never interleave within a line).
pub fn record(logs_dir: &Path, event: &str, seen: &str, action: &str, outcome: &str) {
    let line = Line { ts: crate::support::clock::now_rfc3339(), event, seen, action, outcome };
    let mut text = serde_json::to_string(&line).expect("a maintenance line serializes");
    text.push('\n');
    let written = std::fs::create_dir_all(logs_dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs_dir.join("maintenance.log"))?
            .write_all(text.as_bytes())
    });
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot write the maintenance log");
    }
    tracing::warn!(event, seen, action, outcome, "maintenance");
}
