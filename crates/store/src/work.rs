//! Timeline, hypotheses and action items of an incident.

use opslens_domain::{
    Action, ActionPatch, ActionStatus, FeedKind, FeedOp, Hypothesis, HypothesisOrigin,
    HypothesisPatch, HypothesisStatus, NewAction, NewHypothesis, OccurredAtSource, TimelineEvent,
    TimelineKind, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::incidents::ensure_exists;
use crate::row::{now, opt_ts, ts, En, Ts};
use crate::tx::{Fact, WriteTx};
use crate::{Result, SqliteStore, StoreError};

pub(crate) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<TimelineEvent> {
    Ok(TimelineEvent {
        id: r.get("id")?,
        incident_id: r.get("incident_id")?,
        kind: r.get::<_, En<TimelineKind>>("kind")?.0,
        message: r.get("message")?,
        occurred_at: r.get::<_, Ts>("occurred_at")?.0,
        occurred_at_source: r.get::<_, En<OccurredAtSource>>("occurred_at_source")?.0,
        assumed_zone: None,
        created_at: r.get::<_, Ts>("created_at")?.0,
        evidence_id: r.get("evidence_id")?,
        pinned: r.get::<_, i64>("pinned")? != 0,
        author: r.get("author")?,
    })
}

fn action_from_row(r: &Row<'_>) -> rusqlite::Result<Action> {
    Ok(Action {
        id: r.get("id")?,
        incident_id: r.get("incident_id")?,
        title: r.get("title")?,
        owner: r.get("owner")?,
        status: r.get::<_, En<ActionStatus>>("status")?.0,
        due_at: opt_ts(r, "due_at")?,
        author: r.get("author")?,
        created_at: r.get::<_, Ts>("created_at")?.0,
        updated_at: r.get::<_, Ts>("updated_at")?.0,
    })
}

/// Checks that every evidence id belongs to `incident_id`, so a board never links evidence of
/// another incident.
pub(crate) fn check_evidence(c: &Connection, incident_id: i64, ids: &[i64]) -> Result<()> {
    for id in ids {
        let owner: Option<i64> = c
            .query_row(
                "SELECT incident_id FROM evidence WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
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

pub(crate) fn hypothesis_in(c: &Connection, id: i64) -> Result<Hypothesis> {
    let mut h = c
        .query_row(
            "SELECT id, incident_id, statement, status, origin, created_at, updated_at, author FROM hypothesis WHERE id = ?1",
            [id],
            |r| {
                Ok(Hypothesis {
                    id: r.get(0)?,
                    incident_id: r.get(1)?,
                    statement: r.get(2)?,
                    status: r.get::<_, En<HypothesisStatus>>(3)?.0,
                    origin: r.get::<_, En<HypothesisOrigin>>(4)?.0,
                    evidence_ids: Vec::new(),
                    author: r.get(7)?,
                    created_at: r.get::<_, Ts>(5)?.0,
                    updated_at: r.get::<_, Ts>(6)?.0,
                })
            },
        )
        .optional()?
        .ok_or(StoreError::NotFound { what: "hypothesis", id })?;
    let mut st = c.prepare(
        "SELECT evidence_id FROM hypothesis_evidence WHERE hypothesis_id = ?1 ORDER BY evidence_id",
    )?;
    h.evidence_ids = st
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(h)
}

fn action_in(c: &Connection, id: i64) -> Result<Action> {
    c.query_row(
        "SELECT * FROM action_item WHERE id = ?1",
        [id],
        action_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound { what: "action", id })
}

/// Inserts a hypothesis with its evidence links and records it as proposed: the one insert
/// behind hypotheses from people, the model and change correlation.
pub(crate) fn insert_hypothesis(
    tx: &WriteTx<'_>,
    incident_id: i64,
    statement: &str,
    status: HypothesisStatus,
    origin: HypothesisOrigin,
    evidence_ids: &[i64],
    t: &Timestamp,
) -> Result<Hypothesis> {
    tx.execute(
        "INSERT INTO hypothesis(incident_id, statement, status, origin, created_at, updated_at, author)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![
            incident_id,
            statement,
            status.as_str(),
            origin.as_str(),
            ts(t),
            tx.author()
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.touched(FeedKind::Hypothesis, FeedOp::Created, incident_id, id);
    link_evidence(tx, id, evidence_ids)?;
    let h = hypothesis_in(tx, id)?;
    tx.record(t, Fact::HypothesisProposed(h.clone()))?;
    Ok(h)
}

fn link_evidence(c: &Connection, hypothesis_id: i64, ids: &[i64]) -> Result<()> {
    c.execute(
        "DELETE FROM hypothesis_evidence WHERE hypothesis_id = ?1",
        [hypothesis_id],
    )?;
    for e in ids {
        c.execute(
            "INSERT OR IGNORE INTO hypothesis_evidence(hypothesis_id, evidence_id) VALUES (?1, ?2)",
            [hypothesis_id, *e],
        )?;
    }
    Ok(())
}

impl SqliteStore {
    /// Timeline of an incident in time order.
    pub fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEvent>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            let mut st = c.prepare(
                "SELECT * FROM timeline_event WHERE incident_id = ?1 ORDER BY occurred_at, id",
            )?;
            let rows = st
                .query_map([incident_id], event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Hypotheses of an incident, oldest first.
    pub fn hypotheses(&self, incident_id: i64) -> Result<Vec<Hypothesis>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            let mut st =
                c.prepare("SELECT id FROM hypothesis WHERE incident_id = ?1 ORDER BY id")?;
            let ids = st
                .query_map([incident_id], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.into_iter().map(|id| hypothesis_in(c, id)).collect()
        })
    }

    /// Proposes a hypothesis, linking evidence of the same incident.
    pub fn add_hypothesis(&self, incident_id: i64, new: &NewHypothesis) -> Result<Hypothesis> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            check_evidence(tx, incident_id, &new.evidence_ids)?;
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

    /// Changes a hypothesis; the change is recorded as a fact (the narrator decides what of
    /// it is news: a status decision is, rewording and relinking evidence are housekeeping).
    pub fn update_hypothesis(&self, id: i64, patch: &HypothesisPatch) -> Result<Hypothesis> {
        self.write(|tx| {
            let old = hypothesis_in(tx, id)?;
            tx.touched(FeedKind::Hypothesis, FeedOp::Updated, old.incident_id, id);
            let t = now();
            if let Some(s) = &patch.statement {
                tx.execute(
                    "UPDATE hypothesis SET statement = ?1 WHERE id = ?2",
                    params![s, id],
                )?;
            }
            if let Some(ids) = &patch.evidence_ids {
                check_evidence(tx, old.incident_id, ids)?;
                link_evidence(tx, id, ids)?;
            }
            if let Some(st) = patch.status.filter(|s| *s != old.status) {
                tx.execute(
                    "UPDATE hypothesis SET status = ?1 WHERE id = ?2",
                    params![st.as_str(), id],
                )?;
            }
            tx.execute(
                "UPDATE hypothesis SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), id],
            )?;
            let new = hypothesis_in(tx, id)?;
            tx.record(
                &t,
                Fact::HypothesisChanged {
                    old,
                    new: new.clone(),
                },
            )?;
            Ok(new)
        })
    }

    /// Action items of an incident, oldest first.
    pub fn actions(&self, incident_id: i64) -> Result<Vec<Action>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            let mut st =
                c.prepare("SELECT * FROM action_item WHERE incident_id = ?1 ORDER BY id")?;
            let rows = st
                .query_map([incident_id], action_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Creates an action item and its timeline event.
    pub fn add_action(&self, incident_id: i64, new: &NewAction) -> Result<Action> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let t = now();
            let status = new.status.unwrap_or(ActionStatus::Open);
            tx.execute(
                "INSERT INTO action_item(incident_id, title, owner, status, due_at, created_at, updated_at, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                params![incident_id, new.title, new.owner, status.as_str(), new.due_at.as_ref().map(ts), ts(&t), tx.author()],
            )?;
            let id = tx.last_insert_rowid();
            tx.touched(FeedKind::Action, FeedOp::Created, incident_id, id);
            let a = action_in(tx, id)?;
            tx.record(&t, Fact::ActionAdded(a.clone()))?;
            Ok(a)
        })
    }

    /// Changes an action item; a status change goes on the timeline.
    pub fn update_action(&self, id: i64, patch: &ActionPatch) -> Result<Action> {
        self.write(|tx| {
            let old = action_in(tx, id)?;
            tx.touched(FeedKind::Action, FeedOp::Updated, old.incident_id, id);
            let t = now();
            if let Some(v) = &patch.title {
                tx.execute(
                    "UPDATE action_item SET title = ?1 WHERE id = ?2",
                    params![v, id],
                )?;
            }
            if let Some(v) = &patch.owner {
                tx.execute(
                    "UPDATE action_item SET owner = ?1 WHERE id = ?2",
                    params![v, id],
                )?;
            }
            if let Some(v) = &patch.due_at {
                tx.execute(
                    "UPDATE action_item SET due_at = ?1 WHERE id = ?2",
                    params![ts(v), id],
                )?;
            }
            if let Some(st) = patch.status.filter(|s| *s != old.status) {
                tx.execute(
                    "UPDATE action_item SET status = ?1 WHERE id = ?2",
                    params![st.as_str(), id],
                )?;
            }
            tx.execute(
                "UPDATE action_item SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), id],
            )?;
            let a = action_in(tx, id)?;
            tx.record(
                &t,
                Fact::ActionChanged {
                    old,
                    new: a.clone(),
                },
            )?;
            Ok(a)
        })
    }
}
