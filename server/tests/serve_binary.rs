//! The `medgemma-x` binary as an operator runs it: fresh data dir, port 0, real SQLite, real signals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BIN, Server};

/// A blocking GET, so these tests read top to bottom.
fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn log_files(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data_dir.join("logs")).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn a_fresh_data_dir_is_laid_out_served_and_shut_down_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let server = Server::start(&["--data-dir", data_dir.to_str().unwrap()], &[]);

    for sub in ["db", "objects", "reports", "logs"] {
        assert!(data_dir.join(sub).is_dir(), "{sub}/ not created");
    }
    assert!(data_dir.join("db/medgemma-x.sqlite3").is_file());

    let (status, body) = get(&server.url("/healthz"));
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ok");

    let (status, body) = get(&server.url("/readyz"));
    assert_eq!(status, 200, "{body}");
    let readiness = json(&body);
    assert_eq!(readiness["ready"], true);
    assert_eq!(readiness["database"]["ok"], true);
    assert_eq!(readiness["database"]["backend"], "sqlite");
    assert_eq!(readiness["model"]["loaded"], false);
    assert!(readiness["model"]["state"].as_str().unwrap().contains("未配置模型"), "{readiness}");

    // The page is rendered on the server, with the script that hydrates it (without a session: the
    // sign-in page, which `/` redirects to).
    let (status, html) = get(&server.url("/"));
    assert!(html.contains("请登录"), "{html}");
    assert_eq!(status, 200);
    assert!(html.contains("<h1>MedGemma-X</h1>"), "{html}");
    assert!(html.contains("【AI辅助分析】结论仅供参考，须由执业医师复核确认"));
    assert!(html.contains("/pkg/medgemma-x.js"), "no hydration script: {html}");
    // cargo-leptos writes pkg/medgemma-x.wasm; a binary built without LEPTOS_OUTPUT_NAME asks for
    // medgemma-x_bg.wasm instead and the page never hydrates.
    assert!(html.contains("/pkg/medgemma-x.wasm"), "page asks for another wasm file: {html}");

    let (status, body) = get(&server.url("/api/v1/no-such-thing"));
    assert_eq!(status, 401, "nothing under /api is public");
    assert_eq!(json(&body)["error"]["code"], "unauthorized");
    let signed_in = server.get("/api/v1/no-such-thing");
    assert_eq!(signed_in.status(), 404);
    assert_eq!(signed_in.json::<serde_json::Value>().unwrap()["error"]["code"], "not_found");

    // First start: the site key and the bootstrap administrator's password, readable by the server only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir.join("secrets")), 0o700);
    assert_eq!(mode(&data_dir.join("secrets/site.key")), 0o600);
    assert_eq!(mode(&data_dir.join("secrets/initial-admin-password")), 0o600);

    let (exit, took) = server.terminate();
    assert_eq!(exit.code(), Some(0), "exit after SIGTERM: {exit:?}");
    assert!(took < Duration::from_secs(10), "took {took:?} to exit");

    // The rolling log file holds JSON lines, including the start-up configuration.
    let files = log_files(&data_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let log = std::fs::read_to_string(&files[0]).unwrap();
    let events: Vec<serde_json::Value> = log.lines().map(json).collect();
    assert!(events.iter().any(|e| e["fields"]["message"] == "listening"));
    assert!(events.iter().any(|e| e["fields"]["setting"] == "data_dir"));
    assert!(events.iter().any(|e| e["fields"]["message"] == "all requests finished; exiting"));
}

#[test]
fn flags_beat_environment_and_environment_beats_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let env_data_dir = tmp.path().join("from-env");
    // The env var's bind address is unparsable: the server only starts if the flag wins.
    let server = Server::start(
        &[],
        &[("MEDGEMMA_X_DATA_DIR", env_data_dir.to_str().unwrap()), ("MEDGEMMA_X_BIND", "not-an-address")],
    );
    assert!(env_data_dir.join("db/medgemma-x.sqlite3").is_file(), "MEDGEMMA_X_DATA_DIR was not used");
    let (exit, _) = server.terminate();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn an_unusable_model_dir_is_reported_and_the_server_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-model");
    let server = Server::start(
        &["--data-dir", tmp.path().join("data").to_str().unwrap(), "--model-dir", missing.to_str().unwrap()],
        &[],
    );
    let (status, body) = get(&server.url("/readyz"));
    assert_eq!(status, 200);
    let state = json(&body)["model"]["state"].as_str().unwrap().to_string();
    assert!(state.contains("模型目录不可用") && state.contains("running without a model"), "{state}");
}

/// The model part of /readyz once the worker has finished loading (or failed to).
fn wait_for_model(server: &Server) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let model = json(&get(&server.url("/readyz")).1)["model"].clone();
        if !model["state"].as_str().unwrap().contains("加载中") {
            return model;
        }
        assert!(std::time::Instant::now() < deadline, "still loading after 30 s: {model}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_model_dir_is_checked_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let model = common::fixture("tiny-a");
    let server = Server::start(&["--data-dir", data.to_str().unwrap(), "--model-dir", model.to_str().unwrap()], &[]);
    let loaded = wait_for_model(&server);
    assert_eq!(loaded["loaded"], true, "{loaded}");
    assert!(loaded["state"].as_str().unwrap().contains("已加载随机测试模型"), "{loaded}");
    drop(server);

    // A valid config.json but no weights: the load fails, the server says why and runs without chat.
    let broken = tmp.path().join("no-weights");
    std::fs::create_dir(&broken).unwrap();
    for file in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"] {
        std::fs::copy(model.join(file), broken.join(file)).unwrap();
    }
    let server = Server::start(&["--data-dir", data.to_str().unwrap(), "--model-dir", broken.to_str().unwrap()], &[]);
    let failed = wait_for_model(&server);
    assert_eq!(failed["loaded"], false, "{failed}");
    assert!(failed["state"].as_str().unwrap().contains("模型加载失败"), "{failed}");
    drop(server);

    // A folder holding some other model's config.json: reported with the reason, server still up.
    let other = tmp.path().join("llama");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let server = Server::start(&["--data-dir", data.to_str().unwrap(), "--model-dir", other.to_str().unwrap()], &[]);
    let state = json(&get(&server.url("/readyz")).1)["model"]["state"].as_str().unwrap().to_string();
    assert!(state.contains("模型目录不可用") && state.contains("unknown model_type \"llama\""), "{state}");
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--data-dir", tmp.path().to_str().unwrap(), "--bind"])
        .arg(taken.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("端口可能已被占用") && stderr.contains("port in use"), "{stderr}");
}

#[test]
fn an_unsupported_database_fails_start_without_printing_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--log-format", "json", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .args(["--database-url", "postgres://pacs:TopSecret42@db.example/mgx"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database postgres"), "{stderr}");
    assert!(stdout.contains("postgres://pacs:***@db.example/mgx"), "configuration not logged masked: {stdout}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("TopSecret42"), "password printed: {text}");
    }
}

#[test]
fn version_names_the_libtorch_it_links() {
    let output = Command::new(BIN).arg("version").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with(&format!("medgemma-x {}", env!("CARGO_PKG_VERSION"))), "{stdout}");
    assert!(stdout.contains("torch/lib"), "{stdout}");
    assert!(stdout.contains("inference device: "), "{stdout}");
}
