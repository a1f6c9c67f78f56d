//! The postmortem: a template pre-filled from the incident (no model needed), saved with a
//! version so a save that lost a race changes nothing, the timeline edits it relies on, and
//! its exports (Markdown with the screenshots beside it in a zip; one HTML file with the
//! screenshots inside).

use opslens_domain::{
    HypothesisStatus, Postmortem, PostmortemEntry, PostmortemSave, PostmortemSections,
    TimelineEvent, TimelinePatch,
};
use opslens_store::{StoredPostmortem, TimelineEdit};

use crate::command::CommandService;
use crate::export::IncidentExport;
use crate::validate::required;
use crate::CoreError;

/// Longest section text (characters) and most timeline lines / follow-ups.
const MAX_SECTION: usize = 20_000;
const MAX_ITEMS: usize = 500;

/// Why a save was refused.
#[derive(Debug)]
pub enum SaveError {
    /// Another save came first: the current postmortem, nothing overwritten.
    Stale(Box<Postmortem>),
    /// Anything else.
    Core(CoreError),
}

impl From<CoreError> for SaveError {
    fn from(e: CoreError) -> Self {
        SaveError::Core(e)
    }
}

fn minutes(secs: Option<i64>) -> String {
    match secs {
        Some(s) if s >= 3600 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        Some(s) => format!("{}m", s / 60),
        None => "—".into(),
    }
}

/// The template, filled from what the incident already holds.
pub fn template(x: &IncidentExport, customer_effect: &str) -> PostmortemSections {
    let i = &x.incident;
    let mut summary = format!("{} ({} severity).", i.title, i.severity);
    if !i.description.is_empty() {
        summary.push(' ');
        summary.push_str(&i.description);
    }
    let impact = format!(
        "Duration: opened {}, acknowledged after {}, mitigated after {}, resolved after {}.\nCustomer effect: {}",
        i.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        minutes(i.tta_seconds),
        minutes(i.ttm_seconds),
        minutes(i.ttr_seconds),
        if customer_effect.is_empty() { "(describe)" } else { customer_effect }
    );
    let root_cause = x
        .hypotheses
        .iter()
        .filter(|h| h.status == HypothesisStatus::Supported)
        .map(|h| h.statement.clone())
        .collect::<Vec<_>>()
        .join("\n");
    let timeline = x
        .timeline
        .iter()
        .filter(|t| t.pinned)
        .map(|t| PostmortemEntry {
            at: t.occurred_at,
            text: t.message.clone(),
        })
        .collect();
    let follow_ups = x
        .actions
        .iter()
        .map(|a| {
            let owner = a
                .owner
                .as_deref()
                .map(|o| format!(" (@{o})"))
                .unwrap_or_default();
            format!("{}{owner} [{}]", a.title, a.status)
        })
        .collect();
    PostmortemSections {
        summary,
        impact,
        root_cause,
        contributing_factors: String::new(),
        went_well: String::new(),
        went_badly: String::new(),
        timeline,
        follow_ups,
    }
}

fn check(s: &PostmortemSections) -> Result<(), CoreError> {
    for (field, text) in [
        ("sections.summary", &s.summary),
        ("sections.impact", &s.impact),
        ("sections.root_cause", &s.root_cause),
        ("sections.contributing_factors", &s.contributing_factors),
        ("sections.went_well", &s.went_well),
        ("sections.went_badly", &s.went_badly),
    ] {
        if text.chars().count() > MAX_SECTION {
            return Err(CoreError::Invalid(format!(
                "{field} must be at most {MAX_SECTION} characters"
            )));
        }
    }
    if s.timeline.len() > MAX_ITEMS || s.follow_ups.len() > MAX_ITEMS {
        return Err(CoreError::Invalid(format!(
            "sections.timeline and sections.follow_ups hold at most {MAX_ITEMS} items"
        )));
    }
    Ok(())
}

fn from_stored(incident_id: i64, p: StoredPostmortem) -> Result<Postmortem, CoreError> {
    let sections = serde_json::from_str(&p.sections)
        .map_err(|e| CoreError::internal("stored postmortem unreadable", e))?;
    Ok(Postmortem {
        incident_id,
        version: p.version,
        draft: false,
        sections,
        author: p.author,
        updated_at: p.updated_at,
    })
}

