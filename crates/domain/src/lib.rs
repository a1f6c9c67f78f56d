//! Domain types of OpsLens: what an incident, a piece of evidence, a timeline event, a
//! hypothesis and an action are, independent of how they are stored or served.
//!
//! The enums here are the single source of the wire spelling (`snake_case`/kebab strings) used
//! by SQLite columns, JSON bodies and the OpenAPI spec alike, so the three never drift apart.

mod capture;
mod enums;
mod evidence;
mod external;
mod feed;
mod incident;
mod integration;
mod people;
mod postmortem;
mod search;
mod similar;
mod updates;
mod work;

pub use capture::{
    CaptureError, CaptureTarget, Region, ScreenSource, Shot, WindowSelector, MAX_REGION_SIDE,
};
pub use enums::{
    ActionStatus, AnalysisState, EvidenceType, HypothesisOrigin, HypothesisStatus, IncidentSource,
    IncidentStatus, OccurredAtSource, ParseEnumError, Role, SearchKind, Severity, TimelineKind,
    UserRole,
};
pub use evidence::{AnalysisJob, AnalyzeRequest, Evidence, EvidencePatch, ImageInfo, NewEvidence};
pub use external::{
    ApplyOutcome, ExternalEvidence, ExternalIncident, ExternalItem, SignalKind, StoredSignal,
};
pub use feed::{FeedChange, FeedEvent, FeedKind, FeedOp};
pub use incident::{Incident, IncidentFilter, IncidentPatch, NewIncident, Page};
pub use integration::{IntegrationError, IntegrationState, OutboxMessage, OutboxStatus};
pub use people::{IncidentRoles, NewPerson, NewUser, NewUserToken, Person, RoleAssignment, User};
pub use postmortem::{
    Postmortem, PostmortemEntry, PostmortemSave, PostmortemSections, TimelinePatch,
};
pub use search::{SearchGroup, SearchHit, SearchResults};
pub use similar::{
    DuplicateHint, ImageMatch, MergeOutcome, MergeRequest, Redaction, RedactionBox,
    RedactionRequest, RedactionSuggestion, SimilarHit, SimilarIncidents,
};
pub use updates::{NewStatusUpdate, StatusUpdate};
pub use work::{
    Action, ActionPatch, Hypothesis, HypothesisPatch, NewAction, NewHypothesis, NewTimelineEvent,
    TimelineEvent,
};

/// Timestamps are UTC everywhere; local time zones are a presentation concern.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
