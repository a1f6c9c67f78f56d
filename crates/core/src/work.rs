//! The hypotheses board and the action items of an incident.

use opslens_domain::{Action, ActionPatch, Hypothesis, HypothesisPatch, NewAction, NewHypothesis};

use crate::db::Db;
use crate::validate::{checked, required, MAX_TEXT, MAX_TITLE};
use crate::CoreError;

/// The hypotheses-and-actions use-case.
#[derive(Debug)]
pub struct WorkService {
    pub(crate) db: Db,
}

/// An unknown evidence id named in a hypothesis body is the body's fault (422 naming the
/// field), not a missing path resource (404), as for timeline events.
fn body_evidence(e: CoreError) -> CoreError {
    match e {
        CoreError::NotFound(m) if m.starts_with("evidence ") => {
            CoreError::Invalid(format!("evidence_ids: {m}"))
        }
        e => e,
    }
}

impl WorkService {
    /// Hypotheses of an incident.
    pub async fn hypotheses(&self, incident_id: i64) -> Result<Vec<Hypothesis>, CoreError> {
        self.db.run(move |s| s.hypotheses(incident_id)).await
    }

    /// Proposes a hypothesis.
    pub async fn add_hypothesis(
        &self,
        incident_id: i64,
        mut new: NewHypothesis,
    ) -> Result<Hypothesis, CoreError> {
        new.statement = required("statement", &new.statement, MAX_TEXT)?;
        self.db
            .run(move |s| s.add_hypothesis(incident_id, &new))
            .await
            .map_err(body_evidence)
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
        self.db
            .run(move |s| s.update_hypothesis(id, &patch))
            .await
            .map_err(body_evidence)
    }

    /// Action items of an incident.
    pub async fn actions(&self, incident_id: i64) -> Result<Vec<Action>, CoreError> {
        self.db.run(move |s| s.actions(incident_id)).await
    }

    /// Creates an action item.
    pub async fn add_action(
        &self,
        incident_id: i64,
        mut new: NewAction,
    ) -> Result<Action, CoreError> {
        new.title = required("title", &new.title, MAX_TITLE)?;
        new.owner = checked("owner", new.owner)?;
        self.db
            .write(move |s| s.add_action(incident_id, &new))
            .await
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
        patch.owner = checked("owner", patch.owner)?;
        self.db.write(move |s| s.update_action(id, &patch)).await
    }
}
