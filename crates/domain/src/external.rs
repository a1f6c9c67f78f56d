//! What integrations bring in from other systems (PagerDuty incidents and log entries, GitHub
//! merges and deployments, monitoring alerts), in a shape the store can apply idempotently.
//!
//! Every item carries a key unique in its source (`pagerduty:log:R123`, `github:pr:o/r#2`), so
//! a second sync or a redelivered webhook finds it already there and adds nothing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{EvidenceType, IncidentSource, IncidentStatus, Severity, Timestamp};

/// An incident as another system sees it; matched to ours by `(source, external_id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalIncident {
    /// Which system.
    pub source: IncidentSource,
    /// Its id there (PagerDuty incident id, alert group key).
    pub external_id: String,
    /// Title.
    pub title: String,
    /// Description (link back, service name).
    pub description: String,
    /// Mapped severity.
    pub severity: Severity,
    /// Mapped status; a change on a later sync goes on the timeline.
    pub status: IncidentStatus,
}

/// What kind of change or signal an item is, for change correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A merge or deploy: a candidate cause.
    Change,
    /// An alert or anomaly start: a symptom.
    Alert,
    /// Anything else (log entries, notes).
    Other,
}

impl SignalKind {
    /// Spelling in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Change => "change",
            SignalKind::Alert => "alert",
            SignalKind::Other => "other",
        }
    }

    /// Parses the database spelling; unknown values read as `Other`.
    pub fn parse(s: &str) -> Self {
        match s {
            "change" => SignalKind::Change,
            "alert" => SignalKind::Alert,
            _ => SignalKind::Other,
        }
    }
}

/// Evidence an external item becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEvidence {
    /// `deployment`, `alert`, `log`, …
    pub evidence_type: EvidenceType,
    /// Short label.
    pub title: String,
    /// Text (JSON summary or readable lines).
    pub content: String,
    /// Where it came from (`pagerduty`, `github`, a URL).
    pub source: String,
}

/// One item (log entry, alert, merge, deployment) to put on an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalItem {
    /// Unique in its source; the idempotency key.
    pub key: String,
    /// When it happened there.
    pub occurred_at: Timestamp,
    /// Timeline line.
    pub message: String,
    /// Change, alert or other.
    pub signal: SignalKind,
    /// Evidence to attach (the timeline event then refers to it); `None` for timeline only.
    pub evidence: Option<ExternalEvidence>,
    /// For items that change at their source after they are first seen (a deployment gains
    /// statuses): compared as text, and an item already stored under the same key is replaced
    /// only by one with a greater version. `None` for items that never change: the first copy
    /// stays. This is what lets a webhook and a later sync (or the reverse) meet in one item.
    pub version: Option<String>,
}

/// What applying external data changed, so syncs can report counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyOutcome {
    /// The incident (ours) it went to.
    pub incident_id: i64,
    /// The incident was created now.
    pub created: bool,
    /// Its status or title changed.
    pub updated: bool,
    /// Items newly stored, or replaced by a newer version (unchanged ones are skipped).
    pub new_items: usize,
}

/// A stored external item, read back for correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    /// Its key.
    pub key: String,
    /// Change, alert or other.
    pub signal: SignalKind,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The evidence it became, if any.
    pub evidence_id: Option<i64>,
    /// Its timeline line (names the change in a hypothesis).
    pub message: String,
}
