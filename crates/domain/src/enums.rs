//! String-backed enums. Each one knows its wire spelling so SQLite, JSON and error messages
//! agree, and an unknown value can be reported together with the accepted ones.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An enum value that is not one of the accepted spellings; the message lists them so the
/// caller can correct the request without reading the docs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{what} must be one of {allowed}, got {got:?}")]
pub struct ParseEnumError {
    /// Which field was being parsed.
    pub what: &'static str,
    /// The rejected input.
    pub got: String,
    /// The accepted values, comma separated.
    pub allowed: String,
}

// `$s` is a `tt`, not a `literal`: a `literal` fragment reaches derive macros wrapped in an
// invisible group, which serde unwraps but utoipa does not, so the spec showed the Rust
// variant names (`Critical`) while the wire carries `critical`. As a `tt` the one
// `#[serde(rename = $s)]` is read by both derives; `spec_values_are_the_wire_values` checks it.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $s:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order (used for validation messages and UI pickers).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // By hand so that a wrong value names the accepted ones and a wrong JSON type is a
        // type error (422), not the syntax error serde's derive reports for enums.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        got: s.to_string(),
                        allowed: [$($s),+].join(", "),
                    }),
                }
            }
        }
    };
}

wire_enum!(
    /// How bad an incident is. The seed guide uses `low` and `high`; the four levels match
    /// PagerDuty-style priorities so synced incidents map without loss.
    Severity, "severity", {
        /// Customer-facing outage.
        Critical => "critical",
        /// Major degradation.
        High => "high",
        /// Partial or internal impact.
        Medium => "medium",
        /// Minor.
        Low => "low",
    }
);

wire_enum!(
    /// Lifecycle of an incident, from the page to the post-mortem.
    IncidentStatus, "status", {
        /// Paged, nobody on it yet.
        Triggered => "triggered",
        /// Someone owns it.
        Acknowledged => "acknowledged",
        /// Actively being worked.
        Investigating => "investigating",
        /// Impact stopped, cause maybe not fixed.
        Mitigated => "mitigated",
        /// Fixed.
        Resolved => "resolved",
        /// Follow-ups done; read-only history.
        Closed => "closed",
    }
);

impl IncidentStatus {
    /// Resolved and closed incidents stop the "time open" clock.
    pub fn is_finished(self) -> bool {
        matches!(self, IncidentStatus::Resolved | IncidentStatus::Closed)
    }

    /// Impact has stopped: mitigated, or past it (a resolved incident was mitigated by then).
    pub fn is_mitigated(self) -> bool {
        matches!(
            self,
            IncidentStatus::Mitigated | IncidentStatus::Resolved | IncidentStatus::Closed
        )
    }
}

wire_enum!(
    /// Where an incident came from, so syncs can be idempotent by external id.
    IncidentSource, "source", {
        /// Created by a person (UI, CLI, API).
        Manual => "manual",
        /// Synced from PagerDuty.
        Pagerduty => "pagerduty",
        /// Created by an incoming webhook.
        Webhook => "webhook",
        /// Created by a screen capture with no active incident.
        Capture => "capture",
    }
);

wire_enum!(
    /// Kind of evidence; decides how it is shown and whether it is analysed.
    EvidenceType, "evidence_type", {
        /// Log lines pasted or pushed by a script.
        Log => "log",
        /// A metric reading or export.
        Metric => "metric",
        /// An image, analysed by the local model.
        Screenshot => "screenshot",
        /// A deploy or merged change.
        Deployment => "deployment",
        /// An alert from a monitoring system.
        Alert => "alert",
        /// A free-form note.
        Note => "note",
    }
);

wire_enum!(
    /// Where a screenshot is in the analysis pipeline; shown live in the UI.
    AnalysisState, "analysis_state", {
        /// Stored, but no model is available yet; analysed once one is.
        WaitingForModel => "waiting-for-model",
        /// In the analysis queue.
        Queued => "queued",
        /// Being analysed now.
        Running => "running",
        /// Findings are in `content` and `findings`.
        Done => "done",
        /// Analysis failed; the reason is in `analysis_error`.
        Failed => "failed",
    }
);

wire_enum!(
    /// What a timeline entry records.
    TimelineKind, "kind", {
        /// The incident was opened.
        IncidentCreated => "incident_created",
        /// Status changed.
        StatusChanged => "status_changed",
        /// Severity changed.
        SeverityChanged => "severity_changed",
        /// Evidence was attached.
        EvidenceAdded => "evidence_added",
        /// A hypothesis was proposed.
        HypothesisAdded => "hypothesis_added",
        /// A hypothesis was supported, refuted or edited.
        HypothesisUpdated => "hypothesis_updated",
        /// An action item was created.
        ActionAdded => "action_added",
        /// An action item changed.
        ActionUpdated => "action_updated",
        /// Something observed at a point in time (from a person or from findings).
        Observation => "observation",
        /// A free-form note.
        Note => "note",
        /// Someone took or left a role (commander, communications, scribe, participant).
        RoleChanged => "role_changed",
        /// A status update went out to stakeholders.
        StatusUpdate => "status_update",
        /// Another incident was merged into this one, or this one into another.
        Merged => "merged",
    }
);

wire_enum!(
    /// A role on an incident. Commander, communications and scribe are held by one person
    /// at a time; any number of people participate.
    Role, "role", {
        /// Incident commander: runs the response.
        Commander => "commander",
        /// Communications lead: keeps stakeholders informed.
        Communications => "communications",
        /// Scribe: keeps the timeline.
        Scribe => "scribe",
        /// Works on it.
        Participant => "participant",
    }
);

