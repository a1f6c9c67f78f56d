//! The persistent outbox: outgoing posts survive restarts and network outages, are retried with
//! backoff and end either delivered or dead-lettered (security.md §6).

use opslens_domain::{OutboxMessage, OutboxStatus, Timestamp};
use rusqlite::{params, OptionalExtension, Row};

use crate::integrations::record_error_in;
use crate::row::{now, opt_ts, ts, Ts};
use crate::{Result, SqliteStore, StoreError};

/// The integration an outbox target belongs to (`webhook:2` → `webhooks`), for its error
/// history.
fn integration_of(target: &str) -> &str {
    if target.starts_with("webhook:") {
        "webhooks"
    } else {
        target
    }
}

/// A post to queue.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// Idempotency key (`msg_…`).
    pub message_id: String,
    /// `slack`, `teams`, `webhook:<n>`.
    pub target: String,
    /// e.g. `incident.updated`.
    pub event_type: String,
    /// The incident it is about.
    pub incident_id: Option<i64>,
    /// Body in the target's format.
    pub payload: serde_json::Value,
}

/// Outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub enum OutboxResult {
    /// 2xx.
    Delivered {
        /// HTTP status.
        status: i64,
    },
    /// Failed, try again at `next`.
    Retry {
        /// HTTP status, when there was an answer.
        status: Option<i64>,
        /// What went wrong.
        error: String,
        /// When to try again.
        next: Timestamp,
    },
    /// Failed for good (a 4xx other than 429, or the last attempt).
    Dead {
        /// HTTP status, when there was an answer.
        status: Option<i64>,
        /// What went wrong.
        error: String,
    },
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<OutboxMessage> {
    let payload: String = r.get("payload")?;
    let status: String = r.get("status")?;
    Ok(OutboxMessage {
        id: r.get("id")?,
        message_id: r.get("message_id")?,
        target: r.get("target")?,
        event_type: r.get("event_type")?,
        incident_id: r.get("incident_id")?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        status: OutboxStatus::parse(&status).unwrap_or(OutboxStatus::Dead),
        attempts: r.get("attempts")?,
        next_attempt_at: r.get::<_, Ts>("next_attempt_at")?.0,
        last_status: r.get("last_status")?,
        last_error: r.get("last_error")?,
        created_at: r.get::<_, Ts>("created_at")?.0,
        delivered_at: opt_ts(r, "delivered_at")?,
    })
}

fn get_in(c: &rusqlite::Connection, id: i64) -> Result<OutboxMessage> {
    c.query_row("SELECT * FROM outbox WHERE id = ?1", [id], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "outbox message",
            id,
        })
}

impl SqliteStore {
    /// Queues posts, due now.
    pub fn enqueue_outbox(&self, rows: &[NewOutbox]) -> Result<Vec<OutboxMessage>> {
        self.write(|tx| {
            let t = ts(&now());
            let mut out = Vec::new();
            for n in rows {
                out.push(get_in(tx, tx.queue_outbox(n, &t)?)?);
            }
            Ok(out)
        })
    }

    /// Pending posts due at `at`, oldest first.
    pub fn due_outbox(&self, at: &Timestamp, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![ts(at), limit], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// When the next pending post is due, if any (the worker sleeps until then).
    pub fn next_outbox_due(&self) -> Result<Option<Timestamp>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT next_attempt_at FROM outbox WHERE status = 'pending'
                 ORDER BY next_attempt_at LIMIT 1",
                [],
                |r| r.get::<_, Ts>(0),
            )
            .optional()?
            .map(|t| t.0))
        })
    }

    /// Records an attempt.
    pub fn record_outbox_attempt(&self, id: i64, result: &OutboxResult) -> Result<OutboxMessage> {
        self.write(|tx| {
            let t = ts(&now());
            match result {
                OutboxResult::Delivered { status } => tx.execute(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_status = ?2,
                        last_error = NULL, delivered_at = ?3, updated_at = ?3 WHERE id = ?1",
                    params![id, status, t],
                )?,
                OutboxResult::Retry { status, error, next } => tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_status = ?2, last_error = ?3,
                        next_attempt_at = ?4, updated_at = ?5 WHERE id = ?1",
                    params![id, status, error, ts(next), t],
                )?,
                OutboxResult::Dead { status, error } => tx.execute(
                    "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_status = ?2,
                        last_error = ?3, updated_at = ?4 WHERE id = ?1",
                    params![id, status, error, t],
                )?,
            };
            let m = get_in(tx, id)?;
            if let OutboxResult::Retry { error, .. } | OutboxResult::Dead { error, .. } = result {
                let what = if m.status == OutboxStatus::Dead {
                    "gave up on"
                } else {
                    "will retry"
                };
                let msg = format!("{} {what} {}: {error}", m.target, m.event_type);
                record_error_in(tx, integration_of(&m.target), &msg)?;
            }
            Ok(m)
        })
    }

    /// Outbox rows, newest first, optionally of one status.
    pub fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT * FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![status.map(|s| s.as_str()), limit], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Puts a dead (or pending) row back in the queue, due now, with a fresh attempt budget.
    /// Delivered rows are left alone (409).
    pub fn retry_outbox(&self, id: i64) -> Result<OutboxMessage> {
        self.write(|tx| {
            let m = get_in(tx, id)?;
            if m.status == OutboxStatus::Delivered {
                return Err(StoreError::Conflict(format!(
                    "outbox message {id} was already delivered"
                )));
            }
            let t = ts(&now());
            tx.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                    updated_at = ?2 WHERE id = ?1",
                params![id, t],
            )?;
            get_in(tx, id)
        })
    }

    /// Number of outbox rows per status.
    pub fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
            let rows = st
                .query_map([], |r| {
                    let s: String = r.get(0)?;
                    Ok((
                        OutboxStatus::parse(&s).unwrap_or(OutboxStatus::Dead),
                        r.get(1)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
