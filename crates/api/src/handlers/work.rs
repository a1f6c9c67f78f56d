//! Timeline, hypotheses and actions of an incident.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use opslens_core::{IncidentService, WorkService};
use opslens_domain::{
    Action, ActionPatch, Hypothesis, HypothesisPatch, NewAction, NewHypothesis, NewTimelineEvent,
    TimelineEvent,
};

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path};

/// Timeline of an incident in time order.
#[utoipa::path(get, path = "/incidents/{id}/timeline", tag = "timeline", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<TimelineEvent>), (status = 404, body = ErrorBody)))]
pub async fn timeline(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<TimelineEvent>>> {
    Ok(Json(s.timeline(id).await?))
}

/// Add a note or observation to the timeline.
#[utoipa::path(post, path = "/incidents/{id}/timeline", tag = "timeline", params(("id" = i64, Path)),
    request_body = NewTimelineEvent,
    responses((status = 201, body = TimelineEvent), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`evidence_id` belongs to another incident"),
        (status = 422, body = ErrorBody)))]
pub async fn add_event(
    State(s): State<Arc<IncidentService>>,
    Path(id): Path<i64>,
    Json(body): Json<NewTimelineEvent>,
) -> ApiResult<(StatusCode, Json<TimelineEvent>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.add_timeline_event(id, body).await?),
    ))
}

/// Hypotheses of an incident.
#[utoipa::path(get, path = "/incidents/{id}/hypotheses", tag = "hypotheses", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Hypothesis>), (status = 404, body = ErrorBody)))]
pub async fn hypotheses(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<Hypothesis>>> {
    Ok(Json(s.hypotheses(id).await?))
}

/// Propose a hypothesis, optionally linking evidence of the same incident.
#[utoipa::path(post, path = "/incidents/{id}/hypotheses", tag = "hypotheses", params(("id" = i64, Path)),
    request_body = NewHypothesis,
    responses((status = 201, body = Hypothesis), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_hypothesis(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
    Json(body): Json<NewHypothesis>,
) -> ApiResult<(StatusCode, Json<Hypothesis>)> {
    Ok((StatusCode::CREATED, Json(s.add_hypothesis(id, body).await?)))
}

/// Support, refute, reword or relink a hypothesis.
#[utoipa::path(patch, path = "/hypotheses/{id}", tag = "hypotheses", params(("id" = i64, Path)),
    request_body = HypothesisPatch,
    responses((status = 200, body = Hypothesis), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_hypothesis(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
    Json(body): Json<HypothesisPatch>,
) -> ApiResult<Json<Hypothesis>> {
    Ok(Json(s.update_hypothesis(id, body).await?))
}

/// Action items of an incident.
#[utoipa::path(get, path = "/incidents/{id}/actions", tag = "actions", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Action>), (status = 404, body = ErrorBody)))]
pub async fn actions(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<Action>>> {
    Ok(Json(s.actions(id).await?))
}

/// Create an action item.
#[utoipa::path(post, path = "/incidents/{id}/actions", tag = "actions", params(("id" = i64, Path)),
    request_body = NewAction,
    responses((status = 201, body = Action), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_action(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
    Json(body): Json<NewAction>,
) -> ApiResult<(StatusCode, Json<Action>)> {
    Ok((StatusCode::CREATED, Json(s.add_action(id, body).await?)))
}

/// Change an action item (owner, status, due date, wording).
#[utoipa::path(patch, path = "/actions/{id}", tag = "actions", params(("id" = i64, Path)),
    request_body = ActionPatch,
    responses((status = 200, body = Action), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_action(
    State(s): State<Arc<WorkService>>,
    Path(id): Path<i64>,
    Json(body): Json<ActionPatch>,
) -> ApiResult<Json<Action>> {
    Ok(Json(s.update_action(id, body).await?))
}
