//! Incident export: everything known about one incident, as JSON for tools and as Markdown
//! for the post-mortem document or the ticket.

use std::fmt::Write;

use opslens_domain::{Action, Evidence, Hypothesis, Incident, TimelineEvent};
use serde::Serialize;
use utoipa::ToSchema;

use crate::incidents::IncidentService;
use crate::CoreError;

/// One incident with all that hangs on it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentExport {
    /// The incident.
    pub incident: Incident,
    /// Timeline in time order.
    pub timeline: Vec<TimelineEvent>,
    /// Evidence, oldest first (images are referenced, not inlined).
    pub evidence: Vec<Evidence>,
    /// Hypotheses board.
    pub hypotheses: Vec<Hypothesis>,
    /// Action items.
    pub actions: Vec<Action>,
}

impl IncidentService {
    /// Gathers an incident with its timeline, evidence, hypotheses and actions.
    pub async fn export(&self, id: i64) -> Result<IncidentExport, CoreError> {
        Ok(IncidentExport {
            incident: self.db.incident(id).await?,
            timeline: self.db.run(move |s| s.timeline(id)).await?,
            evidence: self.db.run(move |s| s.list_evidence(id)).await?,
            hypotheses: self.db.run(move |s| s.hypotheses(id)).await?,
            actions: self.db.run(move |s| s.actions(id)).await?,
        })
    }
}

impl IncidentExport {
    /// Renders the export as a Markdown document.
    pub fn to_markdown(&self) -> String {
        let i = &self.incident;
        let mut md = String::new();
        let _ = writeln!(md, "# Incident #{}: {}\n", i.id, i.title);
        let _ = writeln!(
            md,
            "- **Severity:** {}\n- **Status:** {}",
            i.severity, i.status
        );
        let _ = writeln!(md, "- **Opened:** {}", i.created_at.to_rfc3339());
        if let Some(t) = i.resolved_at {
            let _ = writeln!(
                md,
                "- **Resolved:** {} ({} min open)",
                t.to_rfc3339(),
                (t - i.created_at).num_minutes()
            );
        }
        if !i.description.is_empty() {
            let _ = writeln!(md, "\n{}", i.description);
        }
        md.push_str("\n## Timeline\n\n");
        for e in &self.timeline {
            let _ = writeln!(
                md,
                "- `{}` {}",
                e.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                e.message
            );
        }
        md.push_str("\n## Hypotheses\n\n");
        if self.hypotheses.is_empty() {
            md.push_str("_None recorded._\n");
        }
        for h in &self.hypotheses {
            let ev: Vec<String> = h.evidence_ids.iter().map(|e| format!("#{e}")).collect();
            let link = if ev.is_empty() {
                String::new()
            } else {
                format!(" (evidence {})", ev.join(", "))
            };
            let _ = writeln!(
                md,
                "- **{}** ({}): {}{link}",
                h.status, h.origin, h.statement
            );
        }
        md.push_str("\n## Action items\n\n");
        if self.actions.is_empty() {
            md.push_str("_None recorded._\n");
        }
        for a in &self.actions {
            let done = if a.status.as_str() == "done" {
                "x"
            } else {
                " "
            };
            let owner = a
                .owner
                .as_deref()
                .map(|o| format!(" — {o}"))
                .unwrap_or_default();
            let due = a
                .due_at
                .map(|d| format!(" (due {})", d.format("%Y-%m-%d")))
                .unwrap_or_default();
            let _ = writeln!(md, "- [{done}] {} [{}]{owner}{due}", a.title, a.status);
        }
        md.push_str("\n## Evidence\n");
        for e in &self.evidence {
            let _ = writeln!(
                md,
                "\n### #{} {} ({}, {})\n",
                e.id, e.title, e.evidence_type, e.source
            );
            if let Some(state) = e.analysis_state {
                // A redacted screenshot is known by its redacted copy, the one that is shared.
                match &e.redaction {
                    Some(r) => {
                        let _ = writeln!(
                            md,
                            "_Screenshot (redacted, {} boxes), analysis: {state}; sha256 `{}`_\n",
                            r.boxes.len(),
                            r.sha256
                        );
                    }
                    None => {
                        let _ = writeln!(
                            md,
                            "_Screenshot, analysis: {state}; sha256 `{}`_\n",
                            e.sha256
                        );
                    }
                }
            }
            if !e.content.is_empty() {
                let fence = if e.content.contains("```") {
                    "~~~~"
                } else {
                    "```"
                };
                let _ = writeln!(md, "{fence}\n{}\n{fence}", e.content.trim_end());
            }
        }
        md
    }
}
