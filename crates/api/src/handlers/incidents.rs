//! `/incidents`: the seed's create plus list, read, update, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opslens_core::export::IncidentExport;
use opslens_core::IncidentService;
use opslens_domain::{Incident, IncidentFilter, IncidentPatch, NewIncident, Page};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};

/// Open an incident.
#[utoipa::path(post, path = "/incidents", tag = "incidents",
    request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(s): State<Arc<IncidentService>>,
    Json(body): Json<NewIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    Ok((StatusCode::CREATED, Json(s.create(body).await?)))
}

/// List incidents, newest first, filtered and paginated.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(IncidentFilter),
    responses((status = 200, body = Page<Incident>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<Arc<IncidentService>>,
    Query(f): Query<IncidentFilter>,
) -> ApiResult<Json<Page<Incident>>> {
    Ok(Json(s.list(f).await?))
}

/// One incident.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.get(id).await?))
}

/// Change title, description, severity or status; changes go on the timeline.
#[utoipa::path(patch, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Json(patch): Json<IncidentPatch>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.update(id, patch).await?))
}

/// Delete an incident with its evidence, timeline, hypotheses and actions.
#[utoipa::path(delete, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    s.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the export route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `markdown`.
    pub format: Option<String>,
}

/// Export an incident with its timeline, evidence, hypotheses and actions (JSON or Markdown).
#[utoipa::path(get, path = "/incidents/{id}/export", tag = "incidents", params(("id" = i64, Path), ExportQuery),
    responses((status = 200, body = IncidentExport), (status = 200, content_type = "text/markdown", body = String),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn export(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "markdown" | "md") {
        return Err(crate::error::ApiError::bad_request(format!(
            "format must be `json` or `markdown`, got {format:?}"
        )));
    }
    let export = s.export(id).await?;
    if format == "json" {
        return Ok(Json(export).into_response());
    }
    let disposition = format!("inline; filename=\"incident-{id}.md\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        export.to_markdown(),
    )
        .into_response())
}
