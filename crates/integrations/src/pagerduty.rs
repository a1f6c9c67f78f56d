//! PagerDuty REST API v2: incidents in a window (offset pagination until `more == false`),
//! their log entries (timeline) and alerts (evidence), and the mapping to OpsLens incidents.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opslens_domain::{
    EvidenceType, ExternalEvidence, ExternalIncident, ExternalItem, IncidentSource, IncidentStatus,
    Severity, SignalKind,
};
use serde::Deserialize;

use crate::config::PagerDutyConfig;
use crate::http::{get_json, ClientError, HttpPolicy, RateStyle};

const SERVICE: &str = "pagerduty";
/// Largest page PagerDuty serves.
const PAGE: u32 = 100;
/// `offset + limit` may not exceed this (PagerDuty answers 400 beyond it).
const MAX_OFFSET: u32 = 10_000;

/// A reference (`service`, `priority`, …) as PagerDuty nests them.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Reference {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub summary: Option<String>,
}

/// The fields of a PagerDuty incident OpsLens uses.
#[derive(Debug, Clone, Deserialize)]
pub struct PdIncident {
    /// PagerDuty id, e.g. `PT4KHLK`.
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Summary (fallback title).
    #[serde(default)]
    pub summary: Option<String>,
    /// `triggered`, `acknowledged`, `resolved`.
    pub status: String,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<String>,
    /// Priority (P1…P5), when the account uses them.
    #[serde(default)]
    pub priority: Option<Reference>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference>,
    /// Link to the incident in PagerDuty.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Number.
    #[serde(default)]
    pub incident_number: Option<i64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A log entry (trigger, acknowledge, annotate, resolve, …).
#[derive(Debug, Clone, Deserialize)]
pub struct PdLogEntry {
    /// Id.
    pub id: String,
    /// e.g. `trigger_log_entry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Readable line.
    #[serde(default)]
    pub summary: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An alert grouped into an incident.
#[derive(Debug, Clone, Deserialize)]
pub struct PdAlert {
    /// Id.
    pub id: String,
    /// Readable line.
    #[serde(default)]
    pub summary: Option<String>,
    /// `triggered` or `resolved`.
    #[serde(default)]
    pub status: Option<String>,
    /// `critical`, `error`, `warning`, `info`.
    #[serde(default)]
    pub severity: Option<String>,
    /// When it fired.
    pub created_at: DateTime<Utc>,
    /// The alert body (contexts, details).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct IncidentsPage {
    incidents: Vec<PdIncident>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct LogEntriesPage {
    log_entries: Vec<PdLogEntry>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct AlertsPage {
    alerts: Vec<PdAlert>,
    #[serde(default)]
    more: bool,
}

/// A PagerDuty REST client.
#[derive(Debug, Clone)]
pub struct PagerDuty {
    http: reqwest::Client,
    cfg: PagerDutyConfig,
    policy: HttpPolicy,
}

impl PagerDuty {
    /// A client for `cfg` (its `api_url` may point at a local fake).
    pub fn new(cfg: PagerDutyConfig, policy: HttpPolicy) -> Self {
        PagerDuty {
            http: crate::http::client(policy.timeout),
            cfg,
            policy,
        }
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.cfg.api_url))
            .header(
                "Authorization",
                format!("Token token={}", self.cfg.token.expose()),
            )
            .header("Accept", "application/vnd.pagerduty+json;version=2")
            .query(query)
    }

    /// Offset pagination over `path`, collecting what `items` extracts from each page.
    async fn paged<P: serde::de::DeserializeOwned, T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        split: impl Fn(P) -> (Vec<T>, bool),
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut offset = 0u32;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", PAGE.to_string()));
            q.push(("offset", offset.to_string()));
            let (page, _) = get_json::<P>(SERVICE, RateStyle::PagerDuty, &self.policy, || {
                self.get(path, &q)
            })
            .await?;
            let (items, more) = split(page);
            let n = items.len() as u32;
            out.extend(items);
            offset += n;
            // An empty page with `more` set would loop forever; the offset cap is PagerDuty's.
            if !more || n == 0 || offset + PAGE > MAX_OFFSET {
                return Ok(out);
            }
        }
    }

    /// Cheapest authenticated call: proves the token works. Returns the round trip.
    pub async fn check(&self) -> Result<Duration, ClientError> {
        let start = Instant::now();
        let _: (serde_json::Value, _) =
            get_json(SERVICE, RateStyle::PagerDuty, &self.policy, || {
                self.get("/abilities", &[])
            })
            .await?;
        Ok(start.elapsed())
    }

    /// Incidents in `[since, until)`, all statuses unless `statuses` narrows them.
    pub async fn incidents(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        statuses: &[&str],
    ) -> Result<Vec<PdIncident>, ClientError> {
        let mut q = vec![
            ("since", since.to_rfc3339()),
            ("until", until.to_rfc3339()),
            ("time_zone", "UTC".to_string()),
            ("sort_by", "created_at:asc".to_string()),
        ];
        for s in statuses {
            q.push(("statuses[]", (*s).to_string()));
        }
        self.paged("/incidents", &q, |p: IncidentsPage| (p.incidents, p.more))
            .await
    }

