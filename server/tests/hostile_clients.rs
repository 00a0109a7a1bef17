//! Attacks from the ward network against the running release server, each with what must hold: slow and
//! greedy connections, archives and images that would take the server's memory, absurd pixel spacings,
//! and a disk that is nearly full. (Sign-in floods, ownership, report amplification and the rest are in
//! the suites of their own routes; one account filling the chat queue is in chat_api.rs.)

mod common;

use std::io::{Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Server, dicom_fixture, upload_fixture};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

fn start(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().unwrap();
    let mut args = vec!["--data-dir", data.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = Server::start(&args, &[]);
    (data, server)
}

/// A raw connection from 127.0.0.1, the attacker's address in these tests (the whole 127/8 block is
/// loopback, so the honest client comes from 127.0.0.2).
fn connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// Reads until the server closes the connection (or the read times out): what it sent.
fn read_to_close(mut stream: TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let closed = match stream.read_to_end(&mut got) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(_) => false,
    };
    (String::from_utf8_lossy(&got).to_string(), closed)
}

/// `/healthz` from another loopback address than the attacker's, with its latency.
fn healthz_from(local: &str, server: &Server) -> (u16, Duration) {
    let client = reqwest::blocking::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let status = client.get(server.url("/healthz")).send().unwrap().status().as_u16();
    (status, started.elapsed())
}

