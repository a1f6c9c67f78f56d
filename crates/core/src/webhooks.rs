//! Incoming webhooks: verify the raw body (constant time, replay window where the sender signs
//! a timestamp), record the delivery id and apply it in one transaction, so the same delivery
//! sent ten times is stored once and every copy gets a 2xx.

use chrono::Utc;
use opslens_integrations::alerts::{self, GenericEvent, Inbound};
use opslens_integrations::github::{self, GitHubEvent};
use opslens_integrations::signature::{self, SigError};
use opslens_integrations::Secret;
use opslens_store::DeliveryAction;
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::integrations::IntegrationService;
use crate::CoreError;

/// Providers with a receiver under `/api/v1/webhooks/{provider}`.
pub const PROVIDERS: &[&str] = &[
    "pagerduty",
    "github",
    "slack",
    "alertmanager",
    "grafana",
    "events",
];

/// A delivery as received: header names lowercase, the body untouched.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Raw body bytes, exactly as signed.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answer to a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAck {
    /// Which receiver.
    pub provider: String,
    /// The delivery id used for dedup.
    pub delivery_id: String,
    /// Seen before: nothing was changed.
    pub duplicate: bool,
    /// Incidents created or changed.
    pub incident_ids: Vec<i64>,
    /// Why nothing was done, for event types OpsLens does not use.
    pub ignored: Option<String>,
    /// Slack `url_verification` challenge, echoed.
    pub challenge: Option<String>,
}

fn unauthorized(provider: &str, e: SigError) -> CoreError {
    CoreError::Unauthorized(format!("{provider} webhook refused: {e}"))
}

fn secret<'a>(s: &'a Option<Secret>, key: &str) -> Result<&'a Secret, CoreError> {
    s.as_ref().ok_or_else(|| {
        CoreError::NotConfigured(format!(
            "this receiver is off: set {key} in secrets.env to accept signed deliveries"
        ))
    })
}

/// `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>` for unsigned senders, compared in constant time.
fn bearer_ok(req: &WebhookRequest, token: &Secret) -> bool {
    req.header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|p| bool::from(p.trim().as_bytes().ct_eq(token.expose().as_bytes())))
}

fn bad_body(provider: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::Invalid(format!("{provider} payload not understood: {e}"))
}

fn action(inbound: Inbound) -> DeliveryAction {
    match inbound {
        Inbound::Incident(inc, items) => DeliveryAction::Upsert(inc, items),
        Inbound::Ignored(why) => DeliveryAction::Ignore(why),
    }
}

