//! Memory across incidents: similar past incidents, likely duplicates and merging, and
//! redacted copies of screenshots for sharing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{IncidentStatus, Severity};
use chrono::{DateTime, Utc};

/// Answer of `GET /incidents/{id}/similar`: past incidents like this one, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimilarIncidents {
    /// The incident asked about.
    pub incident_id: i64,
    /// An open incident this one probably duplicates (the UI offers to merge), if any.
    pub possible_duplicate_of: Option<DuplicateHint>,
    /// Ranked hits, best first (at most `limit`).
    pub items: Vec<SimilarHit>,
}

/// One similar incident and why it was ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimilarHit {
    /// The other incident.
    pub incident_id: i64,
    /// Its title.
    pub title: String,
    /// Its status (a resolved one has a postmortem and actions worth reading).
    pub status: IncidentStatus,
    /// Its severity.
    pub severity: Severity,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Blended score in 0..=1: text similarity, screenshot similarity and same service.
    pub score: f64,
    /// Cosine similarity of the two incidents' text (tf-idf over title, description,
    /// evidence, findings, errors), 0..=1.
    pub text_score: f64,
    /// Best perceptual similarity between a screenshot of each, 0..=1 (`null` when one of
    /// them has none).
    pub image_score: Option<f64>,
    /// Terms both share that weighed most, best first.
    pub shared_terms: Vec<String>,
    /// The service both name (e.g. `checkout-api`), if they share one.
    pub same_service: Option<String>,
    /// The screenshot pair behind `image_score`.
    pub image_match: Option<ImageMatch>,
    /// Why, in words: "dashboard 92% similar to #14's", "shares: oom, checkout-api", "same
    /// service checkout-api".
    pub reasons: Vec<String>,
    /// Whether the other incident has a postmortem written.
    pub has_postmortem: bool,
    /// Its action items, as titles (what was done last time).
    pub actions: Vec<String>,
    /// Web UI link to the other incident.
    pub link: String,
    /// Web UI link to its postmortem.
    pub postmortem_link: String,
}

/// The two screenshots that looked alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageMatch {
    /// Screenshot evidence of the asked incident.
    pub evidence_id: i64,
    /// Screenshot evidence of the similar incident.
    pub other_evidence_id: i64,
    /// Perceptual similarity, 0..=1.
    pub similarity: f64,
}

/// Why an incident looks like a duplicate of an open one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DuplicateHint {
    /// The open incident it probably duplicates (the merge target).
    pub incident_id: i64,
    /// Its title.
    pub title: String,
    /// The rule that fired, in words.
    pub reason: String,
}

/// Body of `POST /incidents/{id}/merge`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The open incident that receives everything.
    pub into: i64,
}

/// Answer of a merge: the target after it, and what moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MergeOutcome {
    /// The incident merged away (its reads now name `merged_into`).
    pub merged: i64,
    /// The target, after the merge.
    pub into: crate::Incident,
    /// Evidence rows moved.
    pub evidence: i64,
    /// Timeline entries moved.
    pub timeline: i64,
    /// Hypotheses moved.
    pub hypotheses: i64,
    /// Action items moved.
    pub actions: i64,
}

/// A rectangle to black out, in image pixels (origin top left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width (at least 1).
    pub width: u32,
    /// Height (at least 1).
    pub height: u32,
}

/// Body of `POST /evidence/{id}/redactions`: the boxes replace any earlier redaction.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionRequest {
    /// Boxes to black out (1 to 200), in the original image's pixels.
    pub boxes: Vec<RedactionBox>,
}

/// A screenshot's redacted copy: what exports and posts use instead of the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Redaction {
    /// SHA-256 of the redacted PNG (`GET /evidence/{id}/image?variant=redacted`).
    pub sha256: String,
    /// The boxes blacked out.
    pub boxes: Vec<RedactionBox>,
    /// When it was made.
    pub redacted_at: DateTime<Utc>,
}

/// Something on a screenshot that looks sensitive, from its analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RedactionSuggestion {
    /// `email`, `ip`, `secret` or `customer_id` (or a configured pattern's name).
    pub kind: String,
    /// The text that matched.
    pub text: String,
    /// Where it is, when the model gave coordinates; `null`: a text-only warning (the
    /// analysis gives no boxes, so the user draws one).
    pub region: Option<RedactionBox>,
}
