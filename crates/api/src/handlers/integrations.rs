//! `/integrations`: status, syncs and the outbox of outgoing posts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use opslens_core::integration_keys::{KeyStored, SetKey};
use opslens_core::integrations::IntegrationsOverview;
use opslens_core::snapshots::{PanelRequest, SnapshotRequest};
use opslens_core::status::{IntegrationCheck, IntegrationsReport};
use opslens_core::sync::SyncReport;
use opslens_core::IntegrationService;
use opslens_domain::{Evidence, OutboxMessage, OutboxStatus};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};

/// Each configured integration tried for real (auth check), with latency; unconfigured ones
/// are reported as such, not as failures.
#[utoipa::path(get, path = "/integrations/test/all", tag = "integrations", responses((status = 200, body = IntegrationsReport)))]
pub async fn test_all(State(s): State<Arc<IntegrationService>>) -> Json<IntegrationsReport> {
    Json(s.integrations_report().await)
}

/// Store an integration key (token, webhook URL, …) where `opslens secrets set` stores it: the
/// OS keychain, else `DATA_DIR/secrets.env` (mode 0600). The value is never answered back.
/// The running integrations keep the keys they read at start until a restart;
/// `POST /integrations/{name}/test` checks the stored keys now.
#[utoipa::path(put, path = "/integrations/keys/{name}", tag = "integrations", params(("name" = String, Path, example = "TEAMS_WEBHOOK_URL")),
    request_body = SetKey,
    responses((status = 200, body = KeyStored), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not a key OpsLens reads"), (status = 422, body = ErrorBody)))]
pub async fn set_key(
    State(s): State<Arc<IntegrationService>>,
    Path(name): Path<String>,
    Json(body): Json<SetKey>,
) -> ApiResult<Json<KeyStored>> {
    Ok(Json(s.set_key(&name, &body.value).await?))
}

/// Check one integration with its keys as stored now (also those set since the start), by a
/// real call that changes nothing where the service has one.
#[utoipa::path(post, path = "/integrations/{name}/test", tag = "integrations", params(("name" = String, Path, example = "teams")),
    responses((status = 200, body = IntegrationCheck), (status = 404, body = ErrorBody)))]
pub async fn test_one(
    State(s): State<Arc<IntegrationService>>,
    Path(name): Path<String>,
) -> ApiResult<Json<IntegrationCheck>> {
    Ok(Json(s.test_stored(&name).await?))
}

/// Configuration (key names only), last sync, cursors, counts and recent errors.
#[utoipa::path(get, path = "/integrations", tag = "integrations", responses((status = 200, body = IntegrationsOverview)))]
pub async fn overview(
    State(s): State<Arc<IntegrationService>>,
) -> ApiResult<Json<IntegrationsOverview>> {
    Ok(Json(s.integrations_overview().await?))
}

/// Run a sync now (`pagerduty` or `github`).
#[utoipa::path(post, path = "/integrations/{name}/sync", tag = "integrations", params(("name" = String, Path)),
    responses((status = 200, body = SyncReport), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not configured"), (status = 502, body = ErrorBody, description = "the service failed")))]
pub async fn sync(
    State(s): State<Arc<IntegrationService>>,
    Path(name): Path<String>,
) -> ApiResult<Json<SyncReport>> {
    Ok(Json(s.sync(&name).await?))
}

/// Query of the outbox list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<OutboxStatus>,
    /// Most rows, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// Outgoing posts, newest first; `?status=dead` is the dead-letter queue.
#[utoipa::path(get, path = "/integrations/outbox", tag = "integrations", params(OutboxQuery),
    responses((status = 200, body = Vec<OutboxMessage>)))]
pub async fn outbox(
    State(s): State<Arc<IntegrationService>>,
    Query(q): Query<OutboxQuery>,
) -> ApiResult<Json<Vec<OutboxMessage>>> {
    Ok(Json(s.outbox(q.status, q.limit.unwrap_or(100)).await?))
}

/// Put a dead-lettered post back in the queue (fresh attempts, due now).
#[utoipa::path(post, path = "/integrations/outbox/{id}/retry", tag = "integrations", params(("id" = i64, Path)),
    responses((status = 202, body = OutboxMessage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(s): State<Arc<IntegrationService>>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<OutboxMessage>)> {
    Ok((StatusCode::ACCEPTED, Json(s.retry_outbox(id).await?)))
}

/// Body of `POST /incidents/{id}/notify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyBody {
    /// Status update text (Slack mrkdwn / card text).
    #[serde(default)]
    pub text: Option<String>,
}

/// Post the incident's status to every configured target (Slack, Teams, custom webhooks)
/// through the outbox; answers with the queued rows.
#[utoipa::path(post, path = "/incidents/{id}/notify", tag = "integrations", params(("id" = i64, Path)),
    request_body = NotifyBody,
    responses((status = 202, body = Vec<OutboxMessage>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn notify(
    State(s): State<Arc<IntegrationService>>,
    Path(id): Path<i64>,
    Json(b): Json<NotifyBody>,
) -> ApiResult<(StatusCode, Json<Vec<OutboxMessage>>)> {
    Ok((StatusCode::ACCEPTED, Json(s.notify(id, b.text).await?)))
}

/// Render a Grafana panel (image renderer) and attach it as screenshot evidence.
#[utoipa::path(post, path = "/incidents/{id}/snapshots/grafana", tag = "integrations", params(("id" = i64, Path)),
    request_body = PanelRequest,
    responses((status = 201, body = Evidence), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn grafana(
    State(s): State<Arc<IntegrationService>>,
    Path(id): Path<i64>,
    Json(r): Json<PanelRequest>,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    Ok((StatusCode::CREATED, Json(s.grafana_panel(id, r).await?)))
}

/// Take a Datadog graph snapshot and attach it as screenshot evidence.
#[utoipa::path(post, path = "/incidents/{id}/snapshots/datadog", tag = "integrations", params(("id" = i64, Path)),
    request_body = SnapshotRequest,
    responses((status = 201, body = Evidence), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn datadog(
    State(s): State<Arc<IntegrationService>>,
    Path(id): Path<i64>,
    Json(r): Json<SnapshotRequest>,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    Ok((StatusCode::CREATED, Json(s.datadog_panel(id, r).await?)))
}
