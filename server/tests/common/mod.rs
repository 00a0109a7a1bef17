//! Shared by the server's integration tests.
#![allow(dead_code)] // each test binary uses its own part

pub mod chat;

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

/// Uploads one fixture file (see [`dicom_fixture`]) as the radiologist; returns (study id, instance id).
pub fn upload_fixture(server: &Server, path: &str) -> (i64, i64) {
    let file = dicom_fixture(path);
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let part = reqwest::blocking::multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name(name);
    let form = reqwest::blocking::multipart::Form::new().part("files", part);
    let body: serde_json::Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let id = |key: &str| body["files"][0][key].as_i64().unwrap_or_else(|| panic!("{body:#}"));
    (id("study_id"), id("instance_id"))
}

/// Creates a study's report as the server's radiologist; the answer (report, id, state), after a 201.
pub fn create_report(server: &Server, study: i64, report: &serde_json::Value) -> serde_json::Value {
    let created = server
        .client()
        .post(server.url(&format!("/api/v1/studies/{study}/reports")))
        .json(&serde_json::json!({ "report": report }))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    created.json().unwrap()
}

/// Every server a test starts on a data dir has this radiologist (added with `medgemma-x user add`).
pub const DOCTOR: &str = "test-doctor";
pub const DOCTOR_PASSWORD: &str = "a sound test passphrase";

/// Adds an account through the CLI, as an installer would; true when added, false when it existed.
pub fn add_user(data_dir: &str, username: &str, role: &str, password: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["user", "add", username, "--role", role, "--password-stdin", "--data-dir", data_dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() || stderr.contains("taken"), "user add {username}: {stderr}");
    output.status.success()
}

/// Makes an API token through the CLI (as an admin at the console would); returns the token.
pub fn create_token(data_dir: &str, name: &str, scopes: &str) -> String {
    let output =
        Command::new(BIN).args(["token", "create", name, "--scopes", scopes, "--data-dir", data_dir]).output().unwrap();
    assert!(output.status.success(), "token create: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().find(|l| l.starts_with("mgx_")).expect("the token is printed").to_string()
}

/// A client signed in as `username`: it keeps the session cookie and sends the CSRF token on every
/// request, as the web app does.
pub fn sign_in(base_url: &str, username: &str, password: &str) -> reqwest::blocking::Client {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let login = reqwest::blocking::Client::builder().cookie_provider(jar.clone()).build().unwrap();
    let response = login
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "sign-in as {username}: {}", response.text().unwrap());
    let me: serde_json::Value = response.json().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-csrf-token", me["csrf_token"].as_str().unwrap().parse().unwrap());
    reqwest::blocking::Client::builder()
        .cookie_provider(jar)
        .default_headers(headers)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// A running `medgemma-x serve`, killed on drop if a test fails half-way.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: Option<PathBuf>,
    doctor: std::sync::OnceLock<reqwest::blocking::Client>,
    admin: std::sync::OnceLock<reqwest::blocking::Client>,
    _stdout_lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `medgemma-x serve --bind 127.0.0.1:0 --log-format json ARGS` and waits for its
    /// "listening" log line, which carries the port the OS picked.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let data_dir = args.iter().position(|a| *a == "--data-dir").map(|i| PathBuf::from(args[i + 1]));
        if let Some(dir) = &data_dir {
            add_user(dir.to_str().unwrap(), DOCTOR, "radiologist", DOCTOR_PASSWORD);
        }
        // Tests bind loopback only: the DICOM listener too, on a free port, unless the test names one.
        let dicom: &[&str] = if args.contains(&"--dicom-bind") { &[] } else { &["--dicom-bind", "127.0.0.1:0"] };
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(dicom)
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
                return Server {
                    child,
                    addr,
                    data_dir,
                    doctor: Default::default(),
                    admin: Default::default(),
                    _stdout_lines: rx,
                };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signed in as [`DOCTOR`] (a radiologist).
    pub fn client(&self) -> &reqwest::blocking::Client {
        self.doctor.get_or_init(|| sign_in(&self.url(""), DOCTOR, DOCTOR_PASSWORD))
    }

    /// GET as the radiologist.
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client().get(self.url(path)).send().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Signed in as the bootstrap administrator (password from the data dir's secrets).
    pub fn admin(&self) -> &reqwest::blocking::Client {
        self.admin.get_or_init(|| {
            let file = self.data_dir.as_ref().expect("a data dir").join("secrets/initial-admin-password");
            let password = std::fs::read_to_string(&file).unwrap();
            sign_in(&self.url(""), "admin", password.trim())
        })
    }

    /// The Prometheus text, read as the administrator.
    pub fn metrics(&self) -> String {
        self.admin().get(self.url("/metrics")).send().unwrap().text().unwrap()
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
