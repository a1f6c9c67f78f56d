//! Incident command: who the people are and which roles they hold, status updates for
//! stakeholders, and the postmortem (see `people`, `updates`, `postmortem`).

use std::sync::Arc;

use crate::db::Db;
use crate::evidence::EvidenceService;
use crate::incidents::IncidentService;

/// The incident-command use-case.
#[derive(Debug)]
pub struct CommandService {
    pub(crate) db: Db,
    /// Status updates may change the incident's status; the postmortem reads its export.
    pub(crate) incidents: Arc<IncidentService>,
    /// The postmortem export embeds the screenshots.
    pub(crate) evidence: Arc<EvidenceService>,
}
