//! Screen capture as evidence: grab the screen through a [`ScreenSource`] on a blocking thread
//! and file it on the right incident through the same path as an upload
//! ([`EvidenceService::add_screenshot`]), so a capture is validated, stored, put on the timeline and
//! handed to the analysis exactly like a dropped file. An image grabbed beforehand (a region
//! picked on a frozen frame) takes the same path through [`EvidenceService::store_capture`].

use std::sync::Arc;

use opslens_domain::{
    CaptureError, CaptureTarget, Evidence, FeedChange, FeedKind, FeedOp, IncidentStatus,
    NewIncident, ScreenSource, Severity, Shot,
};

use crate::evidence::EvidenceService;
use crate::CoreError;
use opslens_store::UploadFiling;

/// Title of the incident a capture opens when no incident is open: the engineer captured
/// something before opening one and will retitle it.
pub const UNTRIAGED_TITLE: &str = "Untriaged capture";

/// Why a capture request failed: the screen (the source) or the storing (the services).
#[derive(Debug, thiserror::Error)]
pub enum CaptureFailure {
    /// The screen could not be captured.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The capture could not be stored (unknown incident, invalid image, database).
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// A stored capture and where it went.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The new screenshot evidence.
    pub evidence: Evidence,
    /// Whether the incident was opened for this capture (no incident was open).
    pub created_incident: bool,
    /// The incident a window showed when the capture was filed without a named incident.
    pub shown_incident: Option<i64>,
    /// Whether it went by the fallback rule (the open incident changed most recently, or a
    /// new one) because no incident was named and none shown (or the shown one was gone).
    pub fell_back: bool,
}

impl EvidenceService {
    /// Captures `target` with `source` and stores it as screenshot evidence on `incident_id`,
    /// else on the incident a window shows, else on the active incident, else on a new "Untriaged capture" incident.
    ///
    /// A named incident is checked before the capture (a typo should not cost a screenshot);
    /// the fallback incident is chosen after it, so a failed capture opens nothing.
    pub async fn capture(
        &self,
        source: Arc<dyn ScreenSource>,
        incident_id: Option<i64>,
        target: CaptureTarget,
    ) -> Result<Captured, CaptureFailure> {
        if let Some(id) = incident_id {
            self.db.incident(id).await?;
        }
        let shot = tokio::task::spawn_blocking(move || source.grab(&target))
            .await
            .map_err(CoreError::from)??;
        Ok(self.store_capture(incident_id, shot).await?)
    }

    /// Stores a screen image grabbed already (the region overlay grabs the monitor first and
    /// crops it once the user has chosen) exactly as [`EvidenceService::capture`] stores its own:
    /// screenshot evidence with source `capture` on `incident_id`, else on the incident a
    /// window shows, else on the active incident, else on a new "Untriaged capture" incident.
    /// Without a named incident, `capture.created` on the change feed says where it went.
    pub async fn store_capture(
        &self,
        incident_id: Option<i64>,
        shot: Shot,
    ) -> Result<Captured, CoreError> {
        self.store_capture_filed(incident_id, shot, UploadFiling::default())
            .await
            .map(|(c, _)| c)
    }

    /// [`EvidenceService::store_capture`] with what the upload says about itself (a capture
    /// filed from another machine, see [`crate::filing`]); returns whether this call stored it.
    pub(crate) async fn store_capture_filed(
        &self,
        incident_id: Option<i64>,
        shot: Shot,
        filing: UploadFiling,
    ) -> Result<(Captured, bool), CoreError> {
        let shown = if incident_id.is_none() {
            self.incidents.shown()
        } else {
            None
        };
        let on_screen = match shown {
            Some(id) => match self.db.incident(id).await {
                Ok(i) => Some(i.id),
                Err(CoreError::NotFound(_)) => {
                    self.incidents.forget_shown(id);
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (id, created_incident, fell_back) = match incident_id.or(on_screen) {
            Some(id) => (id, false, false),
            None => match self.incidents.active().await? {
                Some(i) => (i.id, false, true),
                None => {
                    let i = self
                        .incidents
                        .create(NewIncident {
                            title: UNTRIAGED_TITLE.into(),
                            description: Some(format!(
                                "Opened by a screen capture ({}) while no incident was open.",
                                shot.label
                            )),
                            severity: Some(Severity::Medium),
                            status: Some(IncidentStatus::Triggered),
                        })
                        .await?;
                    (i.id, true, true)
                }
            },
        };
        let name = format!(
            "capture-{}-{}.png",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            slug(&shot.label)
        );
        tracing::info!(incident = id, target = %shot.label, width = shot.width,
            height = shot.height, bytes = shot.png.len(), "screen captured");
        let (evidence, stored) = self
            .store_screenshot(id, shot.png, Some(name), "capture", filing)
            .await?;
        if incident_id.is_none() && stored {
            self.feed.publish(vec![FeedChange {
                kind: FeedKind::Capture,
                op: FeedOp::Created,
                incident_id: id,
                id: evidence.id,
            }]);
        }
        let c = Captured {
            evidence,
            created_incident,
            shown_incident: shown,
            fell_back,
        };
        Ok((c, stored))
    }
}

/// A file-name-safe short form of a label ("window \"Grafana – API\"" → "window-grafana-api").
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_and_safe() {
        assert_eq!(slug("window \"Grafana – API\""), "window-grafana-api");
        assert_eq!(slug("region 10×20 at (1, 2)"), "region-10-20-at-1-2");
        assert!(slug(&"x".repeat(100)).len() <= 40);
    }
}
