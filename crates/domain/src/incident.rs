//! Incidents and the requests that create, change and list them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{IncidentSource, IncidentStatus, Severity};
use chrono::{DateTime, Utc};

/// An incident: the unit everything else (evidence, timeline, hypotheses, actions) hangs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// Stable numeric id, short enough to type in the CLI.
    pub id: i64,
    /// One-line summary.
    pub title: String,
    /// Longer context; empty when none was given.
    pub description: String,
    /// How bad it is.
    pub severity: Severity,
    /// Where it is in its lifecycle.
    pub status: IncidentStatus,
    /// Who or what opened it.
    pub source: IncidentSource,
    /// Id in the source system (PagerDuty id, webhook dedup key) for idempotent syncs.
    pub external_id: Option<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last change of any field.
    pub updated_at: DateTime<Utc>,
    /// When it first left `triggered`.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When it became mitigated, or resolved without a mitigated step (cleared if reopened).
    pub mitigated_at: Option<DateTime<Utc>>,
    /// When it became resolved (cleared if reopened).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Time to acknowledge, from opening to `acknowledged_at`, in seconds.
    pub tta_seconds: Option<i64>,
    /// Time to mitigate, from opening to `mitigated_at`, in seconds.
    pub ttm_seconds: Option<i64>,
    /// Time to resolve, from opening to `resolved_at`, in seconds.
    pub ttr_seconds: Option<i64>,
    /// When the next status update is due (from the latest update), if one was promised.
    pub next_update_at: Option<DateTime<Utc>>,
    /// Number of evidence items attached.
    pub evidence_count: i64,
    /// Set once this incident was merged into another: everything moved there, and the UI
    /// follows this to the target.
    #[serde(default)]
    pub merged_into: Option<i64>,
    /// Only on `GET /incidents/{id}`: an open incident this one probably duplicates (same
    /// service and alert within the hour, or a near-identical screenshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possible_duplicate_of: Option<crate::DuplicateHint>,
}

/// Body of `POST /incidents`, as in the seed guide.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// One-line summary (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// Optional longer context.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to `medium`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Defaults to `triggered`.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
}

/// Body of `PATCH /incidents/{id}`: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    /// New title.
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New severity (adds a timeline event).
    pub severity: Option<Severity>,
    /// New status (adds a timeline event, sets `acknowledged_at`/`resolved_at`).
    pub status: Option<IncidentStatus>,
}

/// Query of `GET /incidents`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentFilter {
    /// Only incidents with this status.
    pub status: Option<IncidentStatus>,
    /// Only incidents with this severity.
    pub severity: Option<Severity>,
    /// Full-text query over title and description.
    pub q: Option<String>,
    /// `true`: only incidents not resolved or closed (what the UI lists by default).
    pub open: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u32>,
}

impl IncidentFilter {
    /// Largest page a client can ask for; bigger lists should be paged, not streamed at once.
    pub const MAX_LIMIT: u32 = 200;

    /// The page size actually used.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, Self::MAX_LIMIT)
    }
}

/// A page of results with what is needed to fetch the next one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// This page.
    pub items: Vec<T>,
    /// Matches across all pages.
    pub total: i64,
    /// Page size used.
    pub limit: u32,
    /// Offset used.
    pub offset: u32,
}
