//! Health, search, model status and integration checks.

use std::sync::Arc;

use axum::extract::State;
use opslens_core::status::VlmStatus;
use opslens_core::storage;
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
    /// Space left for new evidence, with a warning before the disk fills.
    pub storage: Storage,
}

/// The disk holding the data dir, as `/info` reports it so the UI can warn before writes start
/// failing with 507.
#[derive(Debug, Serialize, ToSchema)]
pub struct Storage {
    /// Bytes still writable there; null where the platform does not say.
    pub free_bytes: Option<u64>,
    /// Size of that file system in bytes; null where the platform does not say.
    pub total_bytes: Option<u64>,
    /// Free bytes under which `low` turns true (`OPSLENS_LOW_DISK_MB`).
    pub warn_below_bytes: u64,
    /// Whether free space is under the threshold.
    pub low: bool,
    /// What to tell the user while `low`: the dir, the free space, what happens when it fills.
    pub warning: Option<String>,
}

impl Storage {
    /// Reads the file system now (a `statvfs`, cheap enough for every poll).
    fn of(data_dir: &str, warn_below_bytes: u64) -> Self {
        let dir = std::path::Path::new(data_dir);
        let free_bytes = storage::free_bytes(dir);
        let warning = storage::low_disk_warning(dir, free_bytes, warn_below_bytes);
        Storage {
            free_bytes,
            total_bytes: storage::total_bytes(dir),
            warn_below_bytes,
            low: warning.is_some(),
            warning,
        }
    }
}

/// Version, data dir, port, capture hotkeys and free disk space, for the UI's settings screen
/// and its low-disk banner.
#[utoipa::path(get, path = "/info", tag = "system", responses((status = 200, body = Info)))]
pub async fn info(State(srv): State<Arc<ServerInfo>>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: srv.data_dir.clone(),
        port: srv.port,
        hotkey: srv.hotkey.clone(),
        region_hotkey: srv.region_hotkey.clone(),
        desktop: srv.desktop,
        storage: Storage::of(&srv.data_dir, srv.low_disk_bytes),
    })
}
