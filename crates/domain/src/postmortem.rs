//! The postmortem of an incident: a document in fixed sections, versioned so two tabs never
//! overwrite each other, and edits of the timeline it is built from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The sections of a postmortem, as people write them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmortemSections {
    /// What happened, in a few sentences.
    #[serde(default)]
    pub summary: String,
    /// Who was affected, how, and for how long.
    #[serde(default)]
    pub impact: String,
    /// Why it happened.
    #[serde(default)]
    pub root_cause: String,
    /// What made it worse or more likely.
    #[serde(default)]
    pub contributing_factors: String,
    /// What went well.
    #[serde(default)]
    pub went_well: String,
    /// What went badly.
    #[serde(default)]
    pub went_badly: String,
    /// The timeline worth telling (pre-filled from pinned entries).
    #[serde(default)]
    pub timeline: Vec<PostmortemEntry>,
    /// Follow-up actions (pre-filled from the action items).
    #[serde(default)]
    pub follow_ups: Vec<String>,
}

/// One line of the postmortem's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmortemEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub text: String,
}

/// A stored postmortem, or (version 0, `draft`) the template pre-filled from the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Postmortem {
    /// The incident.
    pub incident_id: i64,
    /// Bumped by every save; a save must name the version it edited.
    pub version: i64,
    /// True while nothing was saved: the sections are the pre-filled template.
    pub draft: bool,
    /// The document.
    pub sections: PostmortemSections,
    /// Who saved it last.
    pub author: Option<String>,
    /// When it was saved last.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Body of `PUT /incidents/{id}/postmortem`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmortemSave {
    /// The version this edit started from (0 for the first save); a stale one is 409.
    pub version: i64,
    /// The whole document.
    pub sections: PostmortemSections,
}

/// Body of `PATCH /timeline/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelinePatch {
    /// New wording (notes and observations only).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub message: Option<String>,
    /// New time, as in `NewTimelineEvent` (notes and observations only).
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// Pin it to the postmortem's timeline, or unpin it.
    #[serde(default)]
    pub pinned: Option<bool>,
}
