//! Shared by the server's integration tests.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_medgemma-x");

/// A tiny checkpoint made by models/tests/fixtures/make_tiny_gemma3.py (scripts/test.sh generates them
/// into target/fixtures; MEDGEMMA_X_FIXTURES points elsewhere). Missing fixtures fail the test.
pub fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("MEDGEMMA_X_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join(name);
    assert!(dir.join("golden.json").is_file(), "no fixture at {}: run scripts/test.sh", dir.display());
    dir
}

/// A file made by imaging/tests/fixtures/make_dicom_fixtures.py, e.g. `synthetic/ct_phantom.dcm`.
pub fn dicom_fixture(path: &str) -> PathBuf {
    let file = std::env::var_os("MEDGEMMA_X_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join("dicom")
        .join(path);
    assert!(file.is_file(), "no fixture at {}: run scripts/test.sh", file.display());
    file
}

/// A running `medgemma-x serve`, killed on drop if a test fails half-way.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    _stdout_lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `medgemma-x serve --bind 127.0.0.1:0 --log-format json ARGS` and waits for its
    /// "listening" log line, which carries the port the OS picked.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn medgemma-x");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no 'listening' line within 30 s; exit: {:?}", child.try_wait()));
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if event["fields"]["message"] == "listening" {
                let addr = event["fields"]["addr"].as_str().unwrap().parse().unwrap();
                return Server { child, addr, _stdout_lines: rx };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = sent + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(Instant::now() < deadline, "server still running 15 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
