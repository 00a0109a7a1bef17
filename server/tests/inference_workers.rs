//! The model in worker processes (`medgemma-x inference`): what the web server does when a worker hangs,
//! aborts or is killed in the middle of an answer — the answer ends with a clear error, every other
//! route keeps answering quickly, a fresh worker answers the next question, and the old process and
//! its memory are gone — and workers side by side, or on another machine behind a shared secret.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::chat::{Events, one_at_a_time, post_chat, start_with_env, upload_image, wait_for_model};
use common::{BIN, Server, fixture};
use serde_json::{Value, json};

/// What the issue asks of every other route while a worker fails.
const OTHER_ROUTES_P99: Duration = Duration::from_millis(50);

/// Times the web server's other routes (a public one and a signed-in one) every 20 ms until stopped.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Duration>>,
}

impl Probe {
    fn start(server: &Server) -> Probe {
        let (health, studies) = (server.url("/healthz"), server.url("/api/v1/studies"));
        let client = server.client().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut took = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                for url in [&health, &studies] {
                    let started = Instant::now();
                    let status = client.get(url.as_str()).send().unwrap().status();
                    took.push(started.elapsed());
                    assert_eq!(status, 200, "{url}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            took
        });
        Probe { stop, thread }
    }

    /// (requests, p99)
    fn finish(self) -> (usize, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let mut took = self.thread.join().unwrap();
        took.sort();
        let p99 = took[(took.len() * 99 / 100).min(took.len() - 1)];
        (took.len(), p99)
    }
}

/// The server's worker processes, from /readyz.
fn workers(server: &Server) -> Vec<Value> {
    let ready: Value = reqwest::blocking::get(server.url("/readyz")).unwrap().json().unwrap();
    ready["model"]["workers"].as_array().unwrap().clone()
}

fn worker_pid(server: &Server) -> u32 {
    let workers = workers(server);
    assert_eq!(workers.len(), 1, "{workers:?}");
    workers[0]["pid"].as_u64().unwrap() as u32
}

/// Resident memory of a process and all its descendants, bytes.
fn tree_rss(root: u32) -> u64 {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name may hold spaces: the fields after its closing parenthesis.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.push((pid, ppid));
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    tree.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        })
        .sum()
}

