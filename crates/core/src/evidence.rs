//! Evidence: text evidence, screenshots (validated, stored, handed to the analysis) and their
//! image files. Captures file their shots through here too (see [`crate::capture`]).

use std::sync::Arc;

use opslens_domain::{AnalysisState, Evidence, EvidencePatch, EvidenceType, NewEvidence};
use opslens_store::{NewImageEvidence, UploadFiling};
use tokio::sync::Semaphore;

use crate::analysis::AnalysisService;
use crate::db::Db;
use crate::incidents::IncidentService;
use crate::upload::validate_image;
use crate::validate::{checked, required, MAX_TITLE};
use crate::CoreError;

/// Concurrent image decodes; each may take up to the decode allocation cap.
const PARALLEL_DECODES: usize = 2;

/// The evidence use-case.
#[derive(Debug)]
pub struct EvidenceService {
    pub(crate) db: Db,
    decodes: Semaphore,
    /// Told about each stored screenshot; says whether a model is there to analyse it.
    analysis: Arc<AnalysisService>,
    /// Captures without an incident open one.
    pub(crate) incidents: Arc<IncidentService>,
    /// Where a capture says where it went (`capture.created`).
    pub(crate) feed: crate::feed::Feed,
}

impl EvidenceService {
    pub(crate) fn new(
        db: Db,
        analysis: Arc<AnalysisService>,
        incidents: Arc<IncidentService>,
        feed: crate::feed::Feed,
    ) -> Self {
        EvidenceService {
            db,
            decodes: Semaphore::new(PARALLEL_DECODES),
            analysis,
            incidents,
            feed,
        }
    }

    /// Adds text evidence (seed: `POST /evidence/incident/{id}`).
    pub async fn add_text(
        &self,
        incident_id: i64,
        new: NewEvidence,
    ) -> Result<Evidence, CoreError> {
        if new.evidence_type == EvidenceType::Screenshot {
            return Err(CoreError::Invalid(
                "screenshots are uploaded as files: POST /api/v1/evidence/incident/{id}/upload-screenshot (multipart field `file`)".into(),
            ));
        }
        let title = required("title", &new.title, MAX_TITLE)?;
        crate::validate::text("content", &new.content)?;
        let source = checked("source", new.source)?.unwrap_or_else(|| "api".into());
        // When it happened: the time given, else the earliest stamp in the text, else now.
        let (at, zone) =
            crate::event_time::evidence_time(new.occurred_at.as_deref(), &new.content)?;
        let mut ev = self
            .db
            .run(move |s| {
                let row = opslens_store::NewTextEvidence {
                    evidence_type: new.evidence_type,
                    title: &title,
                    content: &new.content,
                    source: &source,
                    occurred_at: at,
                };
                s.add_text_evidence_at(incident_id, &row)
            })
            .await?;
        ev.assumed_zone = zone;
        Ok(ev)
    }

    /// Validates and stores a screenshot and queues its analysis (never waits for it).
    pub async fn add_screenshot(
        &self,
        incident_id: i64,
        bytes: Vec<u8>,
        original_name: Option<String>,
        source: &str,
    ) -> Result<Evidence, CoreError> {
        self.store_screenshot(
            incident_id,
            bytes,
            original_name,
            source,
            UploadFiling::default(),
        )
        .await
        .map(|(ev, _)| ev)
    }

