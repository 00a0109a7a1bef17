//! `medgemma-x status` and `stop` in each state a nurse meets: stopped, running, started twice, stale PID
//! file, stopped again.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server};
use serde_json::Value;
use server::support::gpu::{GpuInfo, Gpus};

fn run(args: &[&str], data_dir: &Path) -> Output {
    Command::new(BIN).args(args).arg("--data-dir").arg(data_dir).output().unwrap()
}

fn status_json(data_dir: &Path) -> (i32, Value) {
    let out = run(&["status", "--json"], data_dir);
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn status_and_stop_follow_the_server_through_its_life() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();

    let (code, s) = status_json(&data);
    assert_eq!((code, s["state"].as_str().unwrap()), (3, "stopped"));

    let server = Server::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let pid = server.child.id();
    assert_eq!(std::fs::read_to_string(data.join("medgemma-x.pid")).unwrap().trim(), pid.to_string());
    let (code, s) = status_json(&data);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["run"]["pid"], pid);
    assert_eq!(s["readiness"]["database"]["ok"], true);
    assert!(s["verdict"].as_str().unwrap().starts_with("服务运行正常"), "{s}");
    assert!(s["disk_free_bytes"].as_u64().unwrap() > 0);
    // NVML's answer for this machine (the gpu module's test checks it against the driver's presence).
    // Memory in use moves between two reads; the cards and their names do not.
    let gpu_line = match serde_json::from_value(s["gpus"].clone()).unwrap() {
        Gpus::Found { gpus } => {
            let Gpus::Found { gpus: here } = Gpus::query() else { panic!("status saw GPUs, this test sees none") };
            let names = |g: &[GpuInfo]| g.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&gpus), names(&here));
            format!("GPU 0：{}  显存", gpus[0].name)
        }
        Gpus::Unavailable { .. } => {
            assert!(matches!(Gpus::query(), Gpus::Unavailable { .. }));
            "GPU：无（".to_string()
        }
    };
    let text = String::from_utf8(run(&["status"], &data).stdout).unwrap();
    assert!(text.contains("数据库：正常") && text.contains("最近错误：无"), "{text}");
    assert!(text.contains(&gpu_line), "{text}");

    // A second server on the same data dir is refused and names the first.
    let second = Command::new(BIN).args(["serve", "--bind", "127.0.0.1:0", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("another medgemma-x (PID {pid}) already serves")), "{err}");

    let out = run(&["stop"], &data);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("已停止（PID {pid}")));
    let mut server = server;
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    assert!(!data.join("medgemma-x.pid").exists() && !data.join("medgemma-x.run.json").exists());
    assert_eq!(status_json(&data).0, 3);
    let out = run(&["stop"], &data);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
}

#[test]
fn a_stale_pid_file_is_reported_and_cleaned_without_signalling_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    // The PID of a live process that is not our server: status and stop must not trust kill -0.
    let bystander = std::process::id();
    std::fs::write(tmp.path().join("medgemma-x.pid"), format!("{bystander}\n")).unwrap();
    let (code, s) = status_json(tmp.path());
    assert_eq!((code, s["state"].as_str().unwrap()), (1, "stale"));
    assert!(s["verdict"].as_str().unwrap().contains("过期的PID文件"));
    let out = run(&["stop"], tmp.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("stale PID file removed"));
    assert!(!tmp.path().join("medgemma-x.pid").exists());
    assert_eq!(status_json(tmp.path()).0, 3);
}

#[test]
fn status_lists_the_last_five_errors_of_the_newest_daily_log() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let line = |i: u32, level: &str| {
        format!(
            r#"{{"timestamp":"2026-01-02T00:00:0{i}Z","level":"{level}","fields":{{"message":"event {i}","error":"e{i}"}}}}"#
        )
    };
    let newest: Vec<String> = (0..8).map(|i| line(i, if i == 3 { "INFO" } else { "ERROR" })).collect();
    std::fs::write(logs.join("medgemma-x.2026-01-02.log"), newest.join("\n")).unwrap();
    std::fs::write(logs.join("medgemma-x.2026-01-01.log"), line(9, "ERROR")).unwrap();
    std::fs::write(logs.join("console.log"), "not json\n").unwrap();
    let (code, s) = status_json(tmp.path());
    assert_eq!(code, 3);
    let errors: Vec<&str> = s["recent_errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert_eq!(errors[0], "2026-01-02T00:00:02Z event 2: e2");
    assert_eq!(errors[4], "2026-01-02T00:00:07Z event 7: e7");
}

/// The two states a failed or degraded start leaves: a taken port (the server exits; status says it is
/// not running and shows why), and no model (running; the verdict says chat is unavailable).
#[test]
fn status_explains_a_taken_port_and_a_server_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let start = Command::new(BIN).args(["serve", "--bind", &port, "--data-dir"]).arg(tmp.path()).output().unwrap();
    assert!(!start.status.success());
    let (code, s) = status_json(tmp.path());
    assert_eq!((code, s["state"].as_str().unwrap()), (3, "stopped"), "{s}");
    let last_error = s["recent_errors"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert!(last_error.contains(&format!("无法监听 {port}（端口可能已被占用）")), "{last_error}");
    let text = String::from_utf8(run(&["status"], tmp.path()).stdout).unwrap();
    assert!(text.contains("服务未运行") && text.contains("端口可能已被占用"), "{text}");
    drop(taken);

    let server = Server::start(&["--data-dir", tmp.path().to_str().unwrap()], &[]);
    let (code, s) = status_json(tmp.path());
    assert_eq!(code, 0, "{s}");
    let verdict = s["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("服务运行正常") && verdict.contains("未配置模型"), "{verdict}");
    let text = String::from_utf8(run(&["status"], tmp.path()).stdout).unwrap();
    assert!(text.contains("模型：未配置模型"), "{text}");
    drop(server);
}
