//! The verbs of OpsLens, async, validated, with SQLite and image decoding on blocking threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opslens_domain::{
    Action, ActionPatch, AnalysisState, Evidence, EvidenceType, Hypothesis, HypothesisPatch,
    Incident, IncidentFilter, IncidentPatch, IncidentSource, IncidentStatus, NewAction,
    NewEvidence, NewHypothesis, NewIncident, NewTimelineEvent, Page, SearchHit, Severity,
    TimelineEvent,
};
use opslens_store::{NewImageEvidence, NewIncidentRow, Store, StoreError};
use tokio::sync::Semaphore;

use crate::upload::validate_image;
use crate::CoreError;

/// Concurrent image decodes; each may take up to the decode allocation cap.
const PARALLEL_DECODES: usize = 2;
const MAX_TITLE: usize = 500;
const MAX_TEXT: usize = 2000;

/// Where the services keep their state.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Data dir holding `opslens.db`, `blobs/`, `api-token`, `secrets.env`.
    pub data_dir: PathBuf,
    /// Whether integration keys are also looked up in the process environment and the OS
    /// keychain, before `secrets.env` (true in the app; tests turn it off so a developer's
    /// `GITHUB_TOKEN` or keychain cannot leak into them).
    pub secrets_from_env: bool,
    /// Which model analyses screenshots and where models live.
    pub analysis: crate::analysis::AnalysisConfig,
}

/// Shared application services; one per process, behind an `Arc`.
#[derive(Debug)]
pub struct Services {
    store: Arc<Store>,
    data_dir: PathBuf,
    decodes: Semaphore,
    /// Integration config and clients, read once at start.
    pub(crate) integ: crate::integrations::Integrations,
    /// Model, engine state and pulls.
    pub(crate) analysis: crate::analysis::Analysis,
    /// Committed changes, for `GET /api/v1/events`.
    feed: crate::feed::Feed,
}

pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<String, CoreError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CoreError::Invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(CoreError::Invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(v.to_string())
}

