//! What changed in a write transaction, handed on only once that transaction has committed.
//!
//! Every write call records the objects it creates, changes or removes ([`touched`]) while it
//! runs inside [`Store::write`]; after the commit the store hands the whole list, deduplicated
//! and in order, to its [`FeedSink`] (the core's change feed). A transaction that fails is
//! rolled back and its list dropped, so nobody hears about a change that never happened.
//!
//! The list is thread-local: `Store::write` runs its closure on the calling thread while it
//! holds the writer lock, so the helpers that insert rows inside a transaction (timeline
//! events, external items) can record what they touched without a handle to the store.

use std::cell::RefCell;

use opslens_domain::{FeedChange, FeedKind, FeedOp};

/// Receives the changes of each committed write transaction. Called on the writing thread
/// right after the commit, so it must only hand them on (never block).
pub trait FeedSink: Send + Sync {
    /// The changes of one transaction, in the order they were made, each once.
    fn committed(&self, changes: Vec<FeedChange>);
}

thread_local! {
    static PENDING: RefCell<Vec<FeedChange>> = const { RefCell::new(Vec::new()) };
}

/// Records that the current write transaction touched an object.
pub(crate) fn touched(kind: FeedKind, op: FeedOp, incident_id: i64, id: i64) {
    PENDING.with(|p| {
        p.borrow_mut().push(FeedChange {
            kind,
            op,
            incident_id,
            id,
        })
    });
}

/// Records an evidence row as updated, looking up its incident.
pub(crate) fn evidence_updated(c: &rusqlite::Connection, evidence_id: i64) -> crate::Result<()> {
    use rusqlite::OptionalExtension;
    let incident: Option<i64> = c
        .prepare_cached("SELECT incident_id FROM evidence WHERE id = ?1")?
        .query_row([evidence_id], |r| r.get(0))
        .optional()?;
    if let Some(incident_id) = incident {
        touched(
            FeedKind::Evidence,
            FeedOp::Updated,
            incident_id,
            evidence_id,
        );
    }
    Ok(())
}

/// Forgets whatever an earlier (failed) transaction on this thread left.
pub(crate) fn reset() {
    PENDING.with(|p| p.borrow_mut().clear());
}

/// The changes recorded since [`reset`], each once (first occurrence kept), in order.
pub(crate) fn take() -> Vec<FeedChange> {
    let all = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    all.into_iter().filter(|c| seen.insert(*c)).collect()
}
