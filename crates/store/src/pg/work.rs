//! The timeline, hypotheses and action items on PostgreSQL (as `crate::work` and
//! `crate::event_time`).

use opslens_domain::{
    Action, ActionPatch, ActionStatus, FeedKind, FeedOp, Hypothesis, HypothesisOrigin,
    HypothesisPatch, HypothesisStatus, NewAction, NewHypothesis, NewTimelineEvent,
    OccurredAtSource, TimelineEvent, TimelineKind, Timestamp,
};
use postgres::{GenericClient, Row};

use super::row::{en, ensure_incident, t};
use super::{PgStore, PgTx};
use crate::row::{now, ts};
use crate::tx::Fact;
use crate::{At, Result, StoreError};

pub(crate) fn event_from_row(r: &Row) -> Result<TimelineEvent> {
    Ok(TimelineEvent {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        kind: en(r, "kind")?,
        message: r.try_get("message")?,
        occurred_at: t(r, "occurred_at")?,
        occurred_at_source: en(r, "occurred_at_source")?,
        assumed_zone: None,
        created_at: t(r, "created_at")?,
        evidence_id: r.try_get("evidence_id")?,
        pinned: r.try_get("pinned")?,
        author: r.try_get("author")?,
    })
}

/// Checks that every evidence id belongs to `incident_id` (as `crate::work::check_evidence`).
pub(crate) fn check_evidence(
    c: &mut impl GenericClient,
    incident_id: i64,
    ids: &[i64],
) -> Result<()> {
    for id in ids {
        let owner: Option<i64> = c
            .query_opt("SELECT incident_id FROM evidence WHERE id = $1", &[id])?
            .map(|r| r.get(0));
        match owner {
            None => {
                return Err(StoreError::NotFound {
                    what: "evidence",
                    id: *id,
                })
            }
            Some(o) if o != incident_id => {
                return Err(StoreError::Conflict(format!(
                    "evidence {id} belongs to incident {o}, not {incident_id}"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Sets the time of a piece of evidence and of its "evidence added" entry (as
/// `crate::event_time::set_evidence_time`); returns whether anything changed.
pub(crate) fn set_evidence_time(tx: &mut PgTx<'_, '_>, evidence_id: i64, at: At) -> Result<bool> {
    let guard = if at.source == OccurredAtSource::User {
        ""
    } else {
        " AND occurred_at_source <> 'user'"
    };
    let time = ts(&at.time);
    let source = at.source.as_str();
    let changed = tx.c.execute(
        &format!(
            "UPDATE evidence SET occurred_at = $1, occurred_at_source = $2
             WHERE id = $3 AND (occurred_at <> $1 OR occurred_at_source <> $2){guard}"
        ),
        &[&time, &source, &evidence_id],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    tx.evidence_updated(evidence_id)?;
    let moved: Vec<(i64, i64)> =
        tx.c.query(
            "UPDATE timeline_event SET occurred_at = $1, occurred_at_source = $2
             WHERE evidence_id = $3 AND kind = 'evidence_added' RETURNING id, incident_id",
            &[&time, &source, &evidence_id],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, incident_id) in moved {
        tx.touched(FeedKind::Timeline, FeedOp::Updated, incident_id, id);
    }
    Ok(true)
}

impl PgStore {
    pub(crate) fn timeline_pg(&self, incident_id: i64) -> Result<Vec<TimelineEvent>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            c.query(
                "SELECT * FROM timeline_event WHERE incident_id = $1 ORDER BY occurred_at, id",
                &[&incident_id],
            )?
            .iter()
            .map(event_from_row)
            .collect()
        })
    }

    pub(crate) fn add_timeline_event_pg(
        &self,
        incident_id: i64,
        new: &NewTimelineEvent,
        at: Option<Timestamp>,
    ) -> Result<TimelineEvent> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            if let Some(e) = new.evidence_id {
                check_evidence(&mut tx.c, incident_id, &[e])?;
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
            let r =
                tx.c.query_one("SELECT * FROM timeline_event WHERE id = $1", &[&id])?;
            event_from_row(&r)
        })
    }
}

fn action_from_row(r: &Row) -> Result<Action> {
    Ok(Action {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        title: r.try_get("title")?,
        owner: r.try_get("owner")?,
        status: en(r, "status")?,
        due_at: super::row::ot(r, "due_at")?,
        author: r.try_get("author")?,
        created_at: t(r, "created_at")?,
        updated_at: t(r, "updated_at")?,
    })
}

pub(crate) fn hypothesis_in(c: &mut impl GenericClient, id: i64) -> Result<Hypothesis> {
    let r = c
        .query_opt(
            "SELECT id, incident_id, statement, status, origin, created_at, updated_at, author
             FROM hypothesis WHERE id = $1",
            &[&id],
        )?
        .ok_or(StoreError::NotFound {
            what: "hypothesis",
            id,
        })?;
    let evidence_ids = c
        .query(
            "SELECT evidence_id FROM hypothesis_evidence WHERE hypothesis_id = $1 ORDER BY evidence_id",
            &[&id],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Hypothesis {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        statement: r.try_get("statement")?,
        status: en(&r, "status")?,
        origin: en(&r, "origin")?,
        evidence_ids,
        author: r.try_get("author")?,
        created_at: t(&r, "created_at")?,
        updated_at: t(&r, "updated_at")?,
    })
}

fn action_in(c: &mut impl GenericClient, id: i64) -> Result<Action> {
    match c.query_opt("SELECT * FROM action_item WHERE id = $1", &[&id])? {
        Some(r) => action_from_row(&r),
        None => Err(StoreError::NotFound { what: "action", id }),
    }
}

fn link_evidence(c: &mut impl GenericClient, hypothesis_id: i64, ids: &[i64]) -> Result<()> {
    c.execute(
        "DELETE FROM hypothesis_evidence WHERE hypothesis_id = $1",
        &[&hypothesis_id],
    )?;
    for e in ids {
        c.execute(
            "INSERT INTO hypothesis_evidence(hypothesis_id, evidence_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&hypothesis_id, e],
        )?;
    }
    Ok(())
}

/// Inserts a hypothesis with its evidence links and records it as proposed (as
/// `crate::work::insert_hypothesis`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_hypothesis(
    tx: &mut PgTx<'_, '_>,
    incident_id: i64,
    statement: &str,
    status: HypothesisStatus,
    origin: HypothesisOrigin,
    evidence_ids: &[i64],
    at: &Timestamp,
) -> Result<Hypothesis> {
    let author = tx.author();
    let id: i64 = tx
        .c
        .query_one(
            "INSERT INTO hypothesis(incident_id, statement, status, origin, created_at, updated_at, author)
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id",
            &[
                &incident_id,
                &statement,
                &status.as_str(),
                &origin.as_str(),
                &ts(at),
                &author,
            ],
        )?
        .get(0);
    tx.touched(FeedKind::Hypothesis, FeedOp::Created, incident_id, id);
    link_evidence(&mut tx.c, id, evidence_ids)?;
    let h = hypothesis_in(&mut tx.c, id)?;
    tx.record(at, Fact::HypothesisProposed(h.clone()))?;
    Ok(h)
}

impl PgStore {
    pub(crate) fn hypotheses_pg(&self, incident_id: i64) -> Result<Vec<Hypothesis>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            let ids: Vec<i64> = c
                .query(
                    "SELECT id FROM hypothesis WHERE incident_id = $1 ORDER BY id",
                    &[&incident_id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids.into_iter().map(|id| hypothesis_in(c, id)).collect()
        })
    }

    pub(crate) fn add_hypothesis_pg(
        &self,
        incident_id: i64,
        new: &NewHypothesis,
    ) -> Result<Hypothesis> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            check_evidence(&mut tx.c, incident_id, &new.evidence_ids)?;
            insert_hypothesis(
                tx,
                incident_id,
                &new.statement,
                new.status.unwrap_or(HypothesisStatus::Proposed),
                new.origin.unwrap_or(HypothesisOrigin::Human),
                &new.evidence_ids,
                &now(),
            )
        })
    }

    pub(crate) fn update_hypothesis_pg(
        &self,
        id: i64,
        patch: &HypothesisPatch,
    ) -> Result<Hypothesis> {
        self.write(|tx| {
            let old = hypothesis_in(&mut tx.c, id)?;
            tx.touched(FeedKind::Hypothesis, FeedOp::Updated, old.incident_id, id);
            let at = now();
            if let Some(s) = &patch.statement {
                tx.c.execute(
                    "UPDATE hypothesis SET statement = $1 WHERE id = $2",
                    &[s, &id],
                )?;
            }
            if let Some(ids) = &patch.evidence_ids {
                check_evidence(&mut tx.c, old.incident_id, ids)?;
                link_evidence(&mut tx.c, id, ids)?;
            }
            if let Some(st) = patch.status.filter(|s| *s != old.status) {
                tx.c.execute(
                    "UPDATE hypothesis SET status = $1 WHERE id = $2",
                    &[&st.as_str(), &id],
                )?;
            }
            tx.c.execute(
                "UPDATE hypothesis SET updated_at = $1 WHERE id = $2",
                &[&ts(&at), &id],
            )?;
            let new = hypothesis_in(&mut tx.c, id)?;
            tx.record(
                &at,
                Fact::HypothesisChanged {
                    old,
                    new: new.clone(),
                },
            )?;
            Ok(new)
        })
    }

    pub(crate) fn actions_pg(&self, incident_id: i64) -> Result<Vec<Action>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            c.query(
                "SELECT * FROM action_item WHERE incident_id = $1 ORDER BY id",
                &[&incident_id],
            )?
            .iter()
            .map(action_from_row)
            .collect()
        })
    }

    pub(crate) fn add_action_pg(&self, incident_id: i64, new: &NewAction) -> Result<Action> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            let at = now();
            let status = new.status.unwrap_or(ActionStatus::Open);
            let author = tx.author();
            let id: i64 = tx
                .c
                .query_one(
                    "INSERT INTO action_item(incident_id, title, owner, status, due_at, created_at, updated_at, author)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
                    &[
                        &incident_id,
                        &new.title,
                        &new.owner,
                        &status.as_str(),
                        &new.due_at.as_ref().map(ts),
                        &ts(&at),
                        &author,
                    ],
                )?
                .get(0);
            tx.touched(FeedKind::Action, FeedOp::Created, incident_id, id);
            let a = action_in(&mut tx.c, id)?;
            tx.record(&at, Fact::ActionAdded(a.clone()))?;
            Ok(a)
        })
    }

    pub(crate) fn update_action_pg(&self, id: i64, patch: &ActionPatch) -> Result<Action> {
        self.write(|tx| {
            let old = action_in(&mut tx.c, id)?;
            tx.touched(FeedKind::Action, FeedOp::Updated, old.incident_id, id);
            let at = now();
            if let Some(v) = &patch.title {
                tx.c.execute("UPDATE action_item SET title = $1 WHERE id = $2", &[v, &id])?;
            }
            if let Some(v) = &patch.owner {
                tx.c.execute("UPDATE action_item SET owner = $1 WHERE id = $2", &[v, &id])?;
            }
            if let Some(v) = &patch.due_at {
                tx.c.execute(
                    "UPDATE action_item SET due_at = $1 WHERE id = $2",
                    &[&ts(v), &id],
                )?;
            }
            if let Some(st) = patch.status.filter(|s| *s != old.status) {
                tx.c.execute(
                    "UPDATE action_item SET status = $1 WHERE id = $2",
                    &[&st.as_str(), &id],
                )?;
            }
            tx.c.execute(
                "UPDATE action_item SET updated_at = $1 WHERE id = $2",
                &[&ts(&at), &id],
            )?;
            let a = action_in(&mut tx.c, id)?;
            tx.record(
                &at,
                Fact::ActionChanged {
                    old,
                    new: a.clone(),
                },
            )?;
            Ok(a)
        })
    }
}
