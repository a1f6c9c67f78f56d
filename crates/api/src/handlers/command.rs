//! Incident command: event times of evidence, people and the roles they hold on incidents.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use opslens_core::access::Identity;
use opslens_core::{CommandService, EvidenceService};
use opslens_domain::{
    Evidence, EvidencePatch, IncidentRoles, NewPerson, NewStatusUpdate, Person, Role,
    RoleAssignment, StatusUpdate,
};

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path};

/// Relabel evidence or set when it happened (`occurred_at`: ISO-8601, `07:13`, `07:13:42Z`;
/// zone-less times are UTC and the answer's `assumed_zone` says so). A time set here is a
/// person's and is never replaced by one read from the content.
#[utoipa::path(patch, path = "/evidence/{id}", tag = "evidence", params(("id" = i64, Path)),
    request_body = EvidencePatch,
    responses((status = 200, body = Evidence), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_evidence(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
    Json(body): Json<EvidencePatch>,
) -> ApiResult<Json<Evidence>> {
    Ok(Json(s.update_evidence(id, body).await?))
}

/// Everyone roles can be given to, the local user first.
#[utoipa::path(get, path = "/people", tag = "people",
    responses((status = 200, body = Vec<Person>)))]
pub async fn people(State(s): State<Arc<CommandService>>) -> ApiResult<Json<Vec<Person>>> {
    Ok(Json(s.people().await?))
}

/// Add a person (name, optional unique handle and email).
#[utoipa::path(post, path = "/people", tag = "people", request_body = NewPerson,
    responses((status = 201, body = Person), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_person(
    State(s): State<Arc<CommandService>>,
    Json(body): Json<NewPerson>,
) -> ApiResult<(StatusCode, Json<Person>)> {
    Ok((StatusCode::CREATED, Json(s.add_person(body).await?)))
}

/// Who the token belongs to: its person for a person's own token, else the local user (the
/// author of everything written through this install's token).
#[utoipa::path(get, path = "/me", tag = "people",
    responses((status = 200, body = Person), (status = 404, body = ErrorBody)))]
pub async fn me(
    State(s): State<Arc<CommandService>>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Person>> {
    match who.user {
        Some(u) => Ok(Json(s.person(u.person.id).await?)),
        None => Ok(Json(s.me().await?)),
    }
}

/// Name the token's person (`opslens config set name …`, Settings); later entries carry it.
#[utoipa::path(put, path = "/me", tag = "people", request_body = NewPerson,
    responses((status = 200, body = Person), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_me(
    State(s): State<Arc<CommandService>>,
    Extension(who): Extension<Identity>,
    Json(body): Json<NewPerson>,
) -> ApiResult<Json<Person>> {
    match who.user {
        Some(u) => Ok(Json(s.set_person(u.person.id, body).await?)),
        None => Ok(Json(s.set_me(body).await?)),
    }
}

/// Who holds which role on an incident.
#[utoipa::path(get, path = "/incidents/{id}/roles", tag = "people", params(("id" = i64, Path)),
    responses((status = 200, body = IncidentRoles), (status = 404, body = ErrorBody)))]
pub async fn roles(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<IncidentRoles>> {
    Ok(Json(s.roles(id).await?))
}

/// Give a role (`commander`, `communications`, `scribe` change hands; `participant` adds) to
/// a person by id, handle or name; the timeline records it. An unknown role is 422, a person nobody is called 404.
#[utoipa::path(put, path = "/incidents/{id}/roles/{role}", tag = "people",
    params(("id" = i64, Path), ("role" = Role, Path)), request_body = RoleAssignment,
    responses((status = 200, body = IncidentRoles), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_role(
    State(s): State<Arc<CommandService>>,
    Path((id, role)): Path<(i64, String)>,
    Json(body): Json<RoleAssignment>,
) -> ApiResult<Json<IncidentRoles>> {
    Ok(Json(s.assign_role(id, &role, body).await?))
}

/// Take a role from a person; the timeline records it.
#[utoipa::path(delete, path = "/incidents/{id}/roles/{role}/{person_id}", tag = "people",
    params(("id" = i64, Path), ("role" = Role, Path), ("person_id" = i64, Path)),
    responses((status = 200, body = IncidentRoles), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn unassign_role(
    State(s): State<Arc<CommandService>>,
    Path((id, role, person_id)): Path<(i64, String, i64)>,
) -> ApiResult<Json<IncidentRoles>> {
    Ok(Json(s.unassign_role(id, &role, person_id).await?))
}

/// Status updates of an incident, oldest first.
#[utoipa::path(get, path = "/incidents/{id}/updates", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<StatusUpdate>), (status = 404, body = ErrorBody)))]
pub async fn status_updates(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<StatusUpdate>>> {
    Ok(Json(s.status_updates(id).await?))
}

/// Post a status update (text, impact, optional new status, next update due): a timeline
/// entry, the incident's next-due time, and an `incident.status_update` message to Slack,
/// Teams and the custom webhooks through the outbox.
#[utoipa::path(post, path = "/incidents/{id}/updates", tag = "incidents", params(("id" = i64, Path)),
    request_body = NewStatusUpdate,
    responses((status = 201, body = StatusUpdate), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_status_update(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
    Json(body): Json<NewStatusUpdate>,
) -> ApiResult<(StatusCode, Json<StatusUpdate>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.post_status_update(id, body).await?),
    ))
}
