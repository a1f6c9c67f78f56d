//! Outgoing notifications written with the change they announce.
//!
//! Every store call that makes a change people follow in Slack, Teams or a custom webhook
//! (an incident opened or changed, a hypothesis proposed or decided, an action added or
//! changed) describes it as a [`Change`] and hands it to the [`Notifier`] inside its own write
//! transaction; the rows the notifier returns are inserted into the outbox in that same
//! transaction. So a change and its notification commit together or not at all: no message
//! about a change that was rolled back, no change whose message was lost in a crash.
//!
//! The store knows neither destinations nor message formats (those belong to the
//! integrations); it only says what happened, once per meaningful change. Calls that change
//! nothing (a PATCH with the current values) announce nothing.

use opslens_domain::Incident;
use rusqlite::Transaction;

use crate::outbox::insert_in;
use crate::row::{now, ts};
use crate::{NewOutbox, Result, Store};

/// What kind of change happened; its spelling is the event type consumers filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// An incident was opened (by hand, or brought in open from PagerDuty or an alert).
    IncidentCreated,
    /// An incident's status, severity or title changed.
    IncidentUpdated,
    /// A hypothesis was proposed (by a person, the model or change correlation).
    HypothesisCreated,
    /// A hypothesis was supported, refuted or reopened.
    HypothesisUpdated,
    /// An action item was added.
    ActionCreated,
    /// An action item's status, owner, title or due date changed.
    ActionUpdated,
    /// A status update for stakeholders (status, impact, text, next update due).
    StatusUpdate,
}

impl ChangeKind {
    /// The event type (`incident.created`, …), as in Standard Webhooks payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::IncidentCreated => "incident.created",
            ChangeKind::IncidentUpdated => "incident.updated",
            ChangeKind::HypothesisCreated => "hypothesis.created",
            ChangeKind::HypothesisUpdated => "hypothesis.updated",
            ChangeKind::ActionCreated => "action.created",
            ChangeKind::ActionUpdated => "action.updated",
            ChangeKind::StatusUpdate => "incident.status_update",
        }
    }
}

/// One meaningful change, described for the people following the incident.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The incident as it is after the change (every message names its incident).
    pub incident: Incident,
    /// One readable line per thing that changed (`Status: triggered → investigating`).
    pub text: String,
    /// Structured detail for machine consumers: the hypothesis or action (`hypothesis`,
    /// `action`) and, for updates, `changes` as `{field: {from, to}}`.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Turns a change into outbox rows, one per configured destination, in that destination's
/// format. Called inside the write transaction of the change, so it must not block or fail:
/// it only formats. No destinations, no rows.
pub trait Notifier: Send + Sync {
    /// The rows to queue for `change` (empty when nothing is configured).
    fn rows(&self, change: &Change) -> Vec<NewOutbox>;
    /// Called after a transaction that queued rows has committed (wakes the sender).
    fn queued(&self) {}
}

/// `{"from": a, "to": b}` for the `changes` map.
pub(crate) fn from_to(from: impl serde::Serialize, to: impl serde::Serialize) -> serde_json::Value {
    serde_json::json!({ "from": from, "to": to })
}

impl Store {
    /// Sets who turns changes into outbox rows; without one, changes queue nothing.
    pub fn set_notifier(&mut self, notifier: std::sync::Arc<dyn Notifier>) {
        self.notifier = Some(notifier);
    }

    /// Queues the notifications of `change` inside the caller's transaction.
    pub(crate) fn announce(&self, tx: &Transaction<'_>, change: Change) -> Result<()> {
        let Some(n) = &self.notifier else {
            return Ok(());
        };
        let rows = n.rows(&change);
        if rows.is_empty() {
            return Ok(());
        }
        let t = ts(&now());
        for row in &rows {
            insert_in(tx, row, &t)?;
        }
        self.queued
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