    /// [`EvidenceService::add_screenshot`] with what the upload says about itself (see
    /// [`crate::filing`]); returns whether this call stored the row.
    pub(crate) async fn store_screenshot(
        &self,
        incident_id: i64,
        bytes: Vec<u8>,
        original_name: Option<String>,
        source: &str,
        filing: UploadFiling,
    ) -> Result<(Evidence, bool), CoreError> {
        // Refuse unknown incidents before spending a decode on them.
        self.db.run(move |s| s.ensure_incident(incident_id)).await?;
        let image = {
            let _permit = self
                .decodes
                .acquire()
                .await
                .map_err(|e| CoreError::internal("the image decoder is shut down", e))?;
            tokio::task::spawn_blocking(move || validate_image(bytes)).await??
        };
        let original_name = original_name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(255)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty());
        let title = original_name
            .clone()
            .unwrap_or_else(|| format!("Screenshot {}×{}", image.width, image.height));
        let thumb = image.thumb;
        let new = NewImageEvidence {
            title,
            source: source.to_string(),
            bytes: image.bytes,
            ext: image.ext,
            mime: image.mime,
            width: image.width,
            height: image.height,
            original_name,
            analysis_state: if self.analysis.model_present() {
                AnalysisState::Queued
            } else {
                AnalysisState::WaitingForModel
            },
        };
        let (ev, created) = self
            .db
            .run(move |s| s.add_image_evidence_filed(incident_id, new, &filing))
            .await?;
        if !created {
            return Ok((ev, false));
        }
        // Outside the insert: a lost fingerprint write only delays it to the next backfill.
        let sha = ev.sha256.clone();
        if let Err(e) = self.db.run(move |s| s.put_fingerprint(&sha, &thumb)).await {
            tracing::warn!(evidence = ev.id, error = %e.chain(), "screenshot fingerprint not stored");
        }
        self.analysis.queued();
        Ok((ev, true))
    }

    /// One piece of evidence.
    pub async fn get(&self, id: i64) -> Result<Evidence, CoreError> {
        self.db.run(move |s| s.evidence(id)).await
    }

    /// Evidence of an incident.
    pub async fn of_incident(&self, incident_id: i64) -> Result<Vec<Evidence>, CoreError> {
        self.db.run(move |s| s.list_evidence(incident_id)).await
    }

    /// Asks the local model what changed from screenshot `before` to screenshot `after`
    /// (both stored images, checked at upload; decoded off the runtime).
    pub async fn compare(
        &self,
        before: i64,
        after: i64,
        question: Option<String>,
    ) -> Result<crate::analysis::compare::ScreenComparison, crate::analysis::summary::DraftError>
    {
        if before == after {
            return Err(CoreError::Invalid(format!(
                "with: compare screenshot #{before} with another screenshot, not itself"
            ))
            .into());
        }
        if let Some(q) = &question {
            crate::validate::checked("question", Some(q.clone()))?;
            if q.chars().count() > 2_000 {
                return Err(CoreError::Invalid("question: at most 2,000 characters".into()).into());
            }
        }
        let mut pictures = Vec::with_capacity(2);
        for (field, id) in [("id", before), ("with", after)] {
            let e = self.get(id).await?;
            if e.image.is_none() {
                return Err(CoreError::Invalid(format!(
                    "{field}: evidence #{id} is {}, not a screenshot",
                    e.evidence_type
                ))
                .into());
            }
            let (bytes, _) = self.image(id).await?;
            let img = tokio::task::spawn_blocking(move || image::load_from_memory(&bytes))
                .await
                .map_err(CoreError::from)?
                .map_err(|e| {
                    CoreError::internal(format!("screenshot #{id} cannot be decoded"), e)
                })?;
            pictures.push((id, img));
        }
        let after_pic = pictures.pop().expect("two pictures");
        let before_pic = pictures.pop().expect("two pictures");
        self.analysis.compare(before_pic, after_pic, question).await
    }

    /// The local file of a screenshot's image (fetched from the shared bucket into the cache
    /// first when there is one) and its MIME type: the image route streams it from there
    /// rather than holding a 20 MB picture in memory per request. The file is named
    /// `<sha256>.<ext>`, so its stem is a strong validator of its bytes.
    pub async fn image_file(&self, id: i64) -> Result<(std::path::PathBuf, String), CoreError> {
        self.db.run(move |s| s.evidence_image(id)).await
    }

    /// The stored image of a screenshot: bytes and MIME type.
    pub async fn image(&self, id: i64) -> Result<(Vec<u8>, String), CoreError> {
        let (path, mime) = self.image_file(id).await?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            CoreError::internal(format!("image file {} unreadable", path.display()), e)
        })?;
        Ok((bytes, mime))
    }

    /// Relabels evidence or sets the time it happened (a person's time: kept for good).
    pub async fn update_evidence(
        &self,
        id: i64,
        patch: EvidencePatch,
    ) -> Result<Evidence, CoreError> {
        let title = match &patch.title {
            Some(t) => Some(required("title", t, 500)?),
            None => None,
        };
        let at = crate::event_time::given_time(patch.occurred_at.as_deref())?;
        let time = at.as_ref().map(|p| p.at);
        let mut ev = self
            .db
            .run(move |s| s.update_evidence(id, title.as_deref(), time))
            .await?;
        ev.assumed_zone = at.and_then(|p| p.assumed_zone);
        Ok(ev)
    }
}
