//! Grafana panel renders and Datadog snapshots as screenshot evidence, against local fakes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::{png, TestApp};
use crate::fakes::{self, Log};

#[derive(Clone)]
struct Fake {
    log: Log,
    base: Arc<std::sync::Mutex<String>>,
    snapshot_polls: Arc<AtomicUsize>,
}

async fn render(State(f): State<Fake>, uri: Uri, h: HeaderMap) -> Response {
    f.log.push(&uri, &h, b"");
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer glsa_test") {
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    ([("content-type", "image/png")], png(100, 50)).into_response()
}

async fn snapshot(State(f): State<Fake>, uri: Uri, h: HeaderMap) -> Response {
    f.log.push(&uri, &h, b"");
    if h.get("dd-api-key").is_none() || h.get("dd-application-key").is_none() {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"errors": ["Forbidden"]})),
        )
            .into_response();
    }
    let base = f.base.lock().unwrap().clone();
    Json(
        json!({"graph_def": "{}", "metric_query": "avg:system.load.1{*}",
        "snapshot_url": format!("{base}/snapshot/view/abc.png")}),
    )
    .into_response()
}

async fn snapshot_png(State(f): State<Fake>, uri: Uri, h: HeaderMap) -> Response {
    f.log.push(&uri, &h, b"");
    // Not ready on the first poll, as Datadog warns.
    if f.snapshot_polls.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([("content-type", "image/png")], png(60, 40)).into_response()
}

#[tokio::test]
async fn grafana_panel_and_datadog_snapshot_become_screenshot_evidence() {
    let f = Fake {
        log: Log::default(),
        base: Arc::default(),
        snapshot_polls: Arc::default(),
    };
    let addr = fakes::serve(
        Router::new()
            .route("/render/d-solo/{uid}/{slug}", get(render))
            .route("/api/v1/graph/snapshot", get(snapshot))
            .route("/snapshot/view/abc.png", get(snapshot_png))
            .with_state(f.clone()),
    )
    .await;
    *f.base.lock().unwrap() = format!("http://{addr}");
    let app = TestApp::spawn_with_secrets(&format!(
        "GRAFANA_URL=http://{addr}\nGRAFANA_TOKEN=glsa_test\nDATADOG_API_KEY=dd-key\nDATADOG_APP_KEY=dd-app\nDATADOG_API_URL=http://{addr}\n"
    ))
    .await;
    let id = app.incident("Latency").await;
    let ev = app
        .create(
            &format!("/api/v1/incidents/{id}/snapshots/grafana"),
            &json!({"dashboard_uid": "abcdefghi", "slug": "my-dash", "panel_id": 22, "from": 1000, "to": 2000}),
        )
        .await;
    assert_eq!(ev["evidence_type"], "screenshot");
    assert_eq!(ev["source"], "grafana");
    assert_eq!(ev["image"]["width"], 100);
    let path = &f.log.all()[0].path;
    assert!(
        path.starts_with("/render/d-solo/abcdefghi/my-dash?orgId=1&panelId=22&from=1000&to=2000&width=1000&height=500&tz=UTC"),
        "{path}"
    );

    let ev = app
        .create(
            &format!("/api/v1/incidents/{id}/snapshots/datadog"),
            &json!({"metric_query": "avg:system.load.1{*}", "start": 1700000000, "end": 1700003600}),
        )
        .await;
    assert_eq!(ev["source"], "datadog");
    assert_eq!(ev["image"]["height"], 40);
    assert_eq!(f.snapshot_polls.load(Ordering::SeqCst), 2);

    // Unconfigured: 409 naming the keys.
    let bare = TestApp::spawn().await;
    let id = bare.incident("x").await;
    let res = bare
        .post(
            &format!("/api/v1/incidents/{id}/snapshots/grafana"),
            &json!({"dashboard_uid": "a", "panel_id": 1, "from": 0, "to": 1}),
        )
        .await;
    assert_eq!(res.status(), 409);
}
