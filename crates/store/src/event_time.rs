//! Event time: when a timeline entry or a piece of evidence happened, and where that time came
//! from (recorded, given by a person, derived from the content).
//!
//! A piece of evidence and its "evidence added" timeline entry always share one time, so the
//! timeline reads in the order things happened: every change of an evidence time goes through
//! [`set_evidence_time`], which moves the entry with it. A person's time is final: derived
//! times never replace it.

use opslens_domain::{
    Evidence, EvidenceType, FeedKind, FeedOp, NewTimelineEvent, OccurredAtSource, TimelineEvent,
    TimelineKind, Timestamp,
};
use rusqlite::params;

use crate::blobs::sha256_hex;
use crate::incidents::ensure_exists;
use crate::row::{now, ts};
use crate::work::{check_evidence, event_from_row};
use crate::{Result, SqliteStore};

pub use crate::tx::At;
use crate::tx::WriteTx;

/// Text evidence to store; validated by the caller.
#[derive(Debug, Clone)]
pub struct NewTextEvidence<'a> {
    /// Kind (never `screenshot`).
    pub evidence_type: EvidenceType,
    /// Label.
    pub title: &'a str,
    /// The text.
    pub content: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// When it happened; `None`: now, recorded.
    pub occurred_at: Option<At>,
}

