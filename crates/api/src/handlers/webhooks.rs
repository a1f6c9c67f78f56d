//! `/webhooks/{provider}`: signed deliveries from PagerDuty, GitHub, Slack, Alertmanager,
//! Grafana and Events-API-style senders. These routes skip the API token (the sender cannot
//! have it) and authenticate by signature or per-integration credential instead; the Host and
//! Origin guards still apply.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opslens_core::webhooks::{WebhookAck, WebhookRequest};
use opslens_core::IntegrationService;

use super::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path};

/// Receive one delivery. The raw body is verified before it is parsed; 202 for a new delivery,
/// 200 for one seen before (nothing changes), 401 for a bad signature or credential.
#[utoipa::path(post, path = "/webhooks/{provider}", tag = "webhooks", security(()),
    params(("provider" = String, Path, description = "pagerduty, github, slack, alertmanager, grafana or events")),
    request_body(content = String, content_type = "application/json", description = "The payload exactly as the sender signed it"),
    responses((status = 202, body = WebhookAck), (status = 200, body = WebhookAck),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "receiver not configured"),
        (status = 422, body = ErrorBody)))]
pub async fn receive(
    State(s): State<Arc<IntegrationService>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let ack = s
        .receive_webhook(
            &provider,
            WebhookRequest {
                headers,
                body: body.to_vec(),
            },
        )
        .await?;
    let status = if ack.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(ack)))
}
