//! The stored postmortem and timeline edits on PostgreSQL (as `crate::postmortem`).

use opslens_domain::{FeedKind, FeedOp, OccurredAtSource, TimelineEvent, TimelineKind};
use postgres::GenericClient;

use super::row::{ensure_incident, ot};
use super::work::event_from_row;
use super::PgStore;
use crate::row::{now, ts};
use crate::{Result, StoreError, StoredPostmortem, TimelineEdit};

fn stored_in(c: &mut impl GenericClient, incident_id: i64) -> Result<Option<StoredPostmortem>> {
    c.query_opt(
        "SELECT version, sections, author, updated_at FROM postmortem WHERE incident_id = $1",
        &[&incident_id],
    )?
    .map(|r| {
        Ok(StoredPostmortem {
            version: r.try_get("version")?,
            sections: r.try_get("sections")?,
            author: r.try_get("author")?,
            updated_at: ot(&r, "updated_at")?,
        })
    })
    .transpose()
}

fn event_in(c: &mut impl GenericClient, id: i64) -> Result<TimelineEvent> {
    match c.query_opt("SELECT * FROM timeline_event WHERE id = $1", &[&id])? {
        Some(r) => event_from_row(&r),
        None => Err(StoreError::NotFound {
            what: "timeline entry",
            id,
        }),
    }
}

impl PgStore {
    pub(crate) fn postmortem_pg(&self, incident_id: i64) -> Result<Option<StoredPostmortem>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            stored_in(c, incident_id)
        })
    }

    pub(crate) fn save_postmortem_pg(
        &self,
        incident_id: i64,
        expected: i64,
        sections: &str,
        author: Option<&str>,
    ) -> Result<std::result::Result<StoredPostmortem, StoredPostmortem>> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            let current = stored_in(&mut tx.c, incident_id)?;
            let version = current.as_ref().map_or(0, |p| p.version);
            if version != expected {
                return Ok(Err(current.unwrap_or(StoredPostmortem {
                    version: 0,
                    sections: String::new(),
                    author: None,
                    updated_at: None,
                })));
            }
            let author: Option<String> = match author {
                Some(a) => Some(a.to_string()),
                None => tx
                    .c
                    .query_opt("SELECT name FROM person WHERE is_local_user", &[])?
                    .map(|r| r.get(0)),
            };
            tx.c.execute(
                "INSERT INTO postmortem(incident_id, version, sections, author, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT(incident_id) DO UPDATE SET version = $2, sections = $3, author = $4, updated_at = $5",
                &[&incident_id, &(version + 1), &sections, &author, &ts(&now())],
            )?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, incident_id, incident_id);
            let saved = stored_in(&mut tx.c, incident_id)?.ok_or(StoreError::NotFound {
                what: "postmortem of incident",
                id: incident_id,
            })?;
            Ok(Ok(saved))
        })
    }

    pub(crate) fn edit_timeline_event_pg(
        &self,
        id: i64,
        edit: &TimelineEdit,
    ) -> Result<TimelineEvent> {
        self.write(|tx| {
            let old = event_in(&mut tx.c, id)?;
            let free = matches!(old.kind, TimelineKind::Note | TimelineKind::Observation);
            if !free && (edit.message.is_some() || edit.occurred_at.is_some()) {
                return Err(StoreError::Conflict(format!(
                    "timeline entry {id} is a {} entry recorded by OpsLens: only notes and observations can be edited (pin it instead)",
                    old.kind
                )));
            }
            if let Some(m) = &edit.message {
                tx.c.execute("UPDATE timeline_event SET message = $1 WHERE id = $2", &[m, &id])?;
            }
            if let Some(at) = &edit.occurred_at {
                tx.c.execute(
                    "UPDATE timeline_event SET occurred_at = $1, occurred_at_source = $2 WHERE id = $3",
                    &[&ts(at), &OccurredAtSource::User.as_str(), &id],
                )?;
            }
            if let Some(p) = edit.pinned {
                tx.c.execute("UPDATE timeline_event SET pinned = $1 WHERE id = $2", &[&p, &id])?;
            }
            tx.touched(FeedKind::Timeline, FeedOp::Updated, old.incident_id, id);
            event_in(&mut tx.c, id)
        })
    }

    pub(crate) fn delete_timeline_event_pg(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            let old = event_in(&mut tx.c, id)?;
            if old.kind == TimelineKind::EvidenceAdded && old.evidence_id.is_some() {
                return Err(StoreError::Conflict(format!(
                    "timeline entry {id} records evidence {}: it stays while the evidence does",
                    old.evidence_id.unwrap_or_default()
                )));
            }
            tx.c.execute("DELETE FROM timeline_event WHERE id = $1", &[&id])?;
            tx.touched(FeedKind::Timeline, FeedOp::Deleted, old.incident_id, id);
            Ok(())
        })
    }
}