/// Sets the time of a piece of evidence and of its "evidence added" entry. A derived time
/// leaves a person's time alone; returns whether anything changed.
pub(crate) fn set_evidence_time(tx: &WriteTx<'_>, evidence_id: i64, at: At) -> Result<bool> {
    let guard = if at.source == OccurredAtSource::User {
        ""
    } else {
        " AND occurred_at_source <> 'user'"
    };
    let changed = tx.execute(
        &format!(
            "UPDATE evidence SET occurred_at = ?1, occurred_at_source = ?2
             WHERE id = ?3 AND (occurred_at <> ?1 OR occurred_at_source <> ?2){guard}"
        ),
        params![ts(&at.time), at.source.as_str(), evidence_id],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    tx.evidence_updated(evidence_id)?;
    let moved = tx
        .prepare(
            "UPDATE timeline_event SET occurred_at = ?1, occurred_at_source = ?2
             WHERE evidence_id = ?3 AND kind = 'evidence_added' RETURNING id, incident_id",
        )?
        .query_map(
            params![ts(&at.time), at.source.as_str(), evidence_id],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, incident_id) in moved {
        tx.touched(FeedKind::Timeline, FeedOp::Updated, incident_id, id);
    }
    Ok(true)
}

impl SqliteStore {
    /// Adds text evidence and its timeline entry, both at the evidence's event time.
    pub fn add_text_evidence_at(
        &self,
        incident_id: i64,
        new: &NewTextEvidence<'_>,
    ) -> Result<Evidence> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let t = now();
            let at = new.occurred_at.unwrap_or(At {
                time: t,
                source: OccurredAtSource::Recorded,
            });
            tx.execute(
                "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256,
                                      occurred_at, occurred_at_source, created_at, updated_at, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                params![
                    incident_id,
                    new.evidence_type.as_str(),
                    new.title,
                    new.content,
                    new.source,
                    sha256_hex(new.content.as_bytes()),
                    ts(&at.time),
                    at.source.as_str(),
                    ts(&t),
                    tx.author()
                ],
            )?;
            let id = tx.last_insert_rowid();
            crate::evidence::added(tx, incident_id, id, at)
        })
    }

    /// Relabels a piece of evidence and/or sets its time (a person's: derived times never
    /// replace it afterwards).
    pub fn update_evidence(
        &self,
        id: i64,
        title: Option<&str>,
        occurred_at: Option<Timestamp>,
    ) -> Result<Evidence> {
        self.write(|tx| {
            let old = crate::evidence::get_in(tx, id)?;
            if let Some(t) = title.filter(|t| *t != old.title) {
                tx.execute(
                    "UPDATE evidence SET title = ?1, updated_at = ?2 WHERE id = ?3",
                    params![t, ts(&now()), id],
                )?;
                tx.evidence_updated(id)?;
            }
            if let Some(time) = occurred_at {
                let at = At {
                    time,
                    source: OccurredAtSource::User,
                };
                set_evidence_time(tx, id, at)?;
            }
            crate::evidence::get_in(tx, id)
        })
    }

    /// Adds a note or observation to the timeline at `at` (a person's time), else now.
    pub fn add_timeline_event(
        &self,
        incident_id: i64,
        new: &NewTimelineEvent,
        at: Option<Timestamp>,
    ) -> Result<TimelineEvent> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            if let Some(e) = new.evidence_id {
                check_evidence(tx, incident_id, &[e])?;
            }
            let at = match at {
                Some(time) => At {
                    time,
                    source: OccurredAtSource::User,
                },
                None => At {
                    time: now(),
                    source: OccurredAtSource::Recorded,
                },
            };
            let kind = new.kind.unwrap_or(TimelineKind::Note);
            let id = tx.add_event_at(incident_id, kind, &new.message, at, new.evidence_id)?;
            Ok(tx.query_row(
                "SELECT * FROM timeline_event WHERE id = ?1",
                [id],
                event_from_row,
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewIncidentRow;

    // The SQLite backend itself: one test writes through its writer directly.
    fn store_with_incident() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut s =
            SqliteStore::open_with(dir.path(), true, &crate::objects::BlobConfig::Local).unwrap();
        s.set_narrator(std::sync::Arc::new(crate::test_narrator::Terse));
        let inc = s.create_incident(NewIncidentRow::test("t")).unwrap();
        (dir, s, inc.id)
    }

    fn at(s: &str, source: OccurredAtSource) -> At {
        At {
            time: crate::row::parse_ts(s).unwrap(),
            source,
        }
    }

    #[test]
    fn a_derived_time_never_replaces_a_persons_and_the_entry_moves_with_the_evidence() {
        let (_d, s, inc) = store_with_incident();
        let new = NewTextEvidence {
            evidence_type: EvidenceType::Log,
            title: "api",
            content: "x",
            source: "cli",
            occurred_at: Some(at("2026-11-30T07:12:58Z", OccurredAtSource::Derived)),
        };
        let e = s.add_text_evidence_at(inc, &new).unwrap();
        assert_eq!(e.occurred_at_source, OccurredAtSource::Derived);
        let user = crate::row::parse_ts("2026-11-30T07:00:00Z").unwrap();
        s.update_evidence(e.id, None, Some(user)).unwrap();
        let later = at("2026-11-30T06:00:00Z", OccurredAtSource::Derived);
        let changed = s.write(|tx| set_evidence_time(tx, e.id, later)).unwrap();
        assert!(!changed);
        let e = s.evidence(e.id).unwrap();
        assert_eq!(
            (e.occurred_at, e.occurred_at_source),
            (user, OccurredAtSource::User)
        );
        let entry = s
            .timeline(inc)
            .unwrap()
            .into_iter()
            .find(|t| t.evidence_id == Some(e.id))
            .unwrap();
        assert_eq!(entry.occurred_at, user);
        assert_eq!(entry.occurred_at_source, OccurredAtSource::User);
        // The timeline is in event order: the evidence (07:00) before the opening (now).
        assert_eq!(s.timeline(inc).unwrap()[0].evidence_id, Some(e.id));
    }

    #[test]
    fn evidence_inserted_without_a_time_happened_when_recorded() {
        let (_d, s, inc) = store_with_incident();
        let e = s
            .add_text_evidence(inc, EvidenceType::Note, "n", "x", "")
            .unwrap();
        assert_eq!(e.occurred_at, e.created_at);
        assert_eq!(e.occurred_at_source, OccurredAtSource::Recorded);
    }
}