fn is_gone(pid: u32) -> bool {
    // Reaped, not a zombie: the server waited for it.
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn maintenance_events(data: &tempfile::TempDir) -> Vec<Value> {
    let log = std::fs::read_to_string(data.path().join("logs/maintenance.log")).unwrap_or_default();
    log.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn long_question() -> Value {
    json!({"message": "请详细描述", "max_new_tokens": 400, "min_new_tokens": 400, "temperature": 1.0})
}

fn short_question() -> Value {
    json!({"message": "描述这张胸片", "max_new_tokens": 8})
}

/// The part every fault shares: `fault` happens to a long answer in progress (given its events and the
/// worker's pid);
/// the answer must end with `code`, the other routes stay quick, a fresh worker answers next, the
/// old process is gone and the process tree's memory is back where it was. Returns the error event.
fn survives(data: &tempfile::TempDir, server: &Server, code: &str, fault: impl FnOnce(&mut Events, u32)) -> Value {
    let (study, _) = upload_image(server, "synthetic/cxr.jpg", "P-WORKER-1", "2025-10-15");
    let old_pid = worker_pid(server);
    let before = tree_rss(server.child.id());
    let worker_before = tree_rss(old_pid);

    let probe = Probe::start(server);
    let asked = Instant::now();
    let mut events = Events::new(post_chat(server, study, long_question()));
    fault(&mut events, old_pid);
    let rest = events.all();
    let last = rest.last().expect("the answer's end");
    let ended_after = asked.elapsed();
    assert_eq!(last.name, "error", "{:?}", rest.iter().map(|e| &e.name).collect::<Vec<_>>());
    assert_eq!(last.data["code"], code, "{}", last.data);
    assert!(last.data["message_zh"].as_str().unwrap().contains("自动重启"), "{}", last.data);

    wait_for_model(server);
    let next = Events::new(post_chat(server, study, short_question())).all();
    assert_eq!(next.last().unwrap().name, "done", "{}", next.last().unwrap().data);
    let (requests, p99) = probe.finish();

    let new_pid = worker_pid(server);
    let after = tree_rss(server.child.id());
    println!(
        "{code}: answer ended {:.2} s after it was asked; {requests} other requests meanwhile, p99 {:.1} ms; \
         process tree RSS {:.0} MB before (the worker {:.0} MB), {:.0} MB after (worker {old_pid} → {new_pid})",
        ended_after.as_secs_f64(),
        p99.as_secs_f64() * 1000.0,
        before as f64 / 1e6,
        worker_before as f64 / 1e6,
        after as f64 / 1e6
    );
    assert!(p99 < OTHER_ROUTES_P99, "other routes p99 {p99:?} over {requests} requests");
    assert_ne!(new_pid, old_pid);
    assert!(is_gone(old_pid), "the old worker {old_pid} is still there");
    // The fresh worker has answered once; the old one had not yet when `before` was read: allow for
    // what one answer leaves allocated, not for a second worker (or what a hung one holds).
    assert!(
        after < before + worker_before / 3,
        "RSS {before} → {after} (a worker {worker_before}): the old worker's memory was not returned"
    );

    let metrics = server.metrics();
    assert!(metrics.contains("medgemma_x_inference_worker_restarts_total 1\n"), "{metrics}");
    assert!(metrics.contains("medgemma_x_inference_queue{state=\"active\"} 0"), "{metrics}");
    assert!(metrics.contains(&format!("medgemma_x_chat_answers_total{{outcome=\"{code}\"}} 1")), "{metrics}");
    assert!(
        metrics.contains("medgemma_x_inference_worker_up{worker=\"0\",place=\"local auto\",device=\"cpu\""),
        "{metrics}"
    );
    let events = maintenance_events(data);
    assert_eq!(events.last().unwrap()["event"], "inference_restarted", "{events:?}");
    assert_eq!(events.last().unwrap()["outcome"], "ok", "{events:?}");
    events[events.len() - 2].clone()
}

/// A decoding step that hangs (fault injection: the worker's third step sleeps 60 s) is given up after
/// `--chat-stall-secs`: the worker process is killed, its answer ends with `engine_stuck`, and the
/// maintenance log tells the story.
#[test]
fn a_hung_worker_is_killed_and_a_fresh_one_answers() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start_with_env(&data, &["--chat-stall-secs", "1"], &[("MEDGEMMA_X_FAULT_HANG_STEP_SECS", "60")]);
    let stuck = survives(&data, &server, "engine_stuck", |_, _| {});
    assert_eq!(stuck["event"], "inference_stuck");
    assert_eq!(stuck["outcome"], "pending");
    assert!(stuck["seen"].as_str().unwrap().contains("(step)"), "{stuck}");
    assert!(stuck["action"].as_str().unwrap().contains("failed 1 answers"), "{stuck}");
}

/// A worker that aborts (as a failed CUDA assertion does) mid-answer.
#[test]
fn an_aborted_worker_ends_its_answer_and_a_fresh_one_answers() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start_with_env(&data, &[], &[("MEDGEMMA_X_FAULT_ABORT_STEP", "50")]);
    let exited = survives(&data, &server, "engine_crashed", |_, _| {});
    assert_eq!(exited["event"], "inference_exited");
    assert!(exited["seen"].as_str().unwrap().contains("SIGABRT"), "{exited}");
}

/// A worker killed from outside (the OOM killer, an operator's `kill -9`) mid-answer.
#[test]
fn a_worker_killed_mid_answer_is_replaced() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start_with_env(&data, &[], &[]);
    let exited = survives(&data, &server, "engine_crashed", |events, pid| {
        events.until("token");
        assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    });
    assert!(exited["seen"].as_str().unwrap().contains("SIGKILL"), "{exited}");
}