impl IntegrationService {
    /// Verifies, deduplicates and applies one delivery.
    pub async fn receive_webhook(
        &self,
        provider: &str,
        req: WebhookRequest,
    ) -> Result<WebhookAck, CoreError> {
        let cfg = &self.cfg;
        let now = Utc::now().timestamp();
        let body = req.body.as_slice();
        let mut challenge = None;
        let (delivery_id, event_type, act) = match provider {
            "pagerduty" => {
                let s = secret(&cfg.pagerduty_webhook_secret, "PAGERDUTY_WEBHOOK_SECRET")?;
                signature::verify_pagerduty(s.expose(), req.header("x-pagerduty-signature"), body)
                    .map_err(|e| unauthorized(provider, e))?;
                let id = req
                    .header("x-webhook-id")
                    .map(str::to_string)
                    .or_else(|| alerts::pagerduty_event_id(body))
                    .ok_or_else(|| bad_body(provider, "no X-Webhook-Id and no event.id"))?;
                let inbound = alerts::parse_pagerduty(body).map_err(|e| bad_body(provider, e))?;
                (id, "pagerduty".to_string(), action(inbound))
            }
            "github" => {
                let s = secret(&cfg.github_webhook_secret, "GITHUB_WEBHOOK_SECRET")?;
                signature::verify_github(s.expose(), req.header("x-hub-signature-256"), body)
                    .map_err(|e| unauthorized(provider, e))?;
                let id = req
                    .header("x-github-delivery")
                    .ok_or_else(|| bad_body(provider, "missing X-GitHub-Delivery"))?
                    .to_string();
                let event = req.header("x-github-event").unwrap_or("").to_string();
                let act =
                    match github::parse_webhook(&event, body).map_err(|e| bad_body(provider, e))? {
                        GitHubEvent::Change(item) => DeliveryAction::AttachToOpen(vec![item]),
                        GitHubEvent::Ignored(why) => DeliveryAction::Ignore(why),
                    };
                (id, event, act)
            }
            "slack" => {
                let s = secret(&cfg.slack_signing_secret, "SLACK_SIGNING_SECRET")?;
                signature::verify_slack(
                    s.expose(),
                    req.header("x-slack-request-timestamp"),
                    req.header("x-slack-signature"),
                    body,
                    now,
                )
                .map_err(|e| unauthorized(provider, e))?;
                let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                challenge = v["challenge"].as_str().map(str::to_string);
                let kind = v["type"].as_str().unwrap_or("form").to_string();
                let id = v["event_id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| alerts::body_id(body));
                (
                    id,
                    kind,
                    DeliveryAction::Ignore("Slack requests are verified and recorded only".into()),
                )
            }
            "alertmanager" | "grafana" => {
                let verified = match (provider, &cfg.grafana_webhook_secret) {
                    ("grafana", Some(s)) => {
                        let ts = req
                            .header("x-grafana-alerting-signature-timestamp")
                            .or_else(|| req.header("x-grafana-alerting-timestamp"));
                        signature::verify_grafana(
                            s.expose(),
                            req.header("x-grafana-alerting-signature"),
                            ts,
                            body,
                            now,
                        )
                        .map_err(|e| unauthorized(provider, e))?;
                        true
                    }
                    _ => false,
                };
                if !verified {
                    let t = secret(&cfg.alert_webhook_token, "ALERT_WEBHOOK_TOKEN")?;
                    if !bearer_ok(&req, t) {
                        return Err(CoreError::Unauthorized(format!(
                            "{provider} webhook refused: send Authorization: Bearer <ALERT_WEBHOOK_TOKEN>"
                        )));
                    }
                }
                let inbound = alerts::parse_alertmanager(provider, body)
                    .map_err(|e| bad_body(provider, e))?;
                (alerts::body_id(body), "alerts".to_string(), action(inbound))
            }
            "events" => {
                let t = secret(&cfg.alert_webhook_token, "ALERT_WEBHOOK_TOKEN")?;
                let by_header = bearer_ok(&req, t);
                let ev: GenericEvent =
                    serde_json::from_slice(body).map_err(|e| bad_body(provider, e))?;
                let by_key = ev
                    .routing_key
                    .as_deref()
                    .is_some_and(|k| bool::from(k.as_bytes().ct_eq(t.expose().as_bytes())));
                if !(by_header || by_key) {
                    return Err(CoreError::Unauthorized(
                        "events webhook refused: send routing_key or Authorization: Bearer <ALERT_WEBHOOK_TOKEN>".into(),
                    ));
                }
                let inbound = alerts::parse_generic(&ev, body).map_err(CoreError::Invalid)?;
                (
                    alerts::body_id(body),
                    ev.event_action.clone(),
                    action(inbound),
                )
            }
            other => {
                return Err(CoreError::NotFound(format!(
                    "no webhook receiver {other:?}; known: {}",
                    PROVIDERS.join(", ")
                )))
            }
        };
        let ignored = match &act {
            DeliveryAction::Ignore(why) => Some(why.clone()),
            _ => None,
        };
        let text = if provider == "events" {
            // The routing key is a credential: it is not kept with the stored body.
            let mut v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            if v.get("routing_key").is_some() {
                v["routing_key"] = "***".into();
            }
            v.to_string()
        } else {
            String::from_utf8_lossy(body).into_owned()
        };
        let (p, d) = (provider.to_string(), delivery_id.clone());
        let outcomes = self
            .db
            .run(move |s| s.ingest_delivery(&p, &d, &event_type, &text, &act))
            .await?;
        let duplicate = outcomes.is_none();
        let outcomes = outcomes.unwrap_or_default();
        for o in outcomes.iter().filter(|o| o.new_items > 0) {
            self.correlate(o.incident_id).await?;
        }
        Ok(WebhookAck {
            provider: provider.to_string(),
            delivery_id,
            duplicate,
            incident_ids: outcomes.iter().map(|o| o.incident_id).collect(),
            ignored,
            challenge,
        })
    }
}
