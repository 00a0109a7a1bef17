//! How many SQL statements the worklist and the study detail cost, counted from sqlx's own statement
//! events: a fixed number whatever the page size (it used to be one more per row: 502 for a page of 500).
//! One test in this binary: it installs the process-wide subscriber that counts.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use server::store::studies::{self, WorklistQuery};
use server::web::{AppState, app};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

/// Collects sqlx's per-statement events (target `sqlx::query`, one per statement executed), as their SQL.
/// A new pool connection's set-up (`PRAGMA …`) is left out: it is the pool's doing, not the query's.
struct CountStatements(Arc<Mutex<Vec<String>>>);

struct Statement(String);

impl tracing::field::Visit for Statement {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "db.statement" {
            self.0 = value.to_string();
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut statement = Statement(String::new());
        event.record(&mut statement);
        if !statement.0.trim_start().to_uppercase().starts_with("PRAGMA") {
            self.0.lock().unwrap().push(statement.0);
        }
    }
}

/// `count` studies of one patient, each with a DX and a CT series (two modalities to collect per row).
async fn studies_of_one_patient(state: &AppState, count: usize) {
    let now = "2026-12-01T00:00:00Z";
    let patient: i64 = sqlx::query_scalar(
        "INSERT INTO patients (patient_key, patient_id, name, created_at) VALUES ('P-Q', 'P-Q', 'Wang^Fang', $1) \
         RETURNING id",
    )
    .bind(now)
    .fetch_one(&state.db)
    .await
    .unwrap();
    for n in 0..count {
        let study: i64 = sqlx::query_scalar(
            "INSERT INTO studies (patient_id, study_uid, study_date, source, created_at) \
             VALUES ($1, $2, $3, 'dicom', $4) RETURNING id",
        )
        .bind(patient)
        .bind(format!("1.2.826.0.1.3680043.10.1.{n}"))
        .bind(format!("2026{:02}{:02}", 1 + n % 12, 1 + n % 28))
        .bind(now)
        .fetch_one(&state.db)
        .await
        .unwrap();
        for (k, modality) in ["DX", "CT"].iter().enumerate() {
            sqlx::query(
                "INSERT INTO series (study_id, series_uid, modality, series_number, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(study)
            .bind(format!("1.2.826.0.1.3680043.10.2.{n}.{k}"))
            .bind(modality)
            .bind(k as i64 + 1)
            .bind(now)
            .execute(&state.db)
            .await
            .unwrap();
        }
    }
}

/// A radiologist signed in through the router: the session cookie to send.
async fn signed_in_radiologist(state: &AppState) -> String {
    let role = server::domain::auth::Role::Radiologist;
    server::domain::auth::users::create(&state.db, "dr-wang", "王医生", role, "Reading-80-films").await.unwrap();
    let login = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"username": "dr-wang", "password": "Reading-80-films"}"#))
        .unwrap();
    let response = app(state.clone()).oneshot(login).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string());
    set_cookie.filter(|c| c.starts_with("mgx_session=")).map(|c| c.split(';').next().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_worklist_costs_the_same_few_statements_for_a_page_of_1_50_or_500() {
    let statements = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry()
        .with(CountStatements(Arc::clone(&statements)))
        .with(tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // The statements since the last call (printed when a count is off).
    let taken = |statements: &Mutex<Vec<String>>| std::mem::take(&mut *statements.lock().unwrap());
    let counted = |statements: &Mutex<Vec<String>>| taken(statements).len();

    let tmp = tempfile::tempdir().unwrap();
    let state = AppState::for_tests(tmp.path()).await.unwrap();
    studies_of_one_patient(&state, 500).await;
    // The store's own statements first, while nothing else runs; then whole requests (guard, session,
    // audit row and all) through the router.
    let mut store_counts = Vec::new();
    for limit in [1, 50, 500] {
        counted(&statements);
        let page = studies::worklist(&state.db, &WorklistQuery { search: None, limit, offset: 0 }).await.unwrap();
        let run = taken(&statements);
        assert_eq!(run.len(), 2, "a page and its modalities: {run:#?}");
        store_counts.push(run.len());
        assert_eq!(page.studies.len(), limit as usize);
        assert_eq!(page.total, 500);
        assert!(page.studies.iter().all(|s| s.modalities == ["CT", "DX"]), "modalities of every row");
    }
    let cookie = signed_in_radiologist(&state).await;
    let mut request_counts = Vec::new();
    for limit in [1, 50, 500] {
        counted(&statements);
        let request = Request::get(format!("/api/v1/studies?limit={limit}"))
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap();
        let response = app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["studies"].as_array().unwrap().len(), limit as usize);
        request_counts.push(counted(&statements));
    }
    println!(
        "worklist statements for a page of 1 / 50 / 500 studies: store {store_counts:?}, whole request {request_counts:?}"
    );
    assert!(request_counts.iter().all(|n| *n == request_counts[0]), "{request_counts:?}");

    // Past the end: still the total (one more statement counts it).
    let past = studies::worklist(&state.db, &WorklistQuery { search: None, limit: 50, offset: 1000 }).await.unwrap();
    assert_eq!((past.studies.len(), past.total), (0, 500));

    counted(&statements);
    let detail = studies::detail(&state.db, 1).await.unwrap().expect("the first study inserted");
    let detail_count = counted(&statements);
    println!("study detail statements: {detail_count}");
    assert_eq!(detail_count, 2, "the summary, then series with their instances");
    assert_eq!(detail.series.len(), 2);
    assert_eq!(detail.summary.modalities, ["CT", "DX"]);
}
