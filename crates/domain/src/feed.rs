//! The change feed (`GET /api/v1/events`): one small event per committed change, naming what
//! changed so a client refetches just that instead of polling everything.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// An incident (its fields, status, severity; also its evidence count).
    Incident,
    /// A piece of evidence, including its analysis state and results.
    Evidence,
    /// A timeline entry.
    Timeline,
    /// A hypothesis.
    Hypothesis,
    /// An action item.
    Action,
    /// A screen capture filed without a named incident (the shortcut, the tray, a bare
    /// `POST /capture`): `id` is the new evidence, `incident_id` where it went. Announced
    /// beside its `evidence.created` so a window can say where the picture went.
    Capture,
}

impl FeedKind {
    /// The spelling in event types (`evidence` in `evidence.updated`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Incident => "incident",
            FeedKind::Evidence => "evidence",
            FeedKind::Timeline => "timeline",
            FeedKind::Hypothesis => "hypothesis",
            FeedKind::Action => "action",
            FeedKind::Capture => "capture",
        }
    }
}

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedOp {
    /// It was added.
    Created,
    /// It changed.
    Updated,
    /// It was removed.
    Deleted,
}

impl FeedOp {
    /// The spelling in event types (`updated` in `evidence.updated`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedOp::Created => "created",
            FeedOp::Updated => "updated",
            FeedOp::Deleted => "deleted",
        }
    }
}

/// One committed change, as the store records it inside the write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedChange {
    /// What kind of object.
    pub kind: FeedKind,
    /// Added, changed or removed.
    pub op: FeedOp,
    /// The incident it belongs to (the incident itself for incident changes).
    pub incident_id: i64,
    /// The object's id.
    pub id: i64,
}

/// One server-sent event of `GET /api/v1/events` (the `data:` line, JSON).
///
/// `type` is `{kind}.{op}` (`incident.created`, `evidence.updated`, `timeline.created`,
/// `hypothesis.updated`, `action.created`, `incident.deleted`, …), `ready` (the first event of
/// every stream: from here on nothing is missed, so a client refetches once what it shows) or
/// `resync` (the client fell behind and events were dropped: refetch everything it shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedEvent {
    /// Increases by one per change the server published (also the SSE `id:`); `ready` and
    /// `resync` carry the latest number published.
    pub seq: u64,
    /// `{kind}.{op}`, `ready` or `resync`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What kind of object changed (absent for `ready` and `resync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FeedKind>,
    /// The incident it belongs to (absent for `ready` and `resync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
    /// The object's id (absent for `ready` and `resync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

impl FeedEvent {
    /// The event announcing `c`, numbered `seq`.
    pub fn change(seq: u64, c: FeedChange) -> Self {
        FeedEvent {
            seq,
            event_type: format!("{}.{}", c.kind.as_str(), c.op.as_str()),
            kind: Some(c.kind),
            incident_id: Some(c.incident_id),
            id: Some(c.id),
        }
    }

    /// "You missed events: refetch everything."
    pub fn resync(seq: u64) -> Self {
        Self::signal(seq, "resync")
    }

    /// "Subscribed: nothing after `seq` will be missed."
    pub fn ready(seq: u64) -> Self {
        Self::signal(seq, "ready")
    }

    fn signal(seq: u64, event_type: &str) -> Self {
        FeedEvent {
            seq,
            event_type: event_type.into(),
            kind: None,
            incident_id: None,
            id: None,
        }
    }

    /// Whether a client following incident `incident_id` wants this event (`ready` and
    /// `resync` concern every client).
    pub fn concerns(&self, incident_id: i64) -> bool {
        self.incident_id.is_none_or(|i| i == incident_id)
    }
}
