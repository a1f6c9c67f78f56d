//! Status updates: what stakeholders are told, in a fixed shape, and when they hear next.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::IncidentStatus;

/// One status update, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusUpdate {
    /// Stable numeric id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The incident's status when it was written.
    pub status: IncidentStatus,
    /// Who is affected and how (may be empty).
    pub impact: String,
    /// What is known and being done.
    pub text: String,
    /// When the next update is due; the incident shows it (overdue in red).
    pub next_update_at: Option<DateTime<Utc>>,
    /// Who wrote it.
    pub author: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /incidents/{id}/updates`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStatusUpdate {
    /// What is known and being done (1 to 4000 characters).
    #[schema(min_length = 1, max_length = 4000)]
    pub text: String,
    /// Who is affected and how.
    #[serde(default)]
    pub impact: Option<String>,
    /// A new status for the incident, set along with the update; default: unchanged.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// When the next update is due: `30m`, `1h`, `07:45` (the next such time, UTC without a
    /// zone) or ISO-8601; at most a week ahead.
    #[serde(default)]
    pub next_update_at: Option<String>,
}
