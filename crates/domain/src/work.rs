//! The investigation around an incident: timeline, hypotheses, actions, and search hits.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ActionStatus, HypothesisOrigin, HypothesisStatus, OccurredAtSource, TimelineKind};
use chrono::{DateTime, Utc};

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEvent {
    /// Stable numeric id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// What happened.
    pub kind: TimelineKind,
    /// Human-readable line.
    pub message: String,
    /// When it happened (may be earlier than `created_at`, e.g. a spike read off a graph).
    pub occurred_at: DateTime<Utc>,
    /// Whether `occurred_at` was recorded, given by a person or read from the content.
    pub occurred_at_source: OccurredAtSource,
    /// Only in the answer to a write whose time had no zone: the zone it was taken in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_zone: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// The evidence it refers to, if any.
    pub evidence_id: Option<i64>,
    /// Chosen for the postmortem's timeline.
    pub pinned: bool,
    /// Who wrote it: a person's name, or the integration that brought it (`github`,
    /// `pagerduty`, `analysis`); `null` for entries from before authors were recorded.
    pub author: Option<String>,
}

/// Body of `POST /incidents/{id}/timeline`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTimelineEvent {
    /// What happened (1 to 2000 characters).
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
    /// When it happened: ISO-8601 with or without offset, `07:13`, `07:13:42Z` (a time
    /// without date is the latest such time not in the future; without zone it is UTC).
    /// Defaults to now.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// `note` (default) or `observation`.
    #[serde(default)]
    #[schema(schema_with = posted_timeline_kind)]
    pub kind: Option<TimelineKind>,
    /// Evidence on the same incident it refers to.
    #[serde(default)]
    pub evidence_id: Option<i64>,
}

/// A candidate explanation on the hypotheses board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hypothesis {
    /// Stable numeric id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The claim, e.g. "the 14:02 deploy exhausted the DB pool".
    pub statement: String,
    /// Standing on the board.
    pub status: HypothesisStatus,
    /// Who proposed it.
    pub origin: HypothesisOrigin,
    /// Evidence for or against it (ids on the same incident).
    pub evidence_ids: Vec<i64>,
    /// Who wrote it: a person's name, or the integration that brought it (`github`,
    /// `pagerduty`, `analysis`); `null` for entries from before authors were recorded.
    pub author: Option<String>,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /incidents/{id}/hypotheses`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHypothesis {
    /// The claim (1 to 2000 characters).
    #[schema(min_length = 1, max_length = 2000)]
    pub statement: String,
    /// Defaults to `proposed`.
    #[serde(default)]
    pub status: Option<HypothesisStatus>,
    /// Defaults to `human`.
    #[serde(default)]
    pub origin: Option<HypothesisOrigin>,
    /// Evidence on the same incident to link.
    #[serde(default)]
    pub evidence_ids: Vec<i64>,
}

/// Body of `PATCH /hypotheses/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HypothesisPatch {
    /// New wording.
    #[schema(min_length = 1, max_length = 2000)]
    pub statement: Option<String>,
    /// New standing.
    pub status: Option<HypothesisStatus>,
    /// Replaces the linked evidence.
    pub evidence_ids: Option<Vec<i64>>,
}

/// An action item (mitigation, follow-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Action {
    /// Stable numeric id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// What to do.
    pub title: String,
    /// Who does it (free text: a name, a handle, a team).
    pub owner: Option<String>,
    /// Progress.
    pub status: ActionStatus,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Who wrote it: a person's name, or the integration that brought it (`github`,
    /// `pagerduty`, `analysis`); `null` for entries from before authors were recorded.
    pub author: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /incidents/{id}/actions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    /// What to do (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// Who does it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Defaults to `open`.
    #[serde(default)]
    pub status: Option<ActionStatus>,
    /// When it is due.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
}

/// Body of `PATCH /actions/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionPatch {
    /// New wording.
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    /// New owner.
    pub owner: Option<String>,
    /// New progress.
    pub status: Option<ActionStatus>,
    /// New due date.
    pub due_at: Option<DateTime<Utc>>,
}

impl TimelineKind {
    /// The kinds a client may post; the others are recorded by OpsLens itself.
    pub const POSTABLE: &'static [TimelineKind] = &[TimelineKind::Note, TimelineKind::Observation];
}

/// Schema of [`NewTimelineEvent::kind`]: only [`TimelineKind::POSTABLE`] (or null).
fn posted_timeline_kind() -> utoipa::openapi::Object {
    use utoipa::openapi::{schema::SchemaType, ObjectBuilder, Type};
    let values = TimelineKind::POSTABLE
        .iter()
        .map(|k| serde_json::Value::from(k.as_str()))
        .chain([serde_json::Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .description(Some("`note` (default) or `observation`."))
        .build()
}
