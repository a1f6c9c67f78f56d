//! Evidence: logs, metrics, deployments, alerts, notes and analysed screenshots.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AnalysisState, EvidenceType, OccurredAtSource};
use chrono::{DateTime, Utc};

/// A piece of evidence on an incident.
///
/// For screenshots `content` stays empty until the analysis is done (the seed guide's client
/// polls for it); `analysis_state` says why it is still empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// Stable numeric id.
    pub id: i64,
    /// The incident it belongs to.
    pub incident_id: i64,
    /// What kind of evidence this is.
    pub evidence_type: EvidenceType,
    /// Short label.
    pub title: String,
    /// The text: the log lines, the note, or the analysis of a screenshot as readable text.
    pub content: String,
    /// Where it came from (a tool, a URL, "upload", "capture").
    pub source: String,
    /// SHA-256 (hex) of the payload: the image bytes for screenshots, `content` otherwise.
    pub sha256: String,
    /// The stored image, for screenshots.
    pub image: Option<ImageInfo>,
    /// Analysis progress, for screenshots; `null` for text evidence.
    pub analysis_state: Option<AnalysisState>,
    /// Model that produced the findings.
    pub analysis_model: Option<String>,
    /// Why the analysis failed, when it did.
    pub analysis_error: Option<String>,
    /// How long the analysis took.
    pub analysis_ms: Option<i64>,
    /// Structured findings (summary, panels, anomalies, errors, times) from the analysis.
    #[schema(value_type = Option<Object>)]
    pub findings: Option<serde_json::Value>,
    /// When what it shows happened; the timeline sorts by this.
    pub occurred_at: DateTime<Utc>,
    /// Whether `occurred_at` was recorded, given by a person or read from the content.
    pub occurred_at_source: OccurredAtSource,
    /// Only in the answer to a write whose time had no zone: the zone it was taken in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_zone: Option<String>,
    /// Who wrote it: a person's name, or the integration that brought it (`github`,
    /// `pagerduty`, `analysis`); `null` for entries from before authors were recorded.
    pub author: Option<String>,
    /// When it was attached.
    pub created_at: DateTime<Utc>,
    /// Last change (e.g. analysis finished).
    pub updated_at: DateTime<Utc>,
    /// The redacted copy of a screenshot, when one was made: exports and posts use it.
    #[serde(default)]
    pub redaction: Option<crate::Redaction>,
}

/// Facts about a stored image; the bytes themselves are at `GET /evidence/{id}/image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    /// `image/png`, `image/jpeg` or `image/webp`, from the bytes, never from the client.
    pub mime: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Size of the stored file.
    pub bytes: i64,
    /// The client's file name, kept as a label only (never used as a path).
    pub original_name: Option<String>,
}

/// Body of `POST /evidence/incident/{id}`, as in the seed guide.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvidence {
    /// `log`, `metric`, `deployment`, `alert` or `note` (screenshots go through the upload route).
    #[schema(schema_with = text_evidence_type)]
    pub evidence_type: EvidenceType,
    /// Short label (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// The text itself.
    #[serde(default)]
    pub content: String,
    /// Where it came from.
    #[serde(default)]
    pub source: Option<String>,
    /// When it happened: ISO-8601 with or without offset, `07:13`, `07:13:42Z` (a time
    /// without date is the latest such time not in the future; without zone it is UTC).
    /// Omitted: read from the content's earliest time stamp, else now.
    #[serde(default)]
    pub occurred_at: Option<String>,
}

/// Body of `PATCH /evidence/{id}`: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidencePatch {
    /// New label.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    /// When it happened, as in `NewEvidence`; overrides a derived time for good.
    #[serde(default)]
    pub occurred_at: Option<String>,
}

/// One run of the model over a screenshot: the full analysis, or an answer to a question.
///
/// Jobs live in SQLite so a restart resumes the queue; the evidence's `analysis_state` mirrors
/// its latest full-analysis job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalysisJob {
    /// Job id.
    pub id: i64,
    /// The screenshot analysed.
    pub evidence_id: i64,
    /// The question asked; `null` for the full analysis that fills the evidence's findings.
    pub question: Option<String>,
    /// `queued`, `running`, `done` or `failed`.
    pub state: AnalysisState,
    /// How many times it was started (more than one after an interrupted run).
    pub attempts: i64,
    /// Model that ran it.
    pub model: Option<String>,
    /// For questions: the model's answer.
    pub answer: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Timings in ms (`load_ms`, `vision_ms`, `prefill_ms`, `decode_ms`, `total_ms`) and token
    /// counts.
    #[schema(value_type = Option<Object>)]
    pub timings: Option<serde_json::Value>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When its latest attempt began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Which worker holds (or last held) the job: `app@host` for the app's own loop,
    /// `worker@host:pid` for an `opslens worker` process; several may share one queue.
    #[serde(default)]
    pub worker: Option<String>,
    /// Where it ran: the compute device (`cpu`, `cuda:0`) or the remote server's URL.
    #[serde(default)]
    pub device: Option<String>,
    /// Until when the worker's lease runs; a job still `running` past it is taken over by
    /// another worker (its holder died). `null` once finished.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
}

/// Body of `POST /evidence/{id}/analyze`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// A question about the screenshot ("what happened at 14:05?"); without one the full
    /// analysis runs again and replaces the findings.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub question: Option<String>,
}

/// Schema of [`NewEvidence::evidence_type`]: every type but `screenshot`, which the server
/// refuses on this route (images are uploaded as files), so a client built from the spec never
/// offers it.
fn text_evidence_type() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(
            EvidenceType::ALL
                .iter()
                .filter(|t| **t != EvidenceType::Screenshot)
                .map(|t| t.as_str()),
        ))
        .description(Some(
            "`log`, `metric`, `deployment`, `alert` or `note` (screenshots go through the upload route).",
        ))
        .build()
}
