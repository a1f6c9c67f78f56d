//! Fake GitHub REST: bearer auth, `link: rel="next"` pagination, a primary rate limit
//! (403 + `x-ratelimit-remaining: 0` + `x-ratelimit-reset` epoch) on the first pulls call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::Log;

pub const TOKEN: &str = "gh-test-token";

pub struct GhState {
    pub log: Log,
    pub base: Mutex<String>,
    pub limit_once: AtomicBool,
    /// RFC 3339 times used in the payloads.
    pub merged_at: String,
    pub deployed_at: String,
}

pub fn state(merged_at: &str, deployed_at: &str) -> Arc<GhState> {
    Arc::new(GhState {
        log: Log::default(),
        base: Mutex::new(String::new()),
        limit_once: AtomicBool::new(true),
        merged_at: merged_at.into(),
        deployed_at: deployed_at.into(),
    })
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
        && h.get("user-agent").is_some()
}

async fn rate_limit(State(s): State<Arc<GhState>>, uri: Uri, h: HeaderMap) -> Response {
    s.log.push(&uri, &h, b"");
    if !authorized(&h) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    Json(json!({"resources": {"core": {"limit": 5000, "remaining": 4999}}})).into_response()
}

async fn pulls(
    State(s): State<Arc<GhState>>,
    uri: Uri,
    h: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    s.log.push(&uri, &h, b"");
    if !authorized(&h) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    if s.limit_once.swap(false, Ordering::SeqCst) {
        let reset = (chrono::Utc::now().timestamp() + 1).to_string();
        return (
            StatusCode::FORBIDDEN,
            [
                ("x-ratelimit-limit", "5000".to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", reset),
                ("x-ratelimit-resource", "core".to_string()),
            ],
            Json(json!({"message": "API rate limit exceeded"})),
        )
            .into_response();
    }
    let page = q
        .iter()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.as_str())
        .unwrap_or("1");
    let base = s.base.lock().unwrap().clone();
    if page == "1" {
        let body = json!([
            {"number": 3, "title": "Raise DB pool timeout", "html_url": "https://github.com/o/r/pull/3",
             "user": {"login": "alice"}, "updated_at": s.merged_at, "merged_at": s.merged_at,
             "merge_commit_sha": "c4295bd74fb0f4fbd0a4c5d7c5bd1d9b2a1f0e9a", "base": {"ref": "main"}},
            {"number": 4, "title": "Closed without merge", "user": {"login": "bob"},
             "updated_at": s.merged_at, "merged_at": null, "base": {"ref": "main"}},
        ]);
        let link = format!(
            "<{base}/repos/o/r/pulls?state=closed&page=2>; rel=\"next\", <{base}/repos/o/r/pulls?state=closed&page=2>; rel=\"last\""
        );
        return ([("link", link)], Json(body)).into_response();
    }
    Json(json!([
        {"number": 1, "title": "Ancient change", "user": {"login": "carol"},
         "updated_at": "2020-01-01T00:00:00Z", "merged_at": "2020-01-01T00:00:00Z", "base": {"ref": "main"}},
    ]))
    .into_response()
}

async fn deployments(State(s): State<Arc<GhState>>, uri: Uri, h: HeaderMap) -> Response {
    s.log.push(&uri, &h, b"");
    Json(json!([
        {"id": 7, "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "ref": "main", "task": "deploy",
         "environment": "production", "created_at": s.deployed_at, "creator": {"login": "deploy-bot"}},
    ]))
    .into_response()
}

async fn statuses(State(s): State<Arc<GhState>>, uri: Uri, h: HeaderMap) -> Response {
    s.log.push(&uri, &h, b"");
    Json(json!([
        {"state": "success", "created_at": s.deployed_at, "description": "Deployed"},
        {"state": "in_progress", "created_at": s.deployed_at},
    ]))
    .into_response()
}

pub fn router(s: Arc<GhState>) -> Router {
    Router::new()
        .route("/rate_limit", get(rate_limit))
        .route("/repos/o/r/pulls", get(pulls))
        .route("/repos/o/r/deployments", get(deployments))
        .route("/repos/o/r/deployments/7/statuses", get(statuses))
        .with_state(s)
}
