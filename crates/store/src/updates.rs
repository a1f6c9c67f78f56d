//! Status updates: stored, put on the timeline, the incident's next-due time moved, and
//! queued for Slack/Teams/webhooks, all in one transaction.

use opslens_domain::{FeedKind, FeedOp, IncidentStatus, StatusUpdate, Timestamp};
use rusqlite::{params, Connection, Row};

use crate::incidents::ensure_exists;
use crate::row::get_in;
use crate::row::{now, opt_ts, ts, En, Ts};
use crate::tx::Fact;
use crate::{Result, SqliteStore};

/// A validated status update.
#[derive(Debug, Clone)]
pub struct StatusUpdateRow {
    /// What is known and being done.
    pub text: String,
    /// Who is affected and how.
    pub impact: String,
    /// When the next one is due.
    pub next_update_at: Option<Timestamp>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<StatusUpdate> {
    Ok(StatusUpdate {
        id: r.get("id")?,
        incident_id: r.get("incident_id")?,
        status: r.get::<_, En<IncidentStatus>>("status")?.0,
        impact: r.get("impact")?,
        text: r.get("text")?,
        next_update_at: opt_ts(r, "next_update_at")?,
        author: r.get("author")?,
        created_at: r.get::<_, Ts>("created_at")?.0,
    })
}

fn get(c: &Connection, id: i64) -> Result<StatusUpdate> {
    Ok(c.query_row("SELECT * FROM status_update WHERE id = ?1", [id], from_row)?)
}

/// The text people read in the timeline and in chat.
impl SqliteStore {
    /// Status updates of an incident, oldest first.
    pub fn status_updates(&self, incident_id: i64) -> Result<Vec<StatusUpdate>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            let mut st =
                c.prepare("SELECT * FROM status_update WHERE incident_id = ?1 ORDER BY id")?;
            let rows = st
                .query_map([incident_id], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Records a status update at the incident's current status: the row, a timeline entry,
    /// the incident's next-due time, and one outgoing message per destination.
    pub fn add_status_update(
        &self,
        incident_id: i64,
        new: &StatusUpdateRow,
    ) -> Result<StatusUpdate> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let inc = get_in(tx, incident_id)?;
            let t = now();
            tx.execute(
                "INSERT INTO status_update(incident_id, status, impact, text, next_update_at, created_at, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    incident_id,
                    inc.status.as_str(),
                    new.impact,
                    new.text,
                    new.next_update_at.as_ref().map(ts),
                    ts(&t),
                    tx.author()
                ],
            )?;
            let u = get(tx, tx.last_insert_rowid())?;
            tx.execute(
                "UPDATE incident SET next_update_at = ?1, updated_at = ?2 WHERE id = ?3",
                params![new.next_update_at.as_ref().map(ts), ts(&t), incident_id],
            )?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, incident_id, incident_id);
            tx.record(&t, Fact::StatusUpdatePosted(u.clone()))?;
            Ok(u)
        })
    }
}