#[test]
fn slow_clients_are_cut_off_and_one_address_cannot_take_every_connection() {
    let (_data, server) =
        start(&["--header-timeout-secs", "1", "--body-timeout-secs", "1", "--max-connections-per-client", "20"]);
    // Twenty half-sent request heads from one address: the address's every place.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The 21st from that address is turned away at once, with a reason.
    let mut extra = connect(server.addr);
    extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok();
    let (answer, closed) = read_to_close(extra);
    assert!(closed, "the connection over the cap was not closed");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "{answer}");
    // Another address is served meanwhile, promptly.
    let (status, took) = healthz_from("127.0.0.2", &server);
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "healthz took {took:?}");

    // The half-sent heads are closed after the header deadline (1 s), with a 408 or nothing.
    let started = Instant::now();
    for stream in slow.drain(..) {
        let (answer, closed) = read_to_close(stream);
        assert!(closed, "a half-sent request head was kept open");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} to close them", started.elapsed());

    // An idle keep-alive connection goes the same way once its request is answered.
    let mut idle = connect(server.addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let idle_since = Instant::now();
    let (answer, closed) = read_to_close(idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed && idle_since.elapsed() < Duration::from_secs(5), "idle for {:?}", idle_since.elapsed());

    // A body that stops coming: the request ends after the body deadline instead of holding its place.
    let mut stalled = connect(server.addr);
    stalled
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
        .unwrap();
    let stalled_since = Instant::now();
    let (answer, closed) = read_to_close(stalled);
    assert!(closed, "a stalled body kept its connection");
    assert!(stalled_since.elapsed() < Duration::from_secs(5), "held {:?}", stalled_since.elapsed());
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");

    // The address has its places back.
    let (status, _) = healthz_from("127.0.0.1", &server);
    assert_eq!(status, 200);
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn upload(server: &Server, name: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> (u16, Value) {
    let mut form = multipart::Form::new();
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    form = form.part("files", multipart::Part::bytes(bytes).file_name(name.to_string()));
    let response = server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// A uniform grey PNG: a few KB on the wire, `side`² × 8 bytes to decode.
fn big_png(side: u32) -> Vec<u8> {
    let image = image::GrayImage::from_pixel(side, side, image::Luma([90]));
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

#[test]
fn archives_and_images_are_held_to_the_inflate_and_decoding_budgets() {
    let (_data, server) = start(&["--max-upload-inflated-mb", "1", "--decode-memory-mb", "16"]);
    let jpeg = std::fs::read(dicom_fixture("synthetic/cxr.jpg")).unwrap();
    let noise = |seed: u64| -> Vec<u8> {
        (0..600_000u64).map(|i| ((i.wrapping_mul(6364136223846793005).wrapping_add(seed)) >> 56) as u8).collect()
    };
    assert!(jpeg.len() < 400_000, "the fixture film is small: {} bytes", jpeg.len());
    // The film, then 0.6 MB of noise, then another 0.6 MB: the request's 1 MiB of extracted bytes runs
    // out at the third entry, which is refused without being extracted.
    let archive = zip_of(&[("a/cxr.jpg", jpeg), ("a/noise1.bin", noise(1)), ("a/noise2.bin", noise(2))]);
    let (status, body) = upload(&server, "exam.zip", archive, &[("patient_id", "P-ZIP")]);
    assert_eq!(status, 207, "{body:#}");
    let files = body["files"].as_array().unwrap();
    let codes: Vec<&str> = files.iter().map(|f| f["code"].as_str().unwrap_or(f["status"].as_str().unwrap())).collect();
    assert_eq!(codes, ["stored", "unknown_format", "too_large"], "{body:#}");
    assert!(files[2]["message_en"].as_str().unwrap().contains("all entries"), "{body:#}");

    // A 2000 × 2000 PNG needs 32 MB to decode: over the 16 MB budget, refused before it is decoded.
    let (status, body) = upload(&server, "big.png", big_png(2000), &[("patient_id", "P-BIG")]);
    assert_eq!(status, 413, "{body:#}");
    assert!(body["files"][0]["message_en"].as_str().unwrap().contains("decoding memory"), "{body:#}");
    // One that fits lands.
    let (status, body) = upload(&server, "small.png", big_png(1000), &[("patient_id", "P-SMALL")]);
    assert_eq!(status, 200, "{body:#}");
    let list: Value = server.get("/api/v1/studies").json().unwrap();
    assert_eq!(list["total"], 2, "the film from the zip and the small PNG: {list:#}");
}

#[test]
fn an_uploaders_pixel_spacing_must_be_physical() {
    let (_data, server) = start(&[]);
    let png = big_png(64);
    for spacing in ["0.00001", "0", "-1", "50", "NaN"] {
        let (status, body) = upload(&server, "film.png", png.clone(), &[("pixel_spacing_mm", spacing)]);
        assert_eq!(status, 400, "{spacing}: {body:#}");
        assert!(body["error"]["message_en"].as_str().unwrap().contains("0.02 to 5"), "{body:#}");
    }
    let (status, body) = upload(&server, "film.png", png, &[("pixel_spacing_mm", "0.02")]);
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(server.get("/api/v1/studies").json::<Value>().unwrap()["total"], 1);
}

#[test]
fn a_nearly_full_disk_refuses_new_data_with_507_and_reading_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = Server::start(&["--data-dir", dir], &[]);
    let (study, instance) = upload_fixture(&server, "synthetic/ct_phantom.dcm");
    server.terminate();

    // More free space required than any test machine has: the disk is "nearly full".
    let server = Server::start(&["--data-dir", dir, "--min-free-disk-mb", "1000000000"], &[]);
    let measurement = json!({"instance_id": instance, "frame": 1, "kind": "length", "points": [[1, 1], [5, 5]]});
    let attempts = [
        server.client().post(server.url(&format!("/api/v1/studies/{study}/measurements"))).json(&measurement),
        server.client().post(server.url(&format!("/api/v1/studies/{study}/reports"))).json(&json!({"report": {}})),
        server.client().post(server.url(&format!("/api/v1/studies/{study}/chat"))).json(&json!({"message": "描述"})),
    ];
    for attempt in attempts {
        let response = attempt.send().unwrap();
        assert_eq!(response.status(), 507);
        let body: Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], "disk_full", "{body:#}");
        assert!(body["error"]["message_zh"].as_str().unwrap().contains("磁盘空间不足"), "{body:#}");
    }
    // Reading goes on, and so does signing in.
    assert_eq!(server.get(&format!("/api/v1/studies/{study}")).status(), 200);
    assert_eq!(server.get(&format!("/api/v1/instances/{instance}/frames/1/image.png")).status(), 200);
    assert_eq!(
        common::sign_in(&server.url(""), common::DOCTOR, common::DOCTOR_PASSWORD)
            .get(server.url("/api/v1/auth/me"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let measurements: Value = server.get(&format!("/api/v1/studies/{study}/measurements")).json().unwrap();
    assert_eq!(measurements["measurements"].as_array().unwrap().len(), 0, "nothing was stored");
    // One maintenance line for the episode, not one per refused request.
    let log = std::fs::read_to_string(data.path().join("logs/maintenance.log")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"low_disk\"")).count(), 1, "{log}");
}
