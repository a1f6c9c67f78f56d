//! Change correlation: a merge or deploy that went live shortly before the first alert of an
//! incident is a suspect. Each pair is proposed once as a hypothesis with origin
//! `correlation`, linked to both pieces of evidence, for a person to support or refute.

use std::time::Duration;

use opslens_domain::{SignalKind, StoredSignal};

use crate::integrations::IntegrationService;
use crate::CoreError;

/// A hypothesis to propose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proposal {
    /// Idempotency key (`correlation:<change key>`).
    pub key: String,
    /// The claim.
    pub statement: String,
    /// The change's and the alert's evidence.
    pub evidence_ids: Vec<i64>,
}

/// Changes within `window` before the first alert. Without any alert there is no anomaly
/// start to compare with, so nothing is proposed.
pub(crate) fn propose(signals: &[StoredSignal], window: Duration) -> Vec<Proposal> {
    let Some(alert) = signals
        .iter()
        .filter(|s| s.signal == SignalKind::Alert)
        .min_by_key(|s| s.occurred_at)
    else {
        return Vec::new();
    };
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    signals
        .iter()
        .filter(|s| s.signal == SignalKind::Change)
        .filter(|c| c.occurred_at <= alert.occurred_at && alert.occurred_at - c.occurred_at <= window)
        .map(|c| {
            let mins = (alert.occurred_at - c.occurred_at).num_minutes();
            Proposal {
                key: format!("correlation:{}", c.key),
                statement: format!(
                    "{} went live {mins} min before the first alert ({}); it may have caused this incident",
                    c.message, alert.message
                ),
                evidence_ids: [c.evidence_id, alert.evidence_id].into_iter().flatten().collect(),
            }
        })
        .collect()
}

impl IntegrationService {
    /// Proposes correlation hypotheses for an incident's stored changes and alerts; returns
    /// the ids of the new ones (none on a repeat).
    pub(crate) async fn correlate(&self, incident_id: i64) -> Result<Vec<i64>, CoreError> {
        let signals = self.db.run(move |s| s.signals(incident_id)).await?;
        let mut out = Vec::new();
        for p in propose(&signals, self.cfg.correlation_window) {
            if let Some(id) = self
                .db
                .run(move |s| s.add_correlation(incident_id, &p.key, &p.statement, &p.evidence_ids))
                .await?
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn sig(key: &str, kind: SignalKind, min: i64, ev: i64) -> StoredSignal {
        StoredSignal {
            key: key.into(),
            signal: kind,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 20, 14, 0, 0).unwrap()
                + chrono::Duration::minutes(min),
            evidence_id: Some(ev),
            message: key.into(),
        }
    }

    #[test]
    fn only_changes_shortly_before_the_first_alert_are_suspects() {
        let w = Duration::from_secs(3600);
        let signals = vec![
            sig("deploy-too-early", SignalKind::Change, -120, 1),
            sig("deploy-suspect", SignalKind::Change, -10, 2),
            sig("alert", SignalKind::Alert, 0, 3),
            sig("deploy-after", SignalKind::Change, 5, 4),
            sig("alert-later", SignalKind::Alert, 30, 5),
        ];
        let p = propose(&signals, w);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "correlation:deploy-suspect");
        assert_eq!(p[0].evidence_ids, vec![2, 3]);
        assert!(p[0].statement.contains("10 min before"));
        assert!(
            propose(&signals[..2], w).is_empty(),
            "no alert, no proposal"
        );
    }
}
