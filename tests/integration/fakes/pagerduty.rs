//! Fake PagerDuty REST v2: `Token token=` auth, offset pagination (`more`), a 429 with
//! `ratelimit-reset` on the first incidents call, a 503 once on alerts, malformed mode.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Log;

pub const TOKEN: &str = "pd-test-token";

pub struct PdState {
    pub log: Log,
    pub rate_limit_once: AtomicBool,
    pub alerts_503_once: AtomicBool,
    pub malformed: AtomicBool,
    pub statuses: Mutex<Vec<String>>,
    pub alert_at: String,
    pub incident_calls: AtomicUsize,
}

pub fn state(alert_at: &str) -> Arc<PdState> {
    Arc::new(PdState {
        log: Log::default(),
        rate_limit_once: AtomicBool::new(true),
        alerts_503_once: AtomicBool::new(true),
        malformed: AtomicBool::new(false),
        statuses: Mutex::new(vec![
            "triggered".into(),
            "acknowledged".into(),
            "resolved".into(),
        ]),
        alert_at: alert_at.to_string(),
        incident_calls: AtomicUsize::new(0),
    })
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Token token={TOKEN}"))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"message": "Unauthorized", "code": 2006}})),
    )
        .into_response()
}

async fn abilities(State(s): State<Arc<PdState>>, uri: Uri, h: HeaderMap) -> Response {
    s.log.push(&uri, &h, b"");
    if !authorized(&h) {
        return unauthorized();
    }
    Json(json!({"abilities": ["teams"]})).into_response()
}

fn incident(i: usize, status: &str) -> Value {
    let ids = ["PT4KHLK", "PX00002", "PX00003"];
    json!({
        "id": ids[i], "type": "incident", "incident_number": 1234 + i,
        "title": format!("The server is on fire {i}"), "status": status, "urgency": "high",
        "created_at": "2026-11-20T13:00:00Z",
        "html_url": format!("https://subdomain.pagerduty.com/incidents/{}", ids[i]),
        "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service"},
        "priority": if i == 0 { json!({"id": "P1X", "summary": "P1"}) } else { Value::Null },
    })
}

async fn incidents(
    State(s): State<Arc<PdState>>,
    uri: Uri,
    h: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    s.log.push(&uri, &h, b"");
    s.incident_calls.fetch_add(1, Ordering::SeqCst);
    if !authorized(&h) {
        return unauthorized();
    }
    if s.rate_limit_once.swap(false, Ordering::SeqCst) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("ratelimit-limit", "960"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "1"),
            ],
            Json(json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})),
        )
            .into_response();
    }
    if s.malformed.load(Ordering::SeqCst) {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"incidents\": [",
        )
            .into_response();
    }
    let offset: usize = q
        .iter()
        .find(|(k, _)| k == "offset")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    // Pages of two whatever `limit` says, to exercise pagination.
    let st = s.statuses.lock().unwrap().clone();
    let all: Vec<Value> = st.iter().enumerate().map(|(i, s)| incident(i, s)).collect();
    let page: Vec<Value> = all.iter().skip(offset).take(2).cloned().collect();
    let more = offset + page.len() < all.len();
    Json(json!({"incidents": page, "limit": 2, "offset": offset, "more": more, "total": null}))
        .into_response()
}

async fn log_entries(
    State(s): State<Arc<PdState>>,
    uri: Uri,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    s.log.push(&uri, &h, b"");
    Json(json!({"log_entries": [
        {"id": format!("R1{id}"), "type": "trigger_log_entry", "summary": "Triggered through the API",
         "created_at": s.alert_at},
        {"id": format!("R2{id}"), "type": "acknowledge_log_entry", "summary": "Acknowledged by Alice",
         "created_at": "2026-11-20T13:05:00Z"},
    ], "limit": 100, "offset": 0, "more": false})).into_response()
}

async fn alerts(
    State(s): State<Arc<PdState>>,
    uri: Uri,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    s.log.push(&uri, &h, b"");
    if s.alerts_503_once.swap(false, Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream busy").into_response();
    }
    Json(json!({"alerts": [
        {"id": format!("A{id}"), "summary": "p99 latency > 2s", "status": "triggered", "severity": "critical",
         "created_at": s.alert_at, "body": {"type": "alert_body", "details": {"p99": 2.4}}},
    ], "limit": 100, "offset": 0, "more": false})).into_response()
}

pub fn router(s: Arc<PdState>) -> Router {
    Router::new()
        .route("/abilities", get(abilities))
        .route("/incidents", get(incidents))
        .route("/incidents/{id}/log_entries", get(log_entries))
        .route("/incidents/{id}/alerts", get(alerts))
        .with_state(s)
}
