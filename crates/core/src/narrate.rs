//! How OpsLens words what happened: the timeline entries and the announcements (Slack, Teams,
//! webhooks) of every fact the store records, and which facts are news at all.
//!
//! The store says what changed ([`Fact`]); this module says what people read about it. It runs
//! inside the change's write transaction, so it only formats.

use opslens_domain::{Action, StatusUpdate, TimelineKind, Timestamp};
use opslens_store::{ChangeKind, Fact, Narration, Narrator, TimelineLine};
use serde_json::{Map, Value};

/// Description shown in an `incident.created` message at most (characters).
const NOTICE_DESCRIPTION: usize = 300;

/// The wording of OpsLens (English, plain, one line per change).
#[derive(Debug, Default)]
pub(crate) struct Plain;

/// `{"from": a, "to": b}` for the `changes` map.
fn from_to(from: impl serde::Serialize, to: impl serde::Serialize) -> Value {
    serde_json::json!({ "from": from, "to": to })
}

/// `data` of a hypothesis or action message: the item itself, and what changed.
fn subject(
    name: &str,
    item: &impl serde::Serialize,
    changes: Option<Map<String, Value>>,
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(name.into(), serde_json::to_value(item).unwrap_or_default());
    if let Some(c) = changes {
        data.insert("changes".into(), c.into());
    }
    data
}

fn line(kind: TimelineKind, message: String) -> TimelineLine {
    TimelineLine {
        kind,
        message,
        evidence_id: None,
    }
}

