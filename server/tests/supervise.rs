//! `serve --supervise`: a killed server comes back and the maintenance log says so; `medgemma-x stop` ends
//! both the server and its supervisor cleanly.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Server};

/// Running (a zombie waiting for a reaper does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

fn pid(data: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(data.join("medgemma-x.pid")).ok()?.trim().parse().ok()
}

#[test]
fn a_killed_server_is_restarted_and_a_stopped_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut supervisor = Server::start(&["--data-dir", data.to_str().unwrap(), "--supervise"], &[]);
    let first = pid(data).expect("the server published its PID");
    assert_ne!(first, supervisor.child.id(), "the server runs as a child of the supervisor");

    assert!(Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        assert!(Instant::now() < deadline, "the server did not come back");
        if let Some(p) = pid(data).filter(|p| *p != first)
            && Command::new(BIN).args(["status", "--data-dir", data.to_str().unwrap()]).status().unwrap().code()
                == Some(0)
        {
            break p;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = std::fs::read_to_string(data.join("logs/maintenance.log")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(line["event"], "server_exited");
    assert!(line["seen"].as_str().unwrap().contains("signal: 9"), "{line}");
    assert!(line["action"].as_str().unwrap().starts_with("restart in"), "{line}");
    // The nurse's status check shows it.
    let status = Command::new(BIN).args(["status", "--json", "--data-dir", data.to_str().unwrap()]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["last_maintenance"]["event"], "server_exited");

    // Stopped on purpose: the server exits 0 and the supervisor follows instead of restarting it.
    let stop = Command::new(BIN).args(["stop", "--data-dir", data.to_str().unwrap()]).status().unwrap();
    assert!(stop.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = supervisor.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the supervisor kept running after stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    assert_eq!(pid(data), None, "PID file removed by the clean exit of {second}");
    let log = std::fs::read_to_string(data.join("logs/maintenance.log")).unwrap();
    assert!(log.lines().last().unwrap().contains("server_stopped"));
}

/// Under systemd (Type=notify, WatchdogSec=): READY once listening, WATCHDOG pings at half the interval,
/// STOPPING on SIGTERM — received here on a socket standing in for systemd's.
#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let socket_path = tmp.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let server = Server::start(
        &["--data-dir", tmp.path().join("data").to_str().unwrap()],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let receive = |timeout: Duration| -> Option<String> {
        socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    };
    let within_10_s = Duration::from_secs(10);
    assert_eq!(receive(within_10_s).as_deref(), Some("READY=1"));
    assert_eq!(receive(within_10_s).as_deref(), Some("WATCHDOG=1"));
    assert_eq!(receive(within_10_s).as_deref(), Some("WATCHDOG=1"));
    let (status, _) = server.terminate();
    assert!(status.success());
    let rest: Vec<String> = std::iter::from_fn(|| receive(Duration::from_millis(500))).collect();
    assert!(rest.iter().any(|m| m == "STOPPING=1"), "{rest:?}");
}

/// A server that stops answering (SIGSTOP stands in for a wedged process) is killed and replaced after
/// three failed /healthz probes.
#[test]
fn a_hung_server_is_killed_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let supervisor = Server::start(&["--data-dir", data.to_str().unwrap(), "--supervise"], &[]);
    let first = pid(data).expect("the server published its PID");
    assert!(Command::new("kill").args(["-STOP", &first.to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while pid(data).is_none_or(|p| p == first)
        || Command::new(BIN).args(["status", "--data-dir", data.to_str().unwrap()]).status().unwrap().code() != Some(0)
    {
        assert!(Instant::now() < deadline, "the hung server was not replaced within 60 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(data.join("logs/maintenance.log")).unwrap();
    assert!(log.contains("\"event\":\"server_hung\""), "{log}");
    assert!(log.contains("\"event\":\"server_exited\""), "{log}");

    // Killing the supervisor outright (SIGKILL, as the test harness does on drop) takes the server with it.
    let server = pid(data).unwrap();
    drop(supervisor);
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(server) {
        assert!(Instant::now() < deadline, "the server outlived its killed supervisor");
        std::thread::sleep(Duration::from_millis(100));
    }
}