impl Services {
    /// Opens the store in the data dir (migrating it) on a blocking thread.
    pub async fn open(cfg: ServicesConfig) -> Result<Arc<Self>, CoreError> {
        let dir = cfg.data_dir.clone();
        let mut store = tokio::task::spawn_blocking(move || Store::open(&dir))
            .await?
            .map_err(|e| match e {
                StoreError::TooNew { .. } => CoreError::Conflict(e.to_string()),
                e => CoreError::Internal(format!(
                    "cannot open the database in {}: {e}",
                    cfg.data_dir.display()
                )),
            })?;
        crate::people::ensure_local_user(&store)?;
        let integ = crate::integrations::Integrations::new(opslens_integrations::Config::load(
            &cfg.data_dir,
            cfg.secrets_from_env,
        ));
        store.set_notifier(Arc::new(crate::notify::Announcer::new(
            &integ.cfg,
            integ.wake.clone(),
        )));
        let feed = crate::feed::Feed::default();
        store.set_feed(Arc::new(feed.clone()));
        let services = Arc::new(Services {
            store: Arc::new(store),
            data_dir: cfg.data_dir,
            decodes: Semaphore::new(PARALLEL_DECODES),
            integ,
            analysis: crate::analysis::Analysis::new(cfg.analysis),
            feed,
        });
        crate::outbox::spawn_worker(&services);
        crate::analysis::spawn_worker(&services);
        Ok(services)
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The change feed: subscribe to hear about every committed change.
    pub fn feed(&self) -> &crate::feed::Feed {
        &self.feed
    }

    /// Runs a store call on a blocking thread.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }

    /// Opens an incident (seed: `POST /incidents`).
    pub async fn create_incident(&self, new: NewIncident) -> Result<Incident, CoreError> {
        let row = NewIncidentRow {
            title: required("title", &new.title, MAX_TITLE)?,
            description: new.description.unwrap_or_default(),
            severity: new.severity.unwrap_or(Severity::Medium),
            status: new.status.unwrap_or(IncidentStatus::Triggered),
            source: IncidentSource::Manual,
            external_id: None,
        };
        self.db(move |s| s.create_incident(row)).await
    }

    /// One incident.
    pub async fn incident(&self, id: i64) -> Result<Incident, CoreError> {
        self.db(move |s| s.incident(id)).await
    }

    /// Filtered, paginated incidents.
    pub async fn incidents(&self, filter: IncidentFilter) -> Result<Page<Incident>, CoreError> {
        self.db(move |s| s.list_incidents(&filter)).await
    }

    /// Changes an incident.
    pub async fn update_incident(
        &self,
        id: i64,
        mut patch: IncidentPatch,
    ) -> Result<Incident, CoreError> {
        if let Some(t) = &patch.title {
            patch.title = Some(required("title", t, MAX_TITLE)?);
        }
        self.db(move |s| s.update_incident(id, &patch)).await
    }

    /// Deletes an incident and all attached to it.
    pub async fn delete_incident(&self, id: i64) -> Result<(), CoreError> {
        self.db(move |s| s.delete_incident(id)).await
    }

    /// Adds text evidence (seed: `POST /evidence/incident/{id}`).
    pub async fn add_evidence(
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
        let source = new.source.unwrap_or_else(|| "api".into());
        let (at, zone) =
            crate::event_time::evidence_time(new.occurred_at.as_deref(), &new.content)?;
        let mut ev = self
            .db(move |s| {
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
        // Refuse unknown incidents before spending a decode on them.
        self.incident(incident_id).await?;
        let image = {
            let _permit = self
                .decodes
                .acquire()
                .await
                .map_err(|e| CoreError::Internal(e.to_string()))?;
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
        let new = NewImageEvidence {
            title,
            source: source.to_string(),
            bytes: image.bytes,
            ext: image.ext,
            mime: image.mime,
            width: image.width,
            height: image.height,
            original_name,
            analysis_state: if self.model_present() {
                AnalysisState::Queued
            } else {
                AnalysisState::WaitingForModel
            },
        };
        let ev = self
            .db(move |s| s.add_image_evidence(incident_id, new))
            .await?;
        self.analysis_queued();
        Ok(ev)
    }

    /// One piece of evidence.
    pub async fn evidence(&self, id: i64) -> Result<Evidence, CoreError> {
        self.db(move |s| s.evidence(id)).await
    }

    /// Evidence of an incident.
    pub async fn evidence_of(&self, incident_id: i64) -> Result<Vec<Evidence>, CoreError> {
        self.db(move |s| s.list_evidence(incident_id)).await
    }

    /// The stored image of a screenshot: bytes and MIME type.
    pub async fn evidence_image(&self, id: i64) -> Result<(Vec<u8>, String), CoreError> {
        let (path, mime) = self.db(move |s| s.evidence_image(id)).await?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            CoreError::Internal(format!("image file {} unreadable: {e}", path.display()))
        })?;
        Ok((bytes, mime))
    }

    /// Timeline of an incident.
    pub async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEvent>, CoreError> {
        self.db(move |s| s.timeline(incident_id)).await
    }

    /// Adds a note or observation to the timeline.
    pub async fn add_timeline_event(
        &self,
        incident_id: i64,
        mut new: NewTimelineEvent,
    ) -> Result<TimelineEvent, CoreError> {
        new.message = required("message", &new.message, MAX_TEXT)?;
        if let Some(k) = new.kind {
            use opslens_domain::TimelineKind as K;
            if !matches!(k, K::Note | K::Observation) {
                return Err(CoreError::Invalid(format!(
                    "kind {k} is recorded by OpsLens itself; post `note` or `observation`"
                )));
            }
        }
        let at = crate::event_time::given_time(new.occurred_at.as_deref())?;
        let time = at.as_ref().map(|p| p.at);
        let mut ev = self
            .db(move |s| s.add_timeline_event(incident_id, &new, time))
            .await?;
        ev.assumed_zone = at.and_then(|p| p.assumed_zone);
        Ok(ev)
    }

    /// Hypotheses of an incident.
    pub async fn hypotheses(&self, incident_id: i64) -> Result<Vec<Hypothesis>, CoreError> {
        self.db(move |s| s.hypotheses(incident_id)).await
    }

    /// Proposes a hypothesis.
    pub async fn add_hypothesis(
        &self,
        incident_id: i64,
        mut new: NewHypothesis,
    ) -> Result<Hypothesis, CoreError> {
        new.statement = required("statement", &new.statement, MAX_TEXT)?;
        self.db(move |s| s.add_hypothesis(incident_id, &new)).await
    }

    /// Changes a hypothesis.
    pub async fn update_hypothesis(
        &self,
        id: i64,
        mut patch: HypothesisPatch,
    ) -> Result<Hypothesis, CoreError> {
        if let Some(t) = &patch.statement {
            patch.statement = Some(required("statement", t, MAX_TEXT)?);
        }
        self.db(move |s| s.update_hypothesis(id, &patch)).await
    }

    /// Action items of an incident.
    pub async fn actions(&self, incident_id: i64) -> Result<Vec<Action>, CoreError> {
        self.db(move |s| s.actions(incident_id)).await
    }

    /// Creates an action item.
    pub async fn add_action(
        &self,
        incident_id: i64,
        mut new: NewAction,
    ) -> Result<Action, CoreError> {
        new.title = required("title", &new.title, MAX_TITLE)?;
        self.db(move |s| s.add_action(incident_id, &new)).await
    }

    /// Changes an action item.
    pub async fn update_action(
        &self,
        id: i64,
        mut patch: ActionPatch,
    ) -> Result<Action, CoreError> {
        if let Some(t) = &patch.title {
            patch.title = Some(required("title", t, MAX_TITLE)?);
        }
        self.db(move |s| s.update_action(id, &patch)).await
    }

    /// Full-text search over incidents and evidence.
    pub async fn search(&self, q: String, limit: u32) -> Result<Vec<SearchHit>, CoreError> {
        let limit = limit.clamp(1, 200);
        self.db(move |s| s.search(&q, limit)).await
    }

    /// Counts of screenshots per pending analysis state.
    pub async fn analysis_backlog(&self) -> Result<Vec<(AnalysisState, i64)>, CoreError> {
        self.db(|s| s.analysis_backlog()).await
    }
}
