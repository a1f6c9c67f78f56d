//! Dashboard images (Grafana panel render, Datadog graph snapshot) filed as screenshot
//! evidence, so they go through the same type sniffing, limits and analysis queue as uploads.

use std::time::Duration;

use opslens_domain::Evidence;
use opslens_integrations::snapshots::{datadog_snapshot, render_grafana_panel};
pub use opslens_integrations::snapshots::{PanelRequest, SnapshotRequest};

use crate::integrations::IntegrationService;
use crate::CoreError;

/// Polls of a Datadog snapshot URL before giving up, and the pause between them.
const DD_TRIES: u32 = 10;
const DD_PAUSE: Duration = Duration::from_secs(1);

impl IntegrationService {
    /// Renders a Grafana panel and attaches it to the incident.
    pub async fn grafana_panel(
        &self,
        incident_id: i64,
        r: PanelRequest,
    ) -> Result<Evidence, CoreError> {
        self.db.incident(incident_id).await?;
        let g = self.cfg.grafana.as_ref().ok_or_else(|| {
            CoreError::NotConfigured(
                "grafana is not configured: set GRAFANA_URL and GRAFANA_TOKEN".into(),
            )
        })?;
        let bytes = render_grafana_panel(&self.http, g, &r)
            .await
            .map_err(|e| CoreError::Upstream(e.to_string()))?;
        let name = format!("Grafana {} panel {}", r.dashboard_uid, r.panel_id);
        self.evidence
            .add_screenshot(incident_id, bytes, Some(name), "grafana")
            .await
    }

    /// Takes a Datadog graph snapshot and attaches it to the incident.
    pub async fn datadog_panel(
        &self,
        incident_id: i64,
        r: SnapshotRequest,
    ) -> Result<Evidence, CoreError> {
        self.db.incident(incident_id).await?;
        let d = self.cfg.datadog.as_ref().ok_or_else(|| {
            CoreError::NotConfigured(
                "datadog is not configured: set DATADOG_API_KEY and DATADOG_APP_KEY".into(),
            )
        })?;
        let bytes = datadog_snapshot(&self.http, d, &r, DD_TRIES, DD_PAUSE)
            .await
            .map_err(|e| CoreError::Upstream(e.to_string()))?;
        let name = format!("Datadog {}", r.title.as_deref().unwrap_or(&r.metric_query));
        self.evidence
            .add_screenshot(incident_id, bytes, Some(name), "datadog")
            .await
    }
}
