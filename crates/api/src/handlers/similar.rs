//! Memory across incidents: similar incidents, merging a duplicate, redacting a screenshot.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use opslens_core::{EvidenceService, IncidentService};
use opslens_domain::{
    Evidence, MergeOutcome, MergeRequest, RedactionRequest, RedactionSuggestion, SimilarIncidents,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};

/// Query of the similar route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// Most hits, 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

/// Past incidents like this one, best first, each with why (shared terms, a look-alike
/// screenshot, the same service), and the open incident it probably duplicates.
#[utoipa::path(get, path = "/incidents/{id}/similar", tag = "incidents",
    params(("id" = i64, Path), SimilarQuery),
    responses((status = 200, body = SimilarIncidents), (status = 404, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn similar(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Query(q): Query<SimilarQuery>,
) -> ApiResult<Json<SimilarIncidents>> {
    Ok(Json(s.similar(id, q.limit).await?))
}

/// Merge this incident into an open one: its evidence, timeline, hypotheses and actions move
/// there, this one is closed and names the target (`merged_into`); both timelines record it.
#[utoipa::path(post, path = "/incidents/{id}/merge", tag = "incidents",
    params(("id" = i64, Path)), request_body = MergeRequest,
    responses((status = 200, body = MergeOutcome), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn merge(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Json(body): Json<MergeRequest>,
) -> ApiResult<Json<MergeOutcome>> {
    Ok(Json(s.merge(id, body.into).await?))
}

/// Black out boxes (image pixels) on a screenshot: writes a new, redacted image (the original
/// is kept) that exports use from then on. Replaces an earlier redaction.
#[utoipa::path(post, path = "/evidence/{id}/redactions", tag = "evidence",
    params(("id" = i64, Path)), request_body = RedactionRequest,
    responses((status = 201, body = Evidence), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn redact(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
    Json(body): Json<RedactionRequest>,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    Ok((StatusCode::CREATED, Json(s.redact(id, body).await?)))
}

/// What on a screenshot looks sensitive (emails, IPs, tokens, customer ids), read from its
/// analysis. Text-only warnings (`region: null`): the analysis gives no coordinates.
#[utoipa::path(get, path = "/evidence/{id}/redaction-suggestions", tag = "evidence",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RedactionSuggestion>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn suggestions(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<RedactionSuggestion>>> {
    Ok(Json(s.redaction_suggestions(id).await?))
}
