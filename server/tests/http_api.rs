//! The router in process (no sockets): API error shape and readiness when the database is gone.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use server::web::{AppState, app};
use tower::ServiceExt;

async fn state(tmp: &tempfile::TempDir) -> AppState {
    AppState::for_tests(tmp.path()).await.unwrap()
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

    let (_, token) = server::domain::auth::tokens::create(
        &state.db,
        "his",
        &[server::domain::auth::Permission::ReportRead],
        "test",
        None,
    )
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
