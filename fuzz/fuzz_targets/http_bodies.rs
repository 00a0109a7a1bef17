//! The HTTP surface's parsers on arbitrary bytes, through the real router in process (no socket): an
//! upload's multipart body (fields and files), a report's JSON (new and edited), a question's body and a
//! sign-in's body, each sent by a signed-in radiologist (the sign-in by nobody). Whatever the bytes, the
//! answer is the server's refusal or its success: a 500 (the server's own fault), a panic or a request
//! that does not finish within 10 s is a bug.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use server::domain::auth::{Role, users};
use server::web::{AppState, app};
use tower::ServiceExt;

/// The multipart boundary of every fuzzed upload: the bytes after the selector are the body.
const BOUNDARY: &str = "fuzzboundary";

struct World {
    runtime: tokio::runtime::Runtime,
    router: Router,
    cookie: String,
    csrf: String,
    /// A study with one image, for the report and chat routes.
    study: i64,
    _data: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let data = tempfile::tempdir().unwrap();
        let (router, cookie, csrf, study) = runtime.block_on(async {
            let state = AppState::for_tests(data.path()).await.unwrap();
            users::create(&state.db, "fuzz", "Fuzz", Role::Radiologist, "a long and sound passphrase").await.unwrap();
            let router = app(state);
            let login = Request::post("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"username":"fuzz","password":"a long and sound passphrase"}"#))
                .unwrap();
            let response = router.clone().oneshot(login).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            // Every cookie it sets (the session's and the device's), as a browser sends them back.
            let cookie = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|c| c.to_str().ok()?.split(';').next().map(str::to_string))
                .collect::<Vec<_>>()
                .join("; ");
            let body: serde_json::Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
            let csrf = body["csrf_token"].as_str().unwrap().to_string();
            let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fixtures/dicom/synthetic/cxr.jpg"))
                .unwrap_or_else(|_| panic!("run scripts/test.sh once first: it makes the fixtures"));
            let mut upload = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"patient_id\"\r\n\r\nP-FUZZ\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"cxr.jpg\"\r\n\r\n"
            )
            .into_bytes();
            upload.extend_from_slice(&png);
            upload.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            let request = signed(Method::POST, "/api/v1/uploads", &multipart_type(), &cookie, &csrf, upload);
            let response = router.clone().oneshot(request).await.unwrap();
            let body: serde_json::Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
            let study = body["files"][0]["study_id"].as_i64().unwrap_or_else(|| panic!("setup upload: {body}"));
            (router, cookie, csrf, study)
        });
        World { runtime, router, cookie, csrf, study, _data: data }
    })
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn signed(method: Method, uri: &str, content_type: &str, cookie: &str, csrf: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .body(Body::from(body))
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let world = world();
    let study = world.study;
    let (method, uri, content_type) = match selector % 5 {
        0 => (Method::POST, "/api/v1/uploads".to_string(), multipart_type()),
        1 => (Method::POST, format!("/api/v1/studies/{study}/reports"), "application/json".to_string()),
        2 => (Method::PUT, "/api/v1/reports/1".to_string(), "application/json".to_string()),
        3 => (Method::POST, format!("/api/v1/studies/{study}/chat"), "application/json".to_string()),
        _ => (Method::POST, "/api/v1/auth/login".to_string(), "application/json".to_string()),
    };
    let request = if selector % 5 == 4 {
        Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_vec()))
            .unwrap()
    } else {
        signed(method, &uri, &content_type, &world.cookie, &world.csrf, body.to_vec())
    };
    let status = world.runtime.block_on(async {
        let response = tokio::time::timeout(Duration::from_secs(10), world.router.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("{uri}: no answer within 10 s"))
            .unwrap();
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}: the server's own fault on these bytes");
});
