//! Health, search, model status and integration checks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use opslens_core::search::{parse_query, SearchRequest};
use opslens_core::status::VlmStatus;
use opslens_core::storage;
use opslens_core::{AnalysisService, IncidentService};
use opslens_domain::{IncidentStatus, ParseEnumError, SearchKind, SearchResults, Severity};
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
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find, all of which must match: `"quoted phrases"` match words next to each
    /// other, `prefix*` the words that begin so. Tokens such as `v2.41.0`, `checkout-api`,
    /// `10.0.3.7` or `db-1.prod.internal` are single words. At most 1000 characters and 32 words.
    #[param(
        min_length = 1,
        max_length = 1000,
        pattern = r"[^\x09-\x0D\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub q: String,
    /// Only these kinds of entry, comma separated: `incident`, `evidence`, `finding`,
    /// `hypothesis`, `action`, `note`, `status_update`, `postmortem` (all when omitted).
    pub kind: Option<String>,
    /// Only incidents with this status.
    pub status: Option<IncidentStatus>,
    /// Only incidents with this severity.
    pub severity: Option<Severity>,
    /// Only incidents opened at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only incidents opened before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Most hits to return, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Reads `kind=a,b` into kinds; an unknown one is named with the accepted ones.
fn kinds(list: Option<&str>) -> Result<Vec<SearchKind>, ApiError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // Empty items (`kind=`, `kind=note,`) add nothing: an empty list means every kind.
    for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let k: SearchKind = k
            .parse()
            .map_err(|e: ParseEnumError| invalid_query(e.to_string()))?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

fn invalid_query(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m)
}

/// Full-text search over everything written on incidents: titles and descriptions, evidence,
/// screenshot findings, hypotheses, actions, notes, status updates and postmortems. Hits come
/// best first (BM25 over the newest matching entries; `complete` is false when older matches
/// were left out) and grouped by incident, each with its kind and a snippet with the matches
/// in `[` `]`.
#[utoipa::path(get, path = "/search", tag = "system", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn search(
    State(s): State<Arc<IncidentService>>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    if q.q.trim().is_empty() {
        return Err(invalid_query(
            "query parameter `q` is required, e.g. /api/v1/search?q=timeout",
        ));
    }
    parse_query(&q.q).map_err(|e| invalid_query(format!("q: {e}")))?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(invalid_query(format!(
                "the time range is empty: `from` ({}) must be before `to` ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
    }
    if let Some(l) = q.limit {
        if !(1..=200).contains(&l) {
            return Err(invalid_query(format!("limit must be 1 to 200, got {l}")));
        }
    }
    let req = SearchRequest {
        kinds: kinds(q.kind.as_deref())?,
        q: q.q,
        status: q.status,
        severity: q.severity,
        from: q.from,
        to: q.to,
        limit: q.limit.unwrap_or(50),
    };
    Ok(Json(s.search(req).await?))
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