fn utc(t: &Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl Narrator for Plain {
    fn narrate(&self, fact: &Fact) -> Narration {
        match fact {
            Fact::IncidentOpened(inc) => {
                let msg = match &inc.external_id {
                    Some(ext) => format!(
                        "Incident opened from {} {ext} ({}, {})",
                        inc.source, inc.severity, inc.status
                    ),
                    None => format!("Incident opened ({}, {})", inc.severity, inc.status),
                };
                let mut text = msg.clone();
                if !inc.description.trim().is_empty() {
                    text.push('\n');
                    text.extend(inc.description.trim().chars().take(NOTICE_DESCRIPTION));
                }
                // One brought in already finished (history from a first sync) is not news.
                let news = inc.external_id.is_none() || !inc.status.is_finished();
                Narration {
                    timeline: vec![line(TimelineKind::IncidentCreated, msg)],
                    announce: news.then(|| (ChangeKind::IncidentCreated, text, Map::new())),
                }
            }
            Fact::IncidentChanged {
                title,
                severity,
                status,
                via,
                ..
            } => {
                let by = via.map(|s| format!(" ({s})")).unwrap_or_default();
                let mut timeline = Vec::new();
                let mut lines = Vec::new();
                let mut changes = Map::new();
                if let Some((from, to)) = status {
                    lines.push(format!("Status: {from} → {to}{by}"));
                    changes.insert("status".into(), from_to(from, to));
                }
                if let Some((from, to)) = title {
                    lines.push(format!("Title: {from} → {to}"));
                    changes.insert("title".into(), from_to(from, to));
                }
                if let Some((from, to)) = severity {
                    let msg = format!("Severity changed from {from} to {to}");
                    timeline.push(line(TimelineKind::SeverityChanged, msg));
                    lines.push(format!("Severity: {from} → {to}"));
                    changes.insert("severity".into(), from_to(from, to));
                }
                if let Some((from, to)) = status {
                    let msg = format!("Status changed from {from} to {to}{by}");
                    timeline.push(line(TimelineKind::StatusChanged, msg));
                }
                let mut data = Map::new();
                data.insert("changes".into(), changes.into());
                Narration {
                    timeline,
                    announce: (!lines.is_empty())
                        .then(|| (ChangeKind::IncidentUpdated, lines.join("\n"), data)),
                }
            }
            Fact::EvidenceAdded(ev) => {
                let msg = if ev.image.is_some() {
                    format!("Screenshot added: {}", ev.title)
                } else {
                    format!("{} evidence added: {}", ev.evidence_type, ev.title)
                };
                Narration {
                    timeline: vec![TimelineLine {
                        kind: TimelineKind::EvidenceAdded,
                        message: msg,
                        evidence_id: Some(ev.id),
                    }],
                    announce: None,
                }
            }
            Fact::HypothesisProposed(h) => {
                let msg = format!("Hypothesis proposed ({}): {}", h.origin, h.statement);
                Narration {
                    timeline: vec![line(TimelineKind::HypothesisAdded, msg.clone())],
                    announce: Some((
                        ChangeKind::HypothesisCreated,
                        msg,
                        subject("hypothesis", h, None),
                    )),
                }
            }
            // A decision is news; rewording and relinking evidence are board housekeeping.
            Fact::HypothesisChanged { old, new } if old.status != new.status => {
                let msg = format!("Hypothesis {}: {}", new.status, new.statement);
                let mut changes = Map::new();
                changes.insert("status".into(), from_to(old.status, new.status));
                Narration {
                    timeline: vec![line(TimelineKind::HypothesisUpdated, msg.clone())],
                    announce: Some((
                        ChangeKind::HypothesisUpdated,
                        msg,
                        subject("hypothesis", new, Some(changes)),
                    )),
                }
            }
            Fact::HypothesisChanged { .. } => Narration::default(),
            Fact::ActionAdded(a) => {
                let owner = a
                    .owner
                    .as_deref()
                    .map(|o| format!(" (owner: {o})"))
                    .unwrap_or_default();
                let msg = format!("Action added: {}{owner}", a.title);
                let mut text = msg.clone();
                if let Some(due) = &a.due_at {
                    text.push_str(&format!("\nDue: {}", utc(due)));
                }
                Narration {
                    timeline: vec![line(TimelineKind::ActionAdded, msg)],
                    announce: Some((ChangeKind::ActionCreated, text, subject("action", a, None))),
                }
            }
            Fact::ActionChanged { old, new } => action_changed(old, new),
            Fact::RoleAssigned {
                role, person, was, ..
            } => {
                let msg = match was {
                    Some(old) => {
                        format!("{} is now {} (was {})", person.name, role.title(), old.name)
                    }
                    None => format!("{} is now {}", person.name, role.title()),
                };
                Narration {
                    timeline: vec![line(TimelineKind::RoleChanged, msg)],
                    announce: None,
                }
            }
            Fact::RoleReleased { role, person, .. } => Narration {
                timeline: vec![line(
                    TimelineKind::RoleChanged,
                    format!("{} is no longer {}", person.name, role.title()),
                )],
                announce: None,
            },
            Fact::StatusUpdatePosted(u) => {
                let text = status_update(u);
                let mut data = Map::new();
                data.insert("update".into(), serde_json::to_value(u).unwrap_or_default());
                Narration {
                    timeline: vec![line(TimelineKind::StatusUpdate, text.clone())],
                    announce: Some((ChangeKind::StatusUpdate, text, data)),
                }
            }
            Fact::IncidentMerged {
                from,
                into,
                on_target,
                moved: [evidence, timeline, hypotheses, actions],
            } => {
                let msg = if *on_target {
                    format!(
                        "Incident #{} “{}” merged into this one: {evidence} evidence, {timeline} timeline entries, {hypotheses} hypotheses, {actions} actions moved here",
                        from.id, from.title
                    )
                } else {
                    format!("Merged into incident #{} “{}”", into.id, into.title)
                };
                Narration {
                    timeline: vec![line(TimelineKind::Merged, msg)],
                    announce: None,
                }
            }
            _ => Narration::default(),
        }
    }
}

/// A status update as stakeholders read it: status, what it says, impact, when the next one
/// is due.
fn status_update(u: &StatusUpdate) -> String {
    let mut out = format!("Status update ({}): {}", u.status, u.text);
    if !u.impact.is_empty() {
        out.push_str(&format!("\nImpact: {}", u.impact));
    }
    if let Some(next) = u.next_update_at {
        out.push_str(&format!("\nNext update by {}", utc(&next)));
    }
    out
}

/// A status change goes on the timeline; one message names whatever really changed, and
/// nothing is said when nothing did.
fn action_changed(old: &Action, a: &Action) -> Narration {
    let mut timeline = Vec::new();
    if a.status != old.status {
        let msg = format!("Action {}: {}", a.status, a.title);
        timeline.push(line(TimelineKind::ActionUpdated, msg));
    }
    let mut lines = Vec::new();
    let mut changes = Map::new();
    if a.status != old.status {
        lines.push(format!("Status: {} → {}", old.status, a.status));
        changes.insert("status".into(), from_to(old.status, a.status));
    }
    if a.owner != old.owner {
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "nobody".into());
        lines.push(format!("Owner: {} → {}", show(&old.owner), show(&a.owner)));
        changes.insert("owner".into(), from_to(&old.owner, &a.owner));
    }
    if a.title != old.title {
        lines.push(format!("Title: {} → {}", old.title, a.title));
        changes.insert("title".into(), from_to(&old.title, &a.title));
    }
    if a.due_at != old.due_at {
        let show = |d: &Option<Timestamp>| d.as_ref().map(utc).unwrap_or_else(|| "none".into());
        lines.push(format!("Due: {} → {}", show(&old.due_at), show(&a.due_at)));
        changes.insert("due_at".into(), from_to(old.due_at, a.due_at));
    }
    if lines.is_empty() {
        return Narration {
            timeline,
            announce: None,
        };
    }
    lines.insert(0, format!("Action: {}", a.title));
    Narration {
        timeline,
        announce: Some((
            ChangeKind::ActionUpdated,
            lines.join("\n"),
            subject("action", a, Some(changes)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use opslens_domain::{
        Hypothesis, HypothesisOrigin, HypothesisStatus, Incident, IncidentSource, IncidentStatus,
        Severity,
    };

    use super::*;

    fn incident(external: Option<&str>, status: IncidentStatus) -> Incident {
        let t = chrono::Utc::now();
        Incident {
            id: 7,
            title: "checkout p99".into(),
            description: "after deploy v2.41.0".into(),
            severity: Severity::High,
            status,
            source: if external.is_some() {
                IncidentSource::Pagerduty
            } else {
                IncidentSource::Manual
            },
            external_id: external.map(String::from),
            created_at: t,
            updated_at: t,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            tta_seconds: None,
            ttm_seconds: None,
            ttr_seconds: None,
            next_update_at: None,
            evidence_count: 0,
            merged_into: None,
            possible_duplicate_of: None,
        }
    }

    #[test]
    fn an_incident_brought_in_finished_is_history_not_news() {
        let n = Plain.narrate(&Fact::IncidentOpened(incident(
            None,
            IncidentStatus::Triggered,
        )));
        assert_eq!(n.timeline[0].message, "Incident opened (high, triggered)");
        let (kind, text, _) = n.announce.unwrap();
        assert_eq!(kind, ChangeKind::IncidentCreated);
        assert_eq!(
            text,
            "Incident opened (high, triggered)\nafter deploy v2.41.0"
        );
        let n = Plain.narrate(&Fact::IncidentOpened(incident(
            Some("P1"),
            IncidentStatus::Resolved,
        )));
        assert_eq!(
            n.timeline[0].message,
            "Incident opened from pagerduty P1 (high, resolved)"
        );
        assert!(n.announce.is_none());
    }

    #[test]
    fn a_change_names_each_field_once_and_the_system_that_made_it() {
        let n = Plain.narrate(&Fact::IncidentChanged {
            incident: incident(Some("P1"), IncidentStatus::Resolved),
            title: Some(("a".into(), "b".into())),
            severity: None,
            status: Some((IncidentStatus::Triggered, IncidentStatus::Resolved)),
            via: Some(IncidentSource::Pagerduty),
        });
        let lines: Vec<_> = n.timeline.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            lines,
            ["Status changed from triggered to resolved (pagerduty)"]
        );
        let (_, text, data) = n.announce.unwrap();
        assert_eq!(
            text,
            "Status: triggered → resolved (pagerduty)\nTitle: a → b"
        );
        assert_eq!(data["changes"]["status"]["to"], "resolved");
    }

    #[test]
    fn rewording_a_hypothesis_is_housekeeping() {
        let t = chrono::Utc::now();
        let h = Hypothesis {
            id: 1,
            incident_id: 7,
            statement: "pool exhaustion".into(),
            status: HypothesisStatus::Proposed,
            origin: HypothesisOrigin::Human,
            evidence_ids: vec![],
            author: None,
            created_at: t,
            updated_at: t,
        };
        let mut reworded = h.clone();
        reworded.statement = "connection pool exhaustion".into();
        let n = Plain.narrate(&Fact::HypothesisChanged {
            old: h.clone(),
            new: reworded,
        });
        assert!(n.timeline.is_empty() && n.announce.is_none());
        let mut decided = h.clone();
        decided.status = HypothesisStatus::Supported;
        let n = Plain.narrate(&Fact::HypothesisChanged {
            old: h,
            new: decided,
        });
        assert_eq!(
            n.timeline[0].message,
            "Hypothesis supported: pool exhaustion"
        );
    }
}
