//! Screenshots filed from another machine: the desktop app pointed at a team server uploads
//! its captures here. An upload may carry an idempotency key (a repeat after a lost answer
//! returns the first row instead of adding a second), the time it was captured (it may have
//! waited on the laptop while the server was unreachable) and findings the laptop's own model
//! made (recorded as that machine's finished analysis, so no worker here runs it again).

use chrono::{DateTime, Utc};
use opslens_domain::{Evidence, Shot};
use opslens_store::{AnalysisOutcome, FinishedAnalysis, UploadFiling};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::findings::{self, Findings};
use crate::analysis::times;
use crate::capture::Captured;
use crate::evidence::EvidenceService;
use crate::validate::{max_chars, text};
use crate::CoreError;

/// Longest idempotency key accepted.
pub const MAX_KEY_CHARS: usize = 200;
/// Longest model text (`findings.raw`) accepted with an upload.
pub const MAX_RAW_CHARS: usize = 64 * 1024;
/// Largest `analysis` part accepted, in bytes.
pub const MAX_ANALYSIS_BYTES: usize = 256 * 1024;

/// Findings made on another machine, sent with the screenshot they describe (multipart part
/// `analysis`, JSON). The server keeps them as that machine's finished analysis.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MadeElsewhere {
    /// The findings, as the laptop's parser read its model's text (`raw` keeps the text).
    pub findings: Findings,
    /// The model that made them (manifest id, e.g. `qwen3-vl-2b-instruct`).
    pub model: String,
    /// The machine that ran it (recorded as the analysis job's worker, e.g. `laptop@alice-x1`).
    pub machine: String,
    /// Where it ran there (`cpu`, `cuda:0`).
    #[serde(default)]
    pub device: Option<String>,
    /// How long the run took, in milliseconds.
    #[schema(minimum = 0)]
    pub ms: i64,
}

impl MadeElsewhere {
    /// Checks the fields a person or a tool reads later; the findings' lists are bounded by
    /// the part's size.
    pub fn validate(&self) -> Result<(), CoreError> {
        for (field, v) in [
            ("analysis.model", &self.model),
            ("analysis.machine", &self.machine),
        ] {
            text(field, v)?;
            max_chars(field, v, 200)?;
            if v.trim().is_empty() {
                return Err(CoreError::Invalid(format!("{field} must not be empty")));
            }
        }
        if let Some(d) = &self.device {
            text("analysis.device", d)?;
            max_chars("analysis.device", d, 200)?;
        }
        if self.ms < 0 {
            return Err(CoreError::Invalid("analysis.ms must be 0 or more".into()));
        }
        max_chars("analysis.findings.raw", &self.findings.raw, MAX_RAW_CHARS)?;
        Ok(())
    }

    /// The finished job to record: content and timeline events made here from the findings
    /// (so their wording and time placement are this server's), `taken_at` the picture's day.
    fn finished(self, taken_at: DateTime<Utc>) -> FinishedAnalysis {
        let events = times::events(&self.findings, taken_at);
        FinishedAnalysis {
            timings: serde_json::json!({ "total_ms": self.ms, "made_on": self.machine }),
            raw_output: self.findings.raw.clone(),
            outcome: AnalysisOutcome::Findings {
                content: findings::render(&self.findings),
                findings: serde_json::to_value(&self.findings).unwrap_or_default(),
                ms: self.ms,
                events,
            },
            model: self.model,
            worker: Some(self.machine),
            device: self.device,
        }
    }
}

/// What an upload says about itself beyond the image.
#[derive(Debug, Clone, Default)]
pub struct Filing {
    /// `Idempotency-Key`: a repeat with the same key and image returns the first row.
    pub key: Option<String>,
    /// When the picture was taken (default: now).
    pub captured_at: Option<DateTime<Utc>>,
    /// Findings made elsewhere.
    pub analysis: Option<MadeElsewhere>,
}

/// Checks an idempotency key: 1 to 200 visible ASCII characters (a UUID fits; nothing a log
/// line or a header could mangle).
pub fn check_key(key: &str) -> Result<(), CoreError> {
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::Invalid(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters (a UUID, say)"
        )));
    }
    Ok(())
}

impl Filing {
    fn validate(&self) -> Result<(), CoreError> {
        if let Some(k) = &self.key {
            check_key(k)?;
        }
        if let Some(a) = &self.analysis {
            a.validate()?;
        }
        Ok(())
    }

    /// The store's form, taking the findings out.
    fn into_store(self) -> UploadFiling {
        let taken = self.captured_at.unwrap_or_else(Utc::now);
        UploadFiling {
            key: self.key,
            captured_at: self.captured_at,
            analysis: self.analysis.map(|a| a.finished(taken)),
        }
    }
}

impl EvidenceService {
    /// The screenshot an earlier upload with `key` stored, when it was the same image; a key
    /// used for another image is a conflict. Checked before decoding, so a repeat costs a hash.
    async fn repeat_of(&self, key: &str, bytes: &[u8]) -> Result<Option<Evidence>, CoreError> {
        let k = key.to_string();
        let Some(ev) = self.db.run(move |s| s.evidence_by_upload_key(&k)).await? else {
            return Ok(None);
        };
        if ev.sha256 != opslens_store::blobs::sha256_hex(bytes) {
            return Err(CoreError::Conflict(format!(
                "Idempotency-Key {key:?} was used for another image (evidence {}); send a new key for a new upload",
                ev.id
            )));
        }
        Ok(Some(ev))
    }

    /// [`EvidenceService::add_screenshot`] with a [`Filing`]: returns the evidence and whether
    /// this call stored it (`false`: a repeat of the key, answered with the first row).
    pub async fn file_screenshot(
        &self,
        incident_id: i64,
        bytes: Vec<u8>,
        original_name: Option<String>,
        source: &str,
        filing: Filing,
    ) -> Result<(Evidence, bool), CoreError> {
        filing.validate()?;
        if let Some(k) = &filing.key {
            if let Some(ev) = self.repeat_of(k, &bytes).await? {
                return Ok((ev, false));
            }
        }
        self.store_screenshot(
            incident_id,
            bytes,
            original_name,
            source,
            filing.into_store(),
        )
        .await
    }

    /// A screen capture made on another machine (`POST /captures`): filed like a capture here
    /// (on `incident_id`, else the incident a window shows, else the active one, else a new
    /// "Untriaged capture"), with source `capture`. A repeat of the key returns the first
    /// evidence before any incident is chosen, so it opens nothing.
    pub async fn file_capture(
        &self,
        incident_id: Option<i64>,
        bytes: Vec<u8>,
        label: String,
        filing: Filing,
    ) -> Result<(Captured, bool), CoreError> {
        filing.validate()?;
        if let Some(k) = &filing.key {
            if let Some(ev) = self.repeat_of(k, &bytes).await? {
                let c = Captured {
                    evidence: ev,
                    created_incident: false,
                    shown_incident: None,
                    fell_back: false,
                };
                return Ok((c, false));
            }
        }
        if let Some(id) = incident_id {
            self.db.incident(id).await?;
        }
        let shot = Shot {
            png: bytes,
            width: 0,
            height: 0,
            label,
        };
        self.store_capture_filed(incident_id, shot, filing.into_store())
            .await
    }
}
