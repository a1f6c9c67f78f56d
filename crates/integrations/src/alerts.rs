//! Inbound alert payloads mapped to OpsLens incidents: PagerDuty Webhooks v3, Alertmanager
//! (and Grafana Alerting, which sends the same shape), and a generic PagerDuty-Events-v2-style
//! body that many monitoring tools can emit.

use chrono::{DateTime, Utc};
use opslens_domain::{
    EvidenceType, ExternalEvidence, ExternalIncident, ExternalItem, IncidentSource, IncidentStatus,
    Severity, SignalKind,
};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pagerduty::{map_severity, map_status, Reference};

/// What a delivery asks OpsLens to do.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// Create or update this incident and add the items.
    Incident(ExternalIncident, Vec<ExternalItem>),
    /// Nothing to do (event type not used); the reason is recorded.
    Ignored(String),
}

/// Hex SHA-256 of the body: the delivery id of senders that send none (Alertmanager).
pub fn body_id(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[derive(Deserialize)]
struct PdEnvelope {
    event: PdEvent,
}

#[derive(Deserialize)]
struct PdEvent {
    id: String,
    event_type: String,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    agent: Option<Reference>,
    #[serde(default)]
    data: Value,
}

/// The `event.id` of a PagerDuty v3 body (fallback delivery id when `X-Webhook-Id` is absent).
pub fn pagerduty_event_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<PdEnvelope>(body)
        .ok()
        .map(|e| e.event.id)
}

/// Parses a verified PagerDuty v3 delivery. Unknown event types are accepted and ignored, as
/// PagerDuty asks ("additional event types may be added").
pub fn parse_pagerduty(body: &[u8]) -> Result<Inbound, serde_json::Error> {
    let env: PdEnvelope = serde_json::from_slice(body)?;
    let e = env.event;
    if !e.event_type.starts_with("incident.") || e.data["type"] != "incident" {
        return Ok(Inbound::Ignored(format!("{} is not used", e.event_type)));
    }
    let d = &e.data;
    let Some(id) = d["id"].as_str() else {
        return Ok(Inbound::Ignored("incident event without data.id".into()));
    };
    let title = d["title"].as_str().unwrap_or(id).to_string();
    let mut description = String::new();
    if let Some(s) = d["service"]["summary"].as_str() {
        description.push_str(&format!("Service: {s}\n"));
    }
    if let Some(u) = d["html_url"].as_str() {
        description.push_str(&format!("PagerDuty: {u}\n"));
    }
    let inc = ExternalIncident {
        source: IncidentSource::Pagerduty,
        external_id: id.to_string(),
        title,
        description: description.trim_end().to_string(),
        severity: map_severity(d["priority"]["summary"].as_str(), d["urgency"].as_str()),
        status: map_status(d["status"].as_str().unwrap_or("triggered")),
    };
    let who = e
        .agent
        .and_then(|a| a.summary)
        .map(|s| format!(" by {s}"))
        .unwrap_or_default();
    let item = ExternalItem {
        key: format!("pagerduty:event:{}", e.id),
        occurred_at: e.occurred_at.unwrap_or_else(Utc::now),
        message: format!("PagerDuty {}{who}", e.event_type),
        signal: if e.event_type == "incident.triggered" {
            SignalKind::Alert
        } else {
            SignalKind::Other
        },
        evidence: None,
        version: None,
    };
    Ok(Inbound::Incident(inc, vec![item]))
}

#[derive(Deserialize)]
struct AmGroup {
    #[serde(default)]
    status: String,
    #[serde(rename = "groupKey", default)]
    group_key: String,
    #[serde(rename = "commonLabels", default)]
    common_labels: serde_json::Map<String, Value>,
    #[serde(rename = "commonAnnotations", default)]
    common_annotations: serde_json::Map<String, Value>,
    #[serde(rename = "externalURL", default)]
    external_url: String,
    #[serde(default)]
    alerts: Vec<AmAlert>,
}

#[derive(Deserialize)]
struct AmAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: serde_json::Map<String, Value>,
    #[serde(default)]
    annotations: serde_json::Map<String, Value>,
    #[serde(rename = "startsAt")]
    starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

fn label_severity(s: Option<&str>) -> Severity {
    match s.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical") | Some("p1") | Some("sev1") => Severity::Critical,
        Some("high") | Some("error") | Some("page") | Some("p2") => Severity::High,
        Some("low") | Some("info") | Some("none") => Severity::Low,
        _ => Severity::Medium,
    }
}

