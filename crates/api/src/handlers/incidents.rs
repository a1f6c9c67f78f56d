//! `/incidents`: the seed's create plus list, read, update, delete.

use axum::extract::State;
use axum::http::StatusCode;
use opslens_domain::{Incident, IncidentFilter, IncidentPatch, NewIncident, Page};

use super::{ApiResult, AppState};
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};

/// Open an incident.
#[utoipa::path(post, path = "/incidents", tag = "incidents",
    request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Json(body): Json<NewIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    Ok((StatusCode::CREATED, Json(s.create_incident(body).await?)))
}

/// List incidents, newest first, filtered and paginated.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(IncidentFilter),
    responses((status = 200, body = Page<Incident>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Query(f): Query<IncidentFilter>,
) -> ApiResult<Json<Page<Incident>>> {
    Ok(Json(s.incidents(f).await?))
}

/// One incident.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody)))]
pub async fn get(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Incident>> {
    Ok(Json(s.incident(id).await?))
}

/// Change title, description, severity or status; changes go on the timeline.
#[utoipa::path(patch, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Json(patch): Json<IncidentPatch>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.update_incident(id, patch).await?))
}

/// Delete an incident with its evidence, timeline, hypotheses and actions.
#[utoipa::path(delete, path = "/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.delete_incident(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
