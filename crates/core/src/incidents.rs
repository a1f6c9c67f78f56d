//! Incidents and their timeline: open, read, list, change, delete; notes on the timeline;
//! search; the incident a capture lands on.

use opslens_domain::{
    Incident, IncidentFilter, IncidentPatch, IncidentSource, IncidentStatus, NewIncident,
    NewTimelineEvent, Page, SearchResults, Severity, TimelineEvent, TimelineKind,
};
use opslens_store::{NewIncidentRow, SearchRequest};

use crate::db::Db;
use crate::validate::{checked, required, MAX_TEXT, MAX_TITLE};
use crate::CoreError;

/// The incidents use-case.
#[derive(Debug)]
pub struct IncidentService {
    pub(crate) db: Db,
    /// Term vectors of the similar-incidents ranking, kept between requests.
    pub(crate) similar: crate::similar::DocCache,
    /// The incident a window of the UI shows (the last one that said so): captures without a
    /// named incident go there, so the shortcut files what the user is looking at. Held in
    /// memory only: it describes a live window, which does not outlive the process.
    shown: std::sync::Mutex<Option<i64>>,
}

impl IncidentService {
    pub(crate) fn new(db: Db) -> Self {
        IncidentService {
            db,
            similar: Default::default(),
            shown: std::sync::Mutex::new(None),
        }
    }

    /// Records which incident a window shows (`None`: none, e.g. the list). An unknown
    /// incident is refused (404) and leaves the previous one in place.
    pub async fn set_shown(&self, id: Option<i64>) -> Result<Option<i64>, CoreError> {
        if let Some(id) = id {
            self.db.incident(id).await?;
        }
        *self.shown.lock().unwrap_or_else(|p| p.into_inner()) = id;
        Ok(id)
    }

    /// The incident a window last said it shows, if any.
    pub fn shown(&self) -> Option<i64> {
        *self.shown.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets `id` as the shown incident (it was deleted), unless a window showed another
    /// since.
    pub(crate) fn forget_shown(&self, id: i64) {
        let mut s = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        if *s == Some(id) {
            *s = None;
        }
    }

    /// Opens an incident (seed: `POST /incidents`).
    pub async fn create(&self, new: NewIncident) -> Result<Incident, CoreError> {
        let row = NewIncidentRow {
            title: required("title", &new.title, MAX_TITLE)?,
            description: checked("description", new.description)?.unwrap_or_default(),
            severity: new.severity.unwrap_or(Severity::Medium),
            status: new.status.unwrap_or(IncidentStatus::Triggered),
            source: IncidentSource::Manual,
            external_id: None,
        };
        self.db.write(move |s| s.create_incident(row)).await
    }

    /// One incident.
    pub async fn get(&self, id: i64) -> Result<Incident, CoreError> {
        self.db.incident(id).await
    }

    /// Filtered, paginated incidents.
    pub async fn list(&self, filter: IncidentFilter) -> Result<Page<Incident>, CoreError> {
        self.db.run(move |s| s.list_incidents(&filter)).await
    }

    /// Changes an incident.
    pub async fn update(&self, id: i64, mut patch: IncidentPatch) -> Result<Incident, CoreError> {
        if let Some(t) = &patch.title {
            patch.title = Some(required("title", t, MAX_TITLE)?);
        }
        patch.description = checked("description", patch.description)?;
        self.db.write(move |s| s.update_incident(id, &patch)).await
    }

    /// Deletes an incident and all attached to it.
    pub async fn delete(&self, id: i64) -> Result<(), CoreError> {
        self.db.run(move |s| s.delete_incident(id)).await?;
        self.forget_shown(id);
        Ok(())
    }

    /// The incident a capture lands on when none is named and no window shows one: the open
    /// one changed most recently.
    pub async fn active(&self) -> Result<Option<Incident>, CoreError> {
        self.db.run(|s| s.latest_open_incident()).await
    }

    /// Timeline of an incident.
    pub async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEvent>, CoreError> {
        self.db.run(move |s| s.timeline(incident_id)).await
    }

    /// Adds a note or observation to the timeline.
    pub async fn add_timeline_event(
        &self,
        incident_id: i64,
        mut new: NewTimelineEvent,
    ) -> Result<TimelineEvent, CoreError> {
        new.message = required("message", &new.message, MAX_TEXT)?;
        if let Some(k) = new.kind {
            if !matches!(k, TimelineKind::Note | TimelineKind::Observation) {
                return Err(CoreError::Invalid(format!(
                    "kind {k} is recorded by OpsLens itself; post `note` or `observation`"
                )));
            }
        }
        let at = crate::event_time::given_time(new.occurred_at.as_deref())?;
        let time = at.as_ref().map(|p| p.at);
        let linked = new.evidence_id;
        let mut ev = self
            .db
            .run(move |s| s.add_timeline_event(incident_id, &new, time))
            .await
            .map_err(|e| match (e, linked) {
                // The path's incident exists; what is missing is what the body names.
                (CoreError::NotFound(m), Some(eid))
                    if m.starts_with(&format!("evidence {eid} ")) =>
                {
                    CoreError::Invalid(format!("evidence_id: {m}"))
                }
                (e, _) => e,
            })?;
        ev.assumed_zone = at.and_then(|p| p.assumed_zone);
        Ok(ev)
    }

    /// Full-text search over every entry of every incident, grouped by incident. A query
    /// with nothing to search, or a time range that ends before it starts, is `Invalid`.
    pub async fn search(&self, mut req: SearchRequest) -> Result<SearchResults, CoreError> {
        opslens_store::parse_query(&req.q).map_err(|e| CoreError::Invalid(e.to_string()))?;
        if let (Some(from), Some(to)) = (req.from, req.to) {
            if from >= to {
                return Err(CoreError::Invalid(format!(
                    "the time range is empty: `from` ({from}) must be before `to` ({to})"
                )));
            }
        }
        req.limit = req.limit.clamp(1, 200);
        self.db.run(move |s| s.search(&req)).await
    }
}
