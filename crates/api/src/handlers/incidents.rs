//! `/incidents`: the seed's create plus list, read, update, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opslens_core::export::IncidentExport;
use opslens_core::IncidentService;
use opslens_domain::{Incident, IncidentFilter, IncidentPatch, NewIncident, Page};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

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

/// One incident, with `possible_duplicate_of` when it looks like a duplicate of an open one.
/// A merged incident answers with `merged_into` naming where everything went.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.get_with_hint(id).await?))
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
    /// `json` (default) or `markdown` (`md` for short).
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// What the export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `application/json`: the export object.
    Json,
    /// `text/markdown`: the incident as a readable report.
    Markdown,
    /// Same as `markdown`.
    Md,
}

/// Export an incident with its timeline, evidence, hypotheses and actions (JSON or Markdown).
#[utoipa::path(get, path = "/incidents/{id}/export", tag = "incidents", params(("id" = i64, Path), ExportQuery),
    responses((status = 200, description = "The export, as JSON or as Markdown (`format`)",
            content((IncidentExport = "application/json"), (String = "text/markdown"))),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn export(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or(ExportFormat::Json);
    let export = s.export(id).await?;
    if format == ExportFormat::Json {
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