fn text(m: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Parses an Alertmanager (`provider = "alertmanager"`) or Grafana (`"grafana"`) group
/// notification: the group is the incident, each alert start/end an `alert` item.
pub fn parse_alertmanager(provider: &str, body: &[u8]) -> Result<Inbound, serde_json::Error> {
    let g: AmGroup = serde_json::from_slice(body)?;
    if g.alerts.is_empty() {
        return Ok(Inbound::Ignored("notification without alerts".into()));
    }
    let first = &g.alerts[0];
    let name = text(&g.common_labels, "alertname")
        .or_else(|| text(&first.labels, "alertname"))
        .unwrap_or_else(|| "alert".into());
    let title = text(&g.common_annotations, "summary")
        .map(|s| format!("{name}: {s}"))
        .unwrap_or(name);
    let group = if g.group_key.is_empty() {
        body_id(body)
    } else {
        g.group_key.clone()
    };
    let inc = ExternalIncident {
        source: IncidentSource::Webhook,
        external_id: format!("{provider}:{group}"),
        title,
        description: format!("{provider} alert group {group}\n{}", g.external_url)
            .trim_end()
            .to_string(),
        severity: label_severity(
            text(&g.common_labels, "severity")
                .or_else(|| text(&first.labels, "severity"))
                .as_deref(),
        ),
        status: if g.status == "resolved" {
            IncidentStatus::Resolved
        } else {
            IncidentStatus::Triggered
        },
    };
    let items = g
        .alerts
        .iter()
        .map(|a| {
            let resolved = a.status == "resolved";
            let at = if resolved {
                a.ends_at.unwrap_or(a.starts_at)
            } else {
                a.starts_at
            };
            let name = text(&a.labels, "alertname").unwrap_or_else(|| "alert".into());
            let summary = text(&a.annotations, "summary")
                .or_else(|| text(&a.annotations, "description"))
                .unwrap_or_default();
            let fp = if a.fingerprint.is_empty() {
                body_id(
                    serde_json::to_string(&a.labels)
                        .unwrap_or_default()
                        .as_bytes(),
                )
            } else {
                a.fingerprint.clone()
            };
            let label = format!("{name} {}", a.status);
            let content = serde_json::json!({
                "status": a.status, "labels": a.labels, "annotations": a.annotations,
                "startsAt": a.starts_at, "endsAt": a.ends_at, "generatorURL": a.generator_url,
                "fingerprint": fp,
            });
            ExternalItem {
                key: format!(
                    "{provider}:alert:{fp}:{}:{}",
                    a.starts_at.timestamp(),
                    a.status
                ),
                occurred_at: at,
                message: format!("{provider}: {label} {summary}")
                    .trim_end()
                    .to_string(),
                signal: if resolved {
                    SignalKind::Other
                } else {
                    SignalKind::Alert
                },
                evidence: Some(ExternalEvidence {
                    evidence_type: EvidenceType::Alert,
                    title: label,
                    content: serde_json::to_string_pretty(&content).unwrap_or_default(),
                    source: if a.generator_url.is_empty() {
                        provider.to_string()
                    } else {
                        a.generator_url.clone()
                    },
                }),
                version: None,
            }
        })
        .collect();
    Ok(Inbound::Incident(inc, items))
}

/// A generic event, Events-API-v2 style.
#[derive(Debug, Deserialize)]
pub struct GenericEvent {
    /// The credential of the sender (compared with `ALERT_WEBHOOK_TOKEN`).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// `trigger`, `acknowledge` or `resolve`.
    pub event_action: String,
    /// Groups events into one incident.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// The alert.
    #[serde(default)]
    pub payload: Option<GenericPayload>,
}

/// `payload` of a generic event.
#[derive(Debug, Deserialize)]
pub struct GenericPayload {
    /// One line.
    pub summary: String,
    /// Host or service.
    #[serde(default)]
    pub source: String,
    /// `critical`, `error`, `warning`, `info`.
    #[serde(default)]
    pub severity: Option<String>,
    /// When it started.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Anything else.
    #[serde(default)]
    pub custom_details: Option<Value>,
}

/// Parses a generic event. `trigger` needs a payload; acknowledge/resolve need a `dedup_key`.
pub fn parse_generic(ev: &GenericEvent, body: &[u8]) -> Result<Inbound, String> {
    let status = match ev.event_action.as_str() {
        "trigger" => IncidentStatus::Triggered,
        "acknowledge" => IncidentStatus::Acknowledged,
        "resolve" => IncidentStatus::Resolved,
        other => {
            return Err(format!(
                "event_action must be trigger, acknowledge or resolve, got {other:?}"
            ))
        }
    };
    let dedup = match (&ev.dedup_key, status) {
        (Some(k), _) if !k.is_empty() => k.clone(),
        (_, IncidentStatus::Triggered) => body_id(body),
        _ => return Err("acknowledge and resolve need the dedup_key of the trigger".into()),
    };
    let (title, severity, at, details) = match &ev.payload {
        Some(p) => (
            p.summary.clone(),
            match p.severity.as_deref() {
                Some("critical") => Severity::Critical,
                Some("error") => Severity::High,
                Some("warning") => Severity::Medium,
                Some("info") => Severity::Low,
                _ => Severity::Medium,
            },
            p.timestamp.unwrap_or_else(Utc::now),
            serde_json::json!({"summary": p.summary, "source": p.source, "severity": p.severity,
                               "timestamp": p.timestamp, "custom_details": p.custom_details}),
        ),
        None if status == IncidentStatus::Triggered => {
            return Err("a trigger event needs payload.summary".into())
        }
        // No payload: keep the stored title (the store leaves an empty title alone).
        None => (String::new(), Severity::Medium, Utc::now(), Value::Null),
    };
    let inc = ExternalIncident {
        source: IncidentSource::Webhook,
        external_id: format!("events:{dedup}"),
        title: title.clone(),
        description: String::new(),
        severity,
        status,
    };
    let item = ExternalItem {
        key: format!("events:{dedup}:{}:{}", ev.event_action, body_id(body)),
        occurred_at: at,
        message: format!(
            "Event {}: {}",
            ev.event_action,
            if title.is_empty() { &dedup } else { &title }
        ),
        signal: if status == IncidentStatus::Triggered {
            SignalKind::Alert
        } else {
            SignalKind::Other
        },
        evidence: (status == IncidentStatus::Triggered).then(|| ExternalEvidence {
            evidence_type: EvidenceType::Alert,
            title: title.clone(),
            content: serde_json::to_string_pretty(&details).unwrap_or_default(),
            source: "events".into(),
        }),
        version: None,
    };
    Ok(Inbound::Incident(inc, vec![item]))
}