/// Most characters of facts handed to the model: its context is small, and a long prompt is
/// slow on a CPU. The latest entries are kept when there are more.
const MAX_FACTS: usize = 6_000;

/// The incident as plain lines for a model to summarise: the header, the timeline in event
/// time (with its author), the screenshots' findings and the supported hypotheses. Only
/// what was recorded, so the model has nothing to invent from.
pub fn summary_facts(x: &IncidentExport) -> String {
    let i = &x.incident;
    let mut head = format!(
        "Incident #{}: {} (severity {}, status {}), opened {}.",
        i.id,
        i.title,
        i.severity,
        i.status,
        i.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    );
    if !i.description.is_empty() {
        head.push_str(&format!(" {}", i.description));
    }
    head.push_str(&format!(
        "\nTime to acknowledge {}, to mitigate {}, to resolve {}.",
        minutes(i.tta_seconds),
        minutes(i.ttm_seconds),
        minutes(i.ttr_seconds)
    ));
    let mut lines: Vec<String> = x
        .timeline
        .iter()
        .map(|t| {
            format!(
                "{} {}{}",
                t.occurred_at.format("%Y-%m-%dT%H:%M:%SZ"),
                t.message.replace('\n', " "),
                t.author
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    for e in &x.evidence {
        if e.findings.is_some() && !e.content.trim().is_empty() {
            lines.push(format!(
                "Finding from {} ({}): {}",
                e.title,
                e.occurred_at.format("%Y-%m-%dT%H:%M:%SZ"),
                e.content.replace('\n', " ")
            ));
        }
    }
    for h in x
        .hypotheses
        .iter()
        .filter(|h| h.status == HypothesisStatus::Supported)
    {
        lines.push(format!("Supported hypothesis: {}", h.statement));
    }
    // Keep the latest lines that fit, in their order.
    let mut room = MAX_FACTS.saturating_sub(head.chars().count());
    let mut kept = Vec::new();
    for l in lines.iter().rev() {
        let n = l.chars().count() + 1;
        if n > room {
            break;
        }
        room -= n;
        kept.push(l.as_str());
    }
    kept.reverse();
    let mut out = head;
    for l in kept {
        out.push('\n');
        out.push_str(l);
    }
    out
}

impl CommandService {
    /// The facts a summary draft is made from (see [`summary_facts`]).
    pub async fn postmortem_facts(&self, incident_id: i64) -> Result<String, CoreError> {
        Ok(summary_facts(&self.incidents.export(incident_id).await?))
    }

    /// The saved postmortem, or the template filled from the incident (version 0, draft).
    pub async fn postmortem(&self, incident_id: i64) -> Result<Postmortem, CoreError> {
        if let Some(p) = self.db.run(move |s| s.postmortem(incident_id)).await? {
            return from_stored(incident_id, p);
        }
        let x = self.incidents.export(incident_id).await?;
        let updates = self.status_updates(incident_id).await?;
        let effect = updates.last().map(|u| u.impact.clone()).unwrap_or_default();
        Ok(Postmortem {
            incident_id,
            version: 0,
            draft: true,
            sections: template(&x, &effect),
            author: None,
            updated_at: None,
        })
    }

    /// Saves the postmortem if nobody saved since `save.version`; otherwise hands back the
    /// current one and writes nothing.
    pub async fn save_postmortem(
        &self,
        incident_id: i64,
        save: PostmortemSave,
    ) -> Result<Postmortem, SaveError> {
        check(&save.sections)?;
        let json = serde_json::to_string(&save.sections)
            .map_err(|e| CoreError::internal("the postmortem export failed", e))?;
        let expected = save.version;
        let out = self
            .db
            .run(move |s| s.save_postmortem(incident_id, expected, &json, None))
            .await?;
        match out {
            Ok(p) => Ok(from_stored(incident_id, p)?),
            Err(current) if current.version == 0 => Err(SaveError::Stale(Box::new(
                self.postmortem(incident_id).await?,
            ))),
            Err(current) => Err(SaveError::Stale(Box::new(from_stored(
                incident_id,
                current,
            )?))),
        }
    }

    /// Pins, rewords or moves a timeline entry.
    pub async fn edit_timeline_event(
        &self,
        id: i64,
        patch: TimelinePatch,
    ) -> Result<TimelineEvent, CoreError> {
        let message = match &patch.message {
            Some(m) => Some(required("message", m, 2000)?),
            None => None,
        };
        let at = crate::event_time::given_time(patch.occurred_at.as_deref())?;
        let edit = TimelineEdit {
            message,
            occurred_at: at.as_ref().map(|p| p.at),
            pinned: patch.pinned,
        };
        let mut ev = self
            .db
            .run(move |s| s.edit_timeline_event(id, &edit))
            .await?;
        ev.assumed_zone = at.and_then(|p| p.assumed_zone);
        Ok(ev)
    }

    /// Deletes a timeline entry.
    pub async fn delete_timeline_event(&self, id: i64) -> Result<(), CoreError> {
        self.db.run(move |s| s.delete_timeline_event(id)).await
    }

    /// The postmortem with its incident and screenshots, for the exports.
    pub async fn postmortem_bundle(
        &self,
        incident_id: i64,
    ) -> Result<crate::pm_export::Bundle, CoreError> {
        let postmortem = self.postmortem(incident_id).await?;
        let x = self.incidents.export(incident_id).await?;
        let mut shots = Vec::new();
        for e in x.evidence.iter().filter(|e| e.image.is_some()) {
            // The redacted copy when there is one: exports never carry what was blacked out.
            let (bytes, mime) = self.evidence.shared_image(e.id).await?;
            shots.push(crate::pm_export::Shot {
                evidence: e.clone(),
                bytes,
                mime,
            });
        }
        Ok(crate::pm_export::Bundle {
            postmortem,
            incident: x.incident,
            shots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_bounded_naming_the_field() {
        let mut s = PostmortemSections::default();
        assert!(check(&s).is_ok());
        s.root_cause = "x".repeat(MAX_SECTION + 1);
        let e = check(&s).unwrap_err().to_string();
        assert!(e.starts_with("sections.root_cause"), "{e}");
        assert_eq!(minutes(Some(3 * 3600 + 5 * 60)), "3h 05m");
        assert_eq!(minutes(Some(125)), "2m");
    }

    fn export_with(entries: usize) -> IncidentExport {
        let incident = serde_json::from_value(serde_json::json!({
            "id": 7, "title": "checkout p99 spike after deploy v2.41.0", "description": "",
            "severity": "high", "status": "mitigated", "source": "manual", "external_id": null,
            "created_at": "2026-11-30T07:10:00Z", "updated_at": "2026-11-30T07:40:00Z",
            "acknowledged_at": "2026-11-30T07:14:00Z", "mitigated_at": "2026-11-30T07:40:00Z",
            "resolved_at": null, "tta_seconds": 240, "ttm_seconds": 1800, "ttr_seconds": null,
            "next_update_at": null, "evidence_count": 0
        }))
        .unwrap();
        let timeline = (0..entries)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "id": i, "incident_id": 7, "kind": "note",
                    "message": format!("entry {i}\nsecond line"),
                    "occurred_at": "2026-11-30T07:12:58Z", "occurred_at_source": "user",
                    "assumed_zone": null, "created_at": "2026-11-30T08:00:00Z",
                    "evidence_id": null, "pinned": false, "author": "Ana Lima"
                }))
                .unwrap()
            })
            .collect();
        IncidentExport {
            incident,
            timeline,
            evidence: vec![],
            hypotheses: vec![],
            actions: vec![],
        }
    }

    #[test]
    fn summary_facts_are_one_line_each_and_keep_the_latest_that_fit() {
        let f = summary_facts(&export_with(3));
        let lines: Vec<&str> = f.lines().collect();
        assert!(
            lines[0].starts_with("Incident #7: checkout p99 spike"),
            "{f}"
        );
        assert!(
            lines[1].contains("Time to acknowledge 4m, to mitigate 30m"),
            "{f}"
        );
        assert_eq!(
            lines[2],
            "2026-11-30T07:12:58Z entry 0 second line (Ana Lima)"
        );
        assert_eq!(lines.len(), 5);
        let long = summary_facts(&export_with(2000));
        assert!(long.chars().count() <= MAX_FACTS, "{}", long.len());
        assert!(long.ends_with("entry 1999 second line (Ana Lima)"));
        assert!(!long.contains("entry 0 "), "the oldest make room");
    }
}