    /// Log entries of an incident, oldest first as PagerDuty returns them.
    pub async fn log_entries(&self, incident_id: &str) -> Result<Vec<PdLogEntry>, ClientError> {
        let q = [("is_overview", "true".to_string())];
        self.paged(
            &format!("/incidents/{incident_id}/log_entries"),
            &q,
            |p: LogEntriesPage| (p.log_entries, p.more),
        )
        .await
    }

    /// Alerts of an incident.
    pub async fn alerts(&self, incident_id: &str) -> Result<Vec<PdAlert>, ClientError> {
        self.paged(
            &format!("/incidents/{incident_id}/alerts"),
            &[],
            |p: AlertsPage| (p.alerts, p.more),
        )
        .await
    }
}

/// PagerDuty status → OpsLens status.
pub fn map_status(s: &str) -> IncidentStatus {
    match s {
        "acknowledged" => IncidentStatus::Acknowledged,
        "resolved" => IncidentStatus::Resolved,
        _ => IncidentStatus::Triggered,
    }
}

/// Priority (P1…P5) first, else urgency.
pub fn map_severity(priority: Option<&str>, urgency: Option<&str>) -> Severity {
    match priority.map(|p| p.trim().to_ascii_uppercase()) {
        Some(p) if p == "P1" => Severity::Critical,
        Some(p) if p == "P2" => Severity::High,
        Some(p) if p == "P3" => Severity::Medium,
        Some(p) if p == "P4" || p == "P5" => Severity::Low,
        _ => match urgency {
            Some("high") => Severity::High,
            Some("low") => Severity::Low,
            _ => Severity::Medium,
        },
    }
}

impl PdIncident {
    /// The OpsLens view of this incident.
    pub fn to_external(&self) -> ExternalIncident {
        let title = self
            .title
            .clone()
            .or_else(|| self.summary.clone())
            .unwrap_or_else(|| format!("PagerDuty incident {}", self.id));
        let mut description = String::new();
        if let Some(s) = self.service.as_ref().and_then(|s| s.summary.as_deref()) {
            description.push_str(&format!("Service: {s}\n"));
        }
        if let Some(u) = &self.html_url {
            description.push_str(&format!("PagerDuty: {u}\n"));
        }
        ExternalIncident {
            source: IncidentSource::Pagerduty,
            external_id: self.id.clone(),
            title,
            description: description.trim_end().to_string(),
            severity: map_severity(
                self.priority.as_ref().and_then(|p| p.summary.as_deref()),
                self.urgency.as_deref(),
            ),
            status: map_status(&self.status),
        }
    }
}

impl PdLogEntry {
    /// A timeline line (no evidence: log entries are the incident's own history).
    pub fn to_item(&self) -> ExternalItem {
        let what = self.kind.trim_end_matches("_reference");
        ExternalItem {
            key: format!("pagerduty:log:{}", self.id),
            occurred_at: self.created_at,
            message: format!(
                "PagerDuty {}: {}",
                what.trim_end_matches("_log_entry"),
                self.summary.as_deref().unwrap_or(what)
            ),
            signal: SignalKind::Other,
            evidence: None,
            version: None,
        }
    }
}

impl PdAlert {
    /// Alert evidence; its start time is what correlation compares changes against.
    pub fn to_item(&self) -> ExternalItem {
        let summary = self.summary.clone().unwrap_or_else(|| self.id.clone());
        let content = serde_json::json!({
            "id": self.id,
            "summary": summary,
            "status": self.status,
            "severity": self.severity,
            "created_at": self.created_at,
            "body": self.body,
        });
        ExternalItem {
            key: format!("pagerduty:alert:{}", self.id),
            occurred_at: self.created_at,
            message: format!("PagerDuty alert: {summary}"),
            signal: SignalKind::Alert,
            evidence: Some(ExternalEvidence {
                evidence_type: EvidenceType::Alert,
                title: summary,
                content: serde_json::to_string_pretty(&content).unwrap_or_default(),
                source: SERVICE.into(),
            }),
            version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_maps_to_an_opslens_incident() {
        let inc: PdIncident = serde_json::from_value(serde_json::json!({
            "id": "PT4KHLK", "type": "incident", "incident_number": 1234,
            "title": "The server is on fire.", "status": "acknowledged", "urgency": "high",
            "created_at": "2015-10-06T21:30:42Z",
            "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
            "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service"},
            "priority": null
        }))
        .unwrap();
        let e = inc.to_external();
        assert_eq!(e.external_id, "PT4KHLK");
        assert_eq!(e.status, IncidentStatus::Acknowledged);
        assert_eq!(e.severity, Severity::High);
        assert!(e.description.contains("My Mail Service"));
        assert_eq!(map_severity(Some("P1"), Some("low")), Severity::Critical);
    }
}
