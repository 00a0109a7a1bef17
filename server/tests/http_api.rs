//! The router in process (no sockets): API error shape and readiness when the database is gone.

use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use server::config::DatabaseLocation;
use server::http::{AppState, app};
use server::model::ModelSetup;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn state(tmp: &tempfile::TempDir) -> AppState {
    let location = DatabaseLocation::SqliteFile(tmp.path().join("t.sqlite3"));
    let db = server::db::connect(&location).await.unwrap();
    AppState {
        leptos_options: leptos::prelude::LeptosOptions::builder().output_name("medgemma-x").build(),
        db: db.clone(),
        db_backend: server::db::backend_name(&location),
        model: ModelSetup::inspect(None),
        started: Instant::now(),
        shutdown: CancellationToken::new(),
        data_dir: server::data_dir::DataDir::create(&tmp.path().join("data")).unwrap(),
        images: std::sync::Arc::new(server::images::Images::new(
            server::objects::ObjectStore::new(tmp.path().join("data/objects")),
            imaging::Limits::default(),
            1 << 30,
            0,
            1 << 26,
        )),
        metrics: std::sync::Arc::default(),
        inference: None,
        chat: server::config::ChatSettings { max_new_tokens: 64, max_ct_slices: 85 },
        site_key: server::pseudonym::SiteKey::from_bytes([9; 32]),
        audit: std::sync::Arc::new(server::audit::AuditLog::new(db)),
        throttle: std::sync::Arc::default(),
        deliveries: Default::default(),
        delivery_wake: std::sync::Arc::default(),
        sessions: server::auth::guard::SessionSettings {
            idle: std::time::Duration::from_secs(1800),
            absolute: std::time::Duration::from_secs(12 * 3600),
            secure_cookies: false,
        },
    }
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let response = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn unknown_api_paths_answer_bilingual_json_and_only_to_callers_who_signed_in() {
    let tmp = tempfile::tempdir().unwrap();
    let state = state(&tmp).await;
    let (status, body) = get(&state, "/api/v1/studies/123/nothing").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nothing about the API is public: {body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    let (_, token) =
        server::auth::tokens::create(&state.db, "his", &[server::auth::Permission::ReportRead], "test", None)
            .await
            .unwrap();
    let request = Request::get("/api/v1/studies/123/nothing")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["message_zh"], "没有这个接口");
    assert_eq!(body["error"]["message_en"], "No such API endpoint");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone_but_liveness_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let state = state(&tmp).await;
    let (status, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    state.db.close().await;
    let (status, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"]["ok"], false);
    assert!(body["database"]["error"].as_str().unwrap().contains("database"), "{body}");

    let (status, body) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}