impl Role {
    /// How the role reads in a sentence ("Ana is now incident commander").
    pub fn title(self) -> &'static str {
        match self {
            Role::Commander => "incident commander",
            Role::Communications => "communications lead",
            Role::Scribe => "scribe",
            Role::Participant => "a participant",
        }
    }
}

wire_enum!(
    /// How an `occurred_at` was arrived at, so the UI can mark guesses and a person's word
    /// always beats a guess.
    OccurredAtSource, "occurred_at_source", {
        /// The moment OpsLens recorded it (nobody said otherwise).
        Recorded => "recorded",
        /// Given by a person (UI, CLI, API); never replaced by a derived time.
        User => "user",
        /// Read from the content: the earliest time stamp in log lines, an integration's event
        /// time, the analysis' anomaly times.
        Derived => "derived",
    }
);

wire_enum!(
    /// Standing of a hypothesis on the board.
    HypothesisStatus, "status", {
        /// Not yet tested.
        Proposed => "proposed",
        /// Evidence supports it.
        Supported => "supported",
        /// Evidence rules it out.
        Refuted => "refuted",
    }
);

wire_enum!(
    /// Who proposed a hypothesis; model and correlation ones deserve more scrutiny.
    HypothesisOrigin, "origin", {
        /// A person.
        Human => "human",
        /// The local model, from screenshot findings.
        Model => "model",
        /// Change correlation (a deploy before an anomaly).
        Correlation => "correlation",
    }
);

wire_enum!(
    /// Progress of an action item.
    ActionStatus, "status", {
        /// Not started.
        Open => "open",
        /// Someone is on it.
        InProgress => "in_progress",
        /// Finished.
        Done => "done",
        /// Dropped.
        Cancelled => "cancelled",
    }
);

wire_enum!(
    /// What a search hit is: every kind of entry a person wrote or a tool produced is
    /// searchable, and a client filters and labels hits by it.
    SearchKind, "kind", {
        /// The incident's title and description.
        Incident => "incident",
        /// A piece of evidence: its title and content (logs, metrics, deployments…).
        Evidence => "evidence",
        /// The analysis of a screenshot: summary, panels, metrics, anomalies, errors, answers.
        Finding => "finding",
        /// A hypothesis on the board.
        Hypothesis => "hypothesis",
        /// An action item and its owner.
        Action => "action",
        /// A note or observation a person put on the timeline.
        Note => "note",
        /// A status update to stakeholders.
        StatusUpdate => "status_update",
        /// The postmortem.
        Postmortem => "postmortem",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the OpenAPI schema of `T` lists.
    fn spec_values<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let values = schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum in the schema {schema}"));
        values
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Every spec value of `T` is accepted by serde and written back unchanged, and the spec
    /// lists exactly the values serde writes for `all`.
    fn assert_spec_is_wire<T>(all: &[T])
    where
        T: utoipa::PartialSchema + Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let spec = spec_values::<T>();
        for v in &spec {
            let parsed: T = serde_json::from_value(serde_json::json!(v))
                .unwrap_or_else(|e| panic!("spec value {v:?} is refused on the wire: {e}"));
            assert_eq!(serde_json::to_value(&parsed).unwrap(), serde_json::json!(v));
        }
        let wire: Vec<String> = all
            .iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(spec, wire, "spec and wire values differ");
    }

    #[test]
    fn spec_values_are_the_wire_values() {
        assert_spec_is_wire(Severity::ALL);
        assert_spec_is_wire(IncidentStatus::ALL);
        assert_spec_is_wire(IncidentSource::ALL);
        assert_spec_is_wire(EvidenceType::ALL);
        assert_spec_is_wire(AnalysisState::ALL);
        assert_spec_is_wire(TimelineKind::ALL);
        assert_spec_is_wire(HypothesisStatus::ALL);
        assert_spec_is_wire(HypothesisOrigin::ALL);
        assert_spec_is_wire(ActionStatus::ALL);
        assert_spec_is_wire(UserRole::ALL);
        assert_spec_is_wire(SearchKind::ALL);
        // Plain serde enums elsewhere in the crate: both derives read `rename_all`.
        use crate::{FeedKind, FeedOp, OutboxStatus, SignalKind};
        use FeedKind as K;
        assert_spec_is_wire(&[
            K::Incident,
            K::Evidence,
            K::Timeline,
            K::Hypothesis,
            K::Action,
            K::Capture,
        ]);
        assert_spec_is_wire(&[FeedOp::Created, FeedOp::Updated, FeedOp::Deleted]);
        use OutboxStatus as O;
        assert_spec_is_wire(&[O::Pending, O::Delivered, O::Dead]);
        use SignalKind as S;
        assert_spec_is_wire(&[S::Change, S::Alert, S::Other]);
        assert_eq!(
            spec_values::<AnalysisState>(),
            ["waiting-for-model", "queued", "running", "done", "failed"]
        );
    }

    #[test]
    fn round_trips_and_lists_allowed_values() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
        }
        let err = "urgent".parse::<Severity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "severity must be one of critical, high, medium, low, got \"urgent\""
        );
        assert_eq!(
            serde_json::to_string(&AnalysisState::WaitingForModel).unwrap(),
            "\"waiting-for-model\""
        );
    }
}

wire_enum!(
    /// What a person's API token may do on a shared server. The single-user install token is
    /// an admin.
    UserRole, "role", {
        /// Everything, including adding and revoking users.
        Admin => "admin",
        /// Reads and writes incidents, evidence and everything on them.
        Member => "member",
        /// Reads only: every write answers 403.
        Viewer => "viewer",
    }
);
