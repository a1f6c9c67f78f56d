//! The stored postmortem (versioned: a save that started from an older version is refused and
//! changes nothing) and the timeline edits it needs: pin, reword, move, delete.

use opslens_domain::{FeedKind, FeedOp, OccurredAtSource, TimelineEvent, TimelineKind, Timestamp};
use rusqlite::{params, OptionalExtension};

use crate::incidents::ensure_exists;
use crate::row::{now, opt_ts, ts};
use crate::work::event_from_row;
use crate::{Result, SqliteStore, StoreError};

/// A postmortem as stored: its sections are JSON the core reads.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPostmortem {
    /// Save counter.
    pub version: i64,
    /// The sections, as JSON text.
    pub sections: String,
    /// Who saved it last.
    pub author: Option<String>,
    /// When.
    pub updated_at: Option<Timestamp>,
}

/// A change of one timeline entry.
#[derive(Debug, Clone, Default)]
pub struct TimelineEdit {
    /// New wording.
    pub message: Option<String>,
    /// New time (a person's).
    pub occurred_at: Option<Timestamp>,
    /// Pinned or not.
    pub pinned: Option<bool>,
}

fn stored_in(c: &rusqlite::Connection, incident_id: i64) -> Result<Option<StoredPostmortem>> {
    Ok(c.query_row(
        "SELECT version, sections, author, updated_at FROM postmortem WHERE incident_id = ?1",
        [incident_id],
        |r| {
            Ok(StoredPostmortem {
                version: r.get(0)?,
                sections: r.get(1)?,
                author: r.get(2)?,
                updated_at: opt_ts(r, "updated_at")?,
            })
        },
    )
    .optional()?)
}

fn event_in(c: &rusqlite::Connection, id: i64) -> Result<TimelineEvent> {
    c.query_row(
        "SELECT * FROM timeline_event WHERE id = ?1",
        [id],
        event_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound {
        what: "timeline entry",
        id,
    })
}

impl SqliteStore {
    /// The saved postmortem of an incident, if any.
    pub fn postmortem(&self, incident_id: i64) -> Result<Option<StoredPostmortem>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            stored_in(c, incident_id)
        })
    }

    /// Saves the postmortem if `expected` is its current version (0: never saved). `Ok(Err)`
    /// carries the current one when another save came first; nothing is written then.
    pub fn save_postmortem(
        &self,
        incident_id: i64,
        expected: i64,
        sections: &str,
        author: Option<&str>,
    ) -> Result<std::result::Result<StoredPostmortem, StoredPostmortem>> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let current = stored_in(tx, incident_id)?;
            let version = current.as_ref().map_or(0, |p| p.version);
            if version != expected {
                return Ok(Err(current.unwrap_or(StoredPostmortem {
                    version: 0,
                    sections: String::new(),
                    author: None,
                    updated_at: None,
                })));
            }
            let author = match author {
                Some(a) => Some(a.to_string()),
                None => tx
                    .query_row("SELECT name FROM person WHERE is_local_user = 1", [], |r| r.get(0))
                    .optional()?,
            };
            tx.execute(
                "INSERT INTO postmortem(incident_id, version, sections, author, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(incident_id) DO UPDATE SET version = ?2, sections = ?3, author = ?4, updated_at = ?5",
                params![incident_id, version + 1, sections, author, ts(&now())],
            )?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, incident_id, incident_id);
            let saved = stored_in(tx, incident_id)?.ok_or(StoreError::NotFound {
                what: "postmortem of incident",
                id: incident_id,
            })?;
            Ok(Ok(saved))
        })
    }

    /// Pins, rewords or moves a timeline entry. Only notes and observations may be reworded or
    /// moved (the rest is OpsLens's own record); any entry may be pinned.
    pub fn edit_timeline_event(&self, id: i64, edit: &TimelineEdit) -> Result<TimelineEvent> {
        self.write(|tx| {
            let old = event_in(tx, id)?;
            let free = matches!(old.kind, TimelineKind::Note | TimelineKind::Observation);
            if !free && (edit.message.is_some() || edit.occurred_at.is_some()) {
                return Err(StoreError::Conflict(format!(
                    "timeline entry {id} is a {} entry recorded by OpsLens: only notes and observations can be edited (pin it instead)",
                    old.kind
                )));
            }
            if let Some(m) = &edit.message {
                tx.execute("UPDATE timeline_event SET message = ?1 WHERE id = ?2", params![m, id])?;
            }
            if let Some(t) = &edit.occurred_at {
                tx.execute(
                    "UPDATE timeline_event SET occurred_at = ?1, occurred_at_source = ?2 WHERE id = ?3",
                    params![ts(t), OccurredAtSource::User.as_str(), id],
                )?;
            }
            if let Some(p) = edit.pinned {
                tx.execute("UPDATE timeline_event SET pinned = ?1 WHERE id = ?2", params![p, id])?;
            }
            tx.touched(FeedKind::Timeline, FeedOp::Updated, old.incident_id, id);
            event_in(tx, id)
        })
    }

    /// Deletes a timeline entry; an "evidence added" entry goes only with its evidence.
    pub fn delete_timeline_event(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            let old = event_in(tx, id)?;
            if old.kind == TimelineKind::EvidenceAdded && old.evidence_id.is_some() {
                return Err(StoreError::Conflict(format!(
                    "timeline entry {id} records evidence {}: it stays while the evidence does",
                    old.evidence_id.unwrap_or_default()
                )));
            }
            tx.execute("DELETE FROM timeline_event WHERE id = ?1", [id])?;
            tx.touched(FeedKind::Timeline, FeedOp::Deleted, old.incident_id, id);
            Ok(())
        })
    }
}
