//! Polling syncs (a laptop has no public URL, so polling is the primary path): PagerDuty
//! incidents with their log entries and alerts, and GitHub merges/deployments around each
//! incident. Both are idempotent by the items' keys; the outcome goes to `integration_state`.

use chrono::{DateTime, Utc};
use opslens_domain::{ExternalItem, Incident};
use opslens_integrations::github::{deployment_item, pull_item};
use serde::Serialize;
use utoipa::ToSchema;

use crate::integrations::IntegrationService;
use crate::CoreError;

/// PagerDuty accepts windows of at most 6 months.
const PD_MAX_RANGE_DAYS: i64 = 180;

/// Outcome of one sync.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SyncReport {
    /// Which integration.
    pub name: String,
    /// Window start.
    pub since: Option<DateTime<Utc>>,
    /// Window end (the next cursor).
    pub until: Option<DateTime<Utc>>,
    /// Records fetched from the service.
    pub fetched: usize,
    /// Incidents created.
    pub incidents_created: usize,
    /// Incidents whose status or title changed.
    pub incidents_updated: usize,
    /// Items (timeline entries, evidence) newly stored.
    pub new_items: usize,
    /// Correlation hypotheses proposed.
    pub hypotheses: usize,
}

impl IntegrationService {
    /// Runs the named sync (`pagerduty` or `github`) and records its outcome.
    pub async fn sync(&self, name: &str) -> Result<SyncReport, CoreError> {
        let result = match name {
            "pagerduty" => self.sync_pagerduty().await,
            "github" => self.sync_github().await,
            other => {
                return Err(CoreError::NotFound(format!(
                    "no sync for {other:?}: pagerduty and github sync"
                )))
            }
        };
        let n = name.to_string();
        match &result {
            Ok(r) => {
                let cursor = r.until.map(|t| t.to_rfc3339());
                let items = r.new_items as i64;
                self.db
                    .run(move |s| s.record_sync(&n, Ok((cursor, items))))
                    .await?;
            }
            Err(CoreError::NotConfigured(_)) => {}
            Err(e) => {
                let msg = e.to_string();
                self.db.run(move |s| s.record_sync(&n, Err(msg))).await?;
            }
        }
        result
    }

    async fn cursor(&self, name: &'static str) -> Result<Option<DateTime<Utc>>, CoreError> {
        let states = self.db.run(|s| s.integration_states()).await?;
        Ok(states
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.cursor)
            .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    async fn sync_pagerduty(&self) -> Result<SyncReport, CoreError> {
        let pd = self.pagerduty().ok_or_else(|| {
            CoreError::NotConfigured("pagerduty is not configured: set PAGERDUTY_API_TOKEN".into())
        })?;
        let until = Utc::now();
        let lookback =
            chrono::Duration::from_std(self.cfg.sync_lookback).unwrap_or(chrono::Duration::days(1));
        // Always look back the whole lookback so status changes of recent incidents are seen;
        // after a long pause, start from the last cursor instead.
        let mut since = until - lookback;
        if let Some(c) = self.cursor("pagerduty").await? {
            since = since.min(c);
        }
        since = since.max(until - chrono::Duration::days(PD_MAX_RANGE_DAYS));
        let up = |e: opslens_integrations::ClientError| CoreError::Upstream(e.to_string());
        let incidents = pd.incidents(since, until, &[]).await.map_err(up)?;
        let mut report = SyncReport {
            name: "pagerduty".into(),
            since: Some(since),
            until: Some(until),
            fetched: incidents.len(),
            ..Default::default()
        };
        for inc in incidents {
            let mut items: Vec<ExternalItem> = Vec::new();
            let logs = pd.log_entries(&inc.id).await.map_err(up)?;
            let alerts = pd.alerts(&inc.id).await.map_err(up)?;
            report.fetched += logs.len() + alerts.len();
            items.extend(logs.iter().map(|l| l.to_item()));
            items.extend(alerts.iter().map(|a| a.to_item()));
            let ext = inc.to_external();
            let outcome = self.db.run(move |s| s.apply_external(&ext, &items)).await?;
            report.incidents_created += outcome.created as usize;
            report.incidents_updated += outcome.updated as usize;
            report.new_items += outcome.new_items;
            if outcome.new_items > 0 {
                report.hypotheses += self.correlate(outcome.incident_id).await?.len();
            }
        }
        Ok(report)
    }

    async fn sync_github(&self) -> Result<SyncReport, CoreError> {
        let gh = self.github().ok_or_else(|| {
            CoreError::NotConfigured(
                "github is not configured: set GITHUB_TOKEN and GITHUB_REPOS".into(),
            )
        })?;
        let now = Utc::now();
        let window = chrono::Duration::from_std(self.cfg.github_window)
            .unwrap_or(chrono::Duration::hours(6));
        let lookback =
            chrono::Duration::from_std(self.cfg.sync_lookback).unwrap_or(chrono::Duration::days(1));
        let since_incidents = now - lookback;
        let incidents: Vec<Incident> = self
            .db
            .run(move |s| s.incidents_for_changes(&since_incidents))
            .await?;
        let mut report = SyncReport {
            name: "github".into(),
            until: Some(now),
            ..Default::default()
        };
        // Each incident's window starts `window` before its first alert when that is earlier
        // than our record of it (synced incidents are recorded when the sync ran).
        let mut anchors = Vec::with_capacity(incidents.len());
        for inc in &incidents {
            let id = inc.id;
            let first_alert = self
                .db
                .run(move |s| s.signals(id))
                .await?
                .into_iter()
                .filter(|s| s.signal == opslens_domain::SignalKind::Alert)
                .map(|s| s.occurred_at)
                .min();
            anchors.push(first_alert.map_or(inc.created_at, |a| a.min(inc.created_at)));
        }
        let Some(earliest) = anchors.iter().copied().min() else {
            return Ok(report);
        };
        // One fetch per repo covers every incident's window.
        let since = earliest - window;
        report.since = Some(since);
        let up = |e: opslens_integrations::ClientError| CoreError::Upstream(e.to_string());
        let mut items = Vec::new();
        for repo in gh.repos() {
            let pulls = gh.merged_pulls(repo, since, now).await.map_err(up)?;
            let deploys = gh.deployments(repo, since, now).await.map_err(up)?;
            report.fetched += pulls.len() + deploys.len();
            items.extend(pulls.iter().filter_map(|p| pull_item(repo, p)));
            items.extend(deploys.iter().map(|(d, st)| deployment_item(repo, d, st)));
        }
        for (inc, anchor) in incidents.into_iter().zip(anchors) {
            let from = anchor - window;
            let to = inc.resolved_at.unwrap_or(now);
            let mine: Vec<ExternalItem> = items
                .iter()
                .filter(|i| i.occurred_at >= from && i.occurred_at <= to)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let id = inc.id;
            let added = self.db.run(move |s| s.attach_external(id, &mine)).await?;
            report.new_items += added;
            if added > 0 {
                report.hypotheses += self.correlate(id).await?.len();
            }
        }
        Ok(report)
    }
}
