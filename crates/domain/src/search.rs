//! What `GET /search` answers: hits of every kind, best first, and the same hits grouped by
//! the incident they belong to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{IncidentStatus, SearchKind, Severity};

/// One matching entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// What matched.
    pub kind: SearchKind,
    /// Id of the entry (of the evidence for a `finding`, of the incident for `incident` and
    /// `postmortem`).
    pub id: i64,
    /// The incident it belongs to.
    pub incident_id: i64,
    /// Title of the entry (a label such as `Note` for entries without one).
    pub title: String,
    /// The matching text with each match in `[` `]`; a token such as `v2.41.0` is marked
    /// whole, never in pieces.
    pub snippet: String,
    /// When the entry was written.
    pub at: DateTime<Utc>,
    /// Relevance (higher is better); comparable within one answer only.
    pub score: f64,
}

/// The hits of one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchGroup {
    /// The incident.
    pub incident_id: i64,
    /// Its title.
    pub title: String,
    /// Its status now.
    pub status: IncidentStatus,
    /// Its severity now.
    pub severity: Severity,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Its hits, best first.
    pub hits: Vec<SearchHit>,
}

/// Answer of `GET /search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// The query as received.
    pub query: String,
    /// Best first, at most `limit`.
    pub hits: Vec<SearchHit>,
    /// The same hits by incident; the incident with the best hit first.
    pub groups: Vec<SearchGroup>,
    /// False when more entries matched than were ranked: then the newest matches were
    /// ranked (see `ranked`) and older ones left out.
    pub complete: bool,
    /// How many matching entries were ranked.
    pub ranked: u32,
}