/// Two CPU workers: questions go to the less loaded one, both show in /readyz, `status` and /metrics.
#[test]
fn two_workers_share_the_questions() {
    let _serial = one_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let server = start_with_env(&data, &["--inference-devices", "cpu,cpu", "--chat-max-per-client", "4"], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while workers(&server).iter().any(|w| w["state"] != "ready") {
        assert!(Instant::now() < deadline, "{:?}", workers(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (study, _) = upload_image(&server, "synthetic/cxr.jpg", "P-WORKER-2", "2025-10-15");
    let answers: Vec<std::thread::JoinHandle<Vec<String>>> = (0..4)
        .map(|_| {
            let url = server.url(&format!("/api/v1/studies/{study}/chat"));
            let client = server.client().clone();
            std::thread::spawn(move || {
                let response = client.post(url).json(&long_question()).send().unwrap();
                Events::new(response).all().into_iter().map(|e| e.name).collect()
            })
        })
        .collect();
    // Both workers take answers while the four are in progress.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_busy = [false, false];
    while !(seen_busy[0] && seen_busy[1]) {
        for (i, w) in workers(&server).iter().enumerate() {
            seen_busy[i] |= w["active"].as_u64().unwrap() > 0;
        }
        assert!(Instant::now() < deadline, "not both busy: {:?}", workers(&server));
        std::thread::sleep(Duration::from_millis(20));
    }
    for answer in answers {
        assert_eq!(answer.join().unwrap().last().map(String::as_str), Some("done"));
    }
    let listed = workers(&server);
    assert_eq!(listed.len(), 2);
    assert_ne!(listed[0]["pid"], listed[1]["pid"]);
    assert!(listed.iter().all(|w| w["place"] == "local cpu" && w["device"] == "cpu"), "{listed:?}");

    let status = Command::new(BIN).args(["status", "--data-dir", data.path().to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches("推理进程 local cpu：就绪，设备 cpu，模型 tiny-a，进行中 0").count(), 2, "{text}");
    let metrics = server.metrics();
    assert!(metrics.contains("medgemma_x_inference_worker_active{worker=\"1\"} 0"), "{metrics}");
}

/// A worker on "another machine" (`inference --listen host:port`), reached over TCP with a shared
/// secret: a server with the wrong secret is refused with a clear state, the right one is served.
#[test]
fn a_remote_worker_serves_only_a_server_that_proves_the_secret() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("worker.secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "fedcba9876543210fedcba9876543210\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let _worker = Killed(
        Command::new(BIN)
            .args(["inference", "--model-dir", fixture("tiny-a").to_str().unwrap(), "--device", "cpu"])
            .args(["--listen", &address, "--secret-file", secret.to_str().unwrap()])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let remote = |data: &tempfile::TempDir, secret: &std::path::Path| {
        let args = [
            "--data-dir",
            data.path().to_str().unwrap(),
            "--inference-worker",
            &address,
            "--inference-secret-file",
            secret.to_str().unwrap(),
        ];
        Server::start(&args, &[])
    };

    let data = tempfile::tempdir().unwrap();
    let refused = remote(&data, &wrong);
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let ready: Value = reqwest::blocking::get(refused.url("/readyz")).unwrap().json().unwrap();
        if ready["model"]["state"].as_str().unwrap().contains("失败") {
            break ready["model"]["state"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "{ready}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(state.contains("secret"), "{state}");
    drop(refused);

    let data = tempfile::tempdir().unwrap();
    let served = remote(&data, &secret);
    wait_for_model(&served);
    assert_eq!(workers(&served)[0]["place"], address.as_str());
    let (study, _) = upload_image(&served, "synthetic/cxr.jpg", "P-WORKER-3", "2025-10-15");
    let answer = Events::new(post_chat(&served, study, short_question())).all();
    assert_eq!(answer.last().unwrap().name, "done", "{}", answer.last().unwrap().data);
}

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
