//! Status updates for stakeholders: validated in full before anything is written, then the
//! incident's status (when the update changes it) and the update itself.

use opslens_domain::{IncidentPatch, NewStatusUpdate, StatusUpdate};
use opslens_store::StatusUpdateRow;

use crate::command::CommandService;
use crate::validate::required;
use crate::when::parse_due;
use crate::CoreError;

const MAX_UPDATE: usize = 4000;

impl CommandService {
    /// Status updates of an incident, oldest first.
    pub async fn status_updates(&self, incident_id: i64) -> Result<Vec<StatusUpdate>, CoreError> {
        self.db.run(move |s| s.status_updates(incident_id)).await
    }

    /// Posts a status update: on the timeline, the next-due time on the incident, and out
    /// through the outbox to every configured destination as `incident.status_update`.
    pub async fn post_status_update(
        &self,
        incident_id: i64,
        new: NewStatusUpdate,
    ) -> Result<StatusUpdate, CoreError> {
        let text = required("text", &new.text, MAX_UPDATE)?;
        crate::validate::optional_text("impact", new.impact.as_deref())?;
        let impact = new
            .impact
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        if impact.chars().count() > MAX_UPDATE {
            return Err(CoreError::Invalid(format!(
                "impact must be at most {MAX_UPDATE} characters"
            )));
        }
        let zone = chrono::FixedOffset::east_opt(0).expect("zero offset");
        let next_update_at = new
            .next_update_at
            .as_deref()
            .map(|s| parse_due("next_update_at", s, zone, chrono::Utc::now()))
            .transpose()?;
        // A deleted incident is a 404 before anything changes.
        let current = self.db.incident(incident_id).await?;
        if let Some(st) = new.status.filter(|s| *s != current.status) {
            let patch = IncidentPatch {
                status: Some(st),
                ..Default::default()
            };
            self.incidents.update(incident_id, patch).await?;
        }
        let row = StatusUpdateRow {
            text,
            impact,
            next_update_at,
        };
        self.db
            .run(move |s| s.add_status_update(incident_id, &row))
            .await
    }
}
