//! Health, search, model status and integration checks.

use std::sync::Arc;

use axum::extract::State;
use opslens_core::status::VlmStatus;
use opslens_core::{AnalysisService, IncidentService};
use opslens_domain::SearchHit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, ServerInfo};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Query};

/// Answer of the health route.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
    /// OpsLens version.
    pub version: String,
}

/// Liveness, without the token (for launchers and the CLI's "is it up?").
#[utoipa::path(get, path = "/health", tag = "system", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Query of `GET /search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find (all must match; prefixes match); not blank.
    #[param(
        min_length = 1,
        pattern = r"[^\x09-\x0D\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub q: String,
    /// Most hits to return, 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// Answer of `GET /search`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// The query as received.
    pub query: String,
    /// Best first.
    pub hits: Vec<SearchHit>,
}

/// Full-text search over incidents and evidence.
#[utoipa::path(get, path = "/search", tag = "system", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody)))]
pub async fn search(
    State(s): State<Arc<IncidentService>>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let query = q.q;
    if query.trim().is_empty() {
        return Err(ApiError::bad_request(
            "query parameter `q` is required, e.g. /api/v1/search?q=timeout",
        ));
    }
    let hits = s.search(query.clone(), q.limit.unwrap_or(50)).await?;
    Ok(Json(SearchResults { query, hits }))
}

/// Model, device, queue and last timings of the screenshot analysis.
#[utoipa::path(get, path = "/test/vlm/status", tag = "system", responses((status = 200, body = VlmStatus)))]
pub async fn vlm_status(State(s): State<Arc<AnalysisService>>) -> ApiResult<Json<VlmStatus>> {
    Ok(Json(s.vlm_status().await?))
}

/// Answer of `GET /info`: what the settings screen shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// OpsLens version.
    pub version: String,
    /// Where the database, images and token live.
    pub data_dir: String,
    /// Port of this server (loopback only).
    pub port: u16,
    /// Global capture shortcut of the desktop app.
    pub hotkey: String,
    /// Global shortcut of the desktop app that opens the region selection overlay.
    pub region_hotkey: String,
    /// Whether this server runs inside the desktop app (capture and hotkey live there).
    pub desktop: bool,
}

/// Version, data dir, port and capture hotkeys, for the UI's settings screen.
#[utoipa::path(get, path = "/info", tag = "system", responses((status = 200, body = Info)))]
pub async fn info(State(srv): State<Arc<ServerInfo>>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: srv.data_dir.clone(),
        port: srv.port,
        hotkey: srv.hotkey.clone(),
        region_hotkey: srv.region_hotkey.clone(),
        desktop: srv.desktop,
    })
}
