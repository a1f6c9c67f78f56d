//! The outbox on PostgreSQL (as `crate::outbox`). Several replicas run a sender each: a
//! sender takes its due rows with `FOR UPDATE SKIP LOCKED` and claims them for a while
//! (`claimed_until`), so two replicas never post the same row at once; a sender that dies
//! lets its claim run out and another one takes the row (at-least-once, as the outbox
//! promises: receivers deduplicate on the message id).

use opslens_domain::{OutboxMessage, OutboxStatus, Timestamp};
use postgres::{GenericClient, Row};

use super::row::{ot, t};
use super::{PgStore, PgTx};
use crate::integrations::ERRORS_KEPT;
use crate::row::{now, ts};
use crate::{NewOutbox, OutboxResult, Result, StoreError};

/// How long a sender holds the rows it took before another replica may take them.
const CLAIM: chrono::Duration = chrono::Duration::minutes(10);

fn integration_of(target: &str) -> &str {
    if target.starts_with("webhook:") {
        "webhooks"
    } else {
        target
    }
}

fn from_row(r: &Row) -> Result<OutboxMessage> {
    let payload: String = r.try_get("payload")?;
    let status: String = r.try_get("status")?;
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        target: r.try_get("target")?,
        event_type: r.try_get("event_type")?,
        incident_id: r.try_get("incident_id")?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        status: OutboxStatus::parse(&status).unwrap_or(OutboxStatus::Dead),
        attempts: r.try_get("attempts")?,
        next_attempt_at: t(r, "next_attempt_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        created_at: t(r, "created_at")?,
        delivered_at: ot(r, "delivered_at")?,
    })
}

fn get_in(c: &mut impl GenericClient, id: i64) -> Result<OutboxMessage> {
    match c.query_opt("SELECT * FROM outbox WHERE id = $1", &[&id])? {
        Some(r) => from_row(&r),
        None => Err(StoreError::NotFound {
            what: "outbox message",
            id,
        }),
    }
}

/// Records an integration's error, keeping its newest [`ERRORS_KEPT`].
pub(crate) fn record_error_in(tx: &mut PgTx<'_, '_>, name: &str, message: &str) -> Result<()> {
    tx.c.execute(
        "INSERT INTO integration_error(name, occurred_at, message) VALUES ($1, $2, $3)",
        &[&name, &ts(&now()), &message],
    )?;
    tx.c.execute(
        "DELETE FROM integration_error WHERE name = $1 AND id <= (
             SELECT id FROM integration_error WHERE name = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        &[&name, &ERRORS_KEPT],
    )?;
    Ok(())
}

impl PgStore {
    pub(crate) fn enqueue_outbox_pg(&self, rows: &[NewOutbox]) -> Result<Vec<OutboxMessage>> {
        self.write(|tx| {
            let t = ts(&now());
            let mut out = Vec::new();
            for n in rows {
                let id = tx.queue_outbox(n, &t)?;
                out.push(get_in(&mut tx.c, id)?);
            }
            Ok(out)
        })
    }

    /// Takes the pending rows due at `at` that no other sender holds, oldest first, and
    /// holds them for [`CLAIM`].
    pub(crate) fn due_outbox_pg(&self, at: &Timestamp, limit: u32) -> Result<Vec<OutboxMessage>> {
        let now_t = now();
        let until = ts(&(now_t + CLAIM));
        self.write_queue(|tx| {
            let mut rows =
                tx.c.query(
                    "UPDATE outbox SET claimed_until = $3
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE status = 'pending' AND next_attempt_at <= $1
                                    AND (claimed_until IS NULL OR claimed_until < $4)
                                  ORDER BY next_attempt_at, id LIMIT $2
                                  FOR UPDATE SKIP LOCKED)
                     RETURNING *",
                    &[&ts(at), &i64::from(limit), &until, &ts(&now_t)],
                )?
                .iter()
                .map(from_row)
                .collect::<Result<Vec<_>>>()?;
            rows.sort_by_key(|m| (m.next_attempt_at, m.id));
            Ok(rows)
        })
    }

    /// When this replica's sender should look again: the earliest due row, or the end of
    /// another sender's claim on it.
    pub(crate) fn next_outbox_due_pg(&self) -> Result<Option<Timestamp>> {
        self.read(|c| {
            c.query_opt(
                "SELECT greatest(next_attempt_at, coalesce(claimed_until, '')) AS due FROM outbox
                 WHERE status = 'pending' ORDER BY due LIMIT 1",
                &[],
            )?
            .map(|r| t(&r, "due"))
            .transpose()
        })
    }

    pub(crate) fn record_outbox_attempt_pg(
        &self,
        id: i64,
        result: &OutboxResult,
    ) -> Result<OutboxMessage> {
        self.write(|tx| {
            let t = ts(&now());
            match result {
                OutboxResult::Delivered { status } => tx.c.execute(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_status = $2,
                        last_error = NULL, delivered_at = $3, updated_at = $3, claimed_until = NULL
                     WHERE id = $1",
                    &[&id, status, &t],
                )?,
                OutboxResult::Retry {
                    status,
                    error,
                    next,
                } => tx.c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_status = $2, last_error = $3,
                        next_attempt_at = $4, updated_at = $5, claimed_until = NULL WHERE id = $1",
                    &[&id, status, error, &ts(next), &t],
                )?,
                OutboxResult::Dead { status, error } => tx.c.execute(
                    "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_status = $2,
                        last_error = $3, updated_at = $4, claimed_until = NULL WHERE id = $1",
                    &[&id, status, error, &t],
                )?,
            };
            let m = get_in(&mut tx.c, id)?;
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

    pub(crate) fn list_outbox_pg(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.read(|c| {
            c.query(
                "SELECT * FROM outbox WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
                &[&status.map(|s| s.as_str()), &i64::from(limit)],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    pub(crate) fn retry_outbox_pg(&self, id: i64) -> Result<OutboxMessage> {
        self.write(|tx| {
            let m = get_in(&mut tx.c, id)?;
            if m.status == OutboxStatus::Delivered {
                return Err(StoreError::Conflict(format!(
                    "outbox message {id} was already delivered"
                )));
            }
            let t = ts(&now());
            tx.c.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2,
                    updated_at = $2, claimed_until = NULL WHERE id = $1",
                &[&id, &t],
            )?;
            tx.queued_outbox();
            get_in(&mut tx.c, id)
        })
    }

    pub(crate) fn outbox_counts_pg(&self) -> Result<Vec<(OutboxStatus, i64)>> {
        self.read(|c| {
            Ok(
                c.query("SELECT status, COUNT(*) FROM outbox GROUP BY status", &[])?
                    .iter()
                    .map(|r| {
                        let s: String = r.get(0);
                        (
                            OutboxStatus::parse(&s).unwrap_or(OutboxStatus::Dead),
                            r.get(1),
                        )
                    })
                    .collect(),
            )
        })
    }
}
