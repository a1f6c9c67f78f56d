//! The one writer of the store, with group commit.
//!
//! SQLite has one writer; every write of the process goes through [`Writer::run`]. Writes that
//! arrive while another holds the writer join its batch: one `BEGIN IMMEDIATE … COMMIT`
//! around many writes, each in its own savepoint, so a failing write rolls back alone and the
//! others commit. A write returns (and its request is acknowledged) only after the batch that
//! holds it has committed, so group commit never acknowledges what a crash could lose.
//!
//! No thread is added and no closure crosses threads: each write runs on its caller's thread
//! while it holds the connection. The holder commits the batch when nobody is waiting for the
//! connection behind it (or the batch is full); otherwise it leaves the transaction open for
//! the next writer, lets go of the connection and waits for the batch's end on the batch's own
//! signal. Waiting there, not on the connection's lock, matters under load: woken members
//! return at once instead of queueing again behind the next batch's writes.
//!
//! A thread that runs many callers' writes in a row (the core's write thread) uses
//! [`deferring`] instead: its writes return without waiting, and it ends their batches with
//! [`Writer::settle`] once it has no more, so it never waits between writes. Both kinds share
//! batches: the batch is committed by a waiting writer that finds nobody behind it, or by the
//! deferring thread when it settles, and every member hears how it ended.

use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::checkpoint::Checkpointer;
use crate::tx::{Committed, Hooks, WriteTx};
use crate::{Result, StoreError};

/// Most writes in one batch, so a steady stream of writers still commits regularly.
const MAX_BATCH: usize = 64;

/// How a batch ended: committed, or failed with SQLite's error code (if any) and message.
type Outcome = std::result::Result<(), (Option<rusqlite::ffi::Error>, String)>;

thread_local! {
    /// On a thread inside [`deferring`]: the batches its writes were left open in.
    static DEFERRED: RefCell<Option<Vec<Arc<Batch>>>> = const { RefCell::new(None) };
}

/// Batches a thread's writes were left open in by [`deferring`]; [`Writer::settle`] ends them.
#[derive(Default)]
pub struct Deferred(Vec<Arc<Batch>>);

impl Deferred {
    /// Adds another run's batches.
    pub fn extend(&mut self, other: Deferred) {
        for b in other.0 {
            if !self.0.iter().any(|m| Arc::ptr_eq(m, &b)) {
                self.0.push(b);
            }
        }
    }
}

/// How the batches of a [`Deferred`] ended; each write that waited for them hears it.
#[derive(Clone, Debug)]
pub struct BatchOutcome(Outcome);

impl BatchOutcome {
    /// Committed, or the failure as the store error each member reports (a full disk keeps
    /// its SQLite code, so it still reads as one).
    pub fn result(&self) -> Result<()> {
        self.0.clone().map_err(|(c, m)| rebuild(c, m))
    }

    /// Nothing was deferred, or the backend commits each write itself.
    pub fn committed() -> Self {
        BatchOutcome(Ok(()))
    }
}

/// Runs `f` with the writes it makes on this thread left in the open batch instead of
/// waiting for its commit: they return at once, uncommitted, and the batches they joined come
/// back to be ended with [`Writer::settle`]. For one thread that runs many callers' writes back
/// to back (the core's write thread): it commits once for all of them, with no hand-off of the
/// connection between writes. What `f` reads through other connections does not see these
/// writes until then.
pub fn deferring<T>(f: impl FnOnce() -> T) -> (T, Deferred) {
    struct Reset(Option<Vec<Arc<Batch>>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            DEFERRED.with(|d| *d.borrow_mut() = prev);
        }
    }
    let prev = DEFERRED.with(|d| d.replace(Some(Vec::new())));
    let reset = Reset(prev);
    let out = f();
    let joined = DEFERRED.with(|d| d.replace(None)).unwrap_or_default();
    drop(reset);
    (out, Deferred(joined))
}

/// Whether this thread's writes are left open (see [`deferring`]).
fn is_deferring() -> bool {
    DEFERRED.with(|d| d.borrow().is_some())
}

/// One batch transaction, as its waiting members see it.
#[derive(Default)]
struct Batch {
    /// Set once, when the batch has committed or failed.
    ended: Mutex<Option<Outcome>>,
    signal: Condvar,
}

impl Batch {
    /// Blocks until the batch has ended; its outcome.
    fn wait(&self) -> Outcome {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = ended.as_ref() {
                return outcome.clone();
            }
            ended = self.signal.wait(ended).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn end(&self, outcome: Outcome) {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.signal.notify_all();
    }
}

struct State {
    conn: Connection,
    /// The open batch transaction, if one is open.
    open: Option<Arc<Batch>>,
    /// Writes in the open batch so far.
    members: usize,
    /// What the open batch's kept writes changed, in order.
    pending: Committed,
}

/// The writer connection and its batch.
pub(crate) struct Writer {
    state: Mutex<State>,
    /// Writers waiting for the connection right now.
    waiting: AtomicUsize,
    /// Copies the log back into the database off this path.
    checkpoints: Checkpointer,
}

impl Writer {
    pub(crate) fn new(conn: Connection, checkpoints: Checkpointer) -> Self {
        Writer {
            checkpoints,
            state: Mutex::new(State {
                conn,
                open: None,
                members: 0,
                pending: Committed::default(),
            }),
            waiting: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` as one write; returns once the batch holding it has committed. `hooks` hear
    /// of the batch's changes after its commit, in commit order.
    pub(crate) fn run<T>(
        &self,
        hooks: &Hooks,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let batch = match &st.open {
            Some(b) => b.clone(),
            None => {
                st.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
                let b = Arc::new(Batch::default());
                st.open = Some(b.clone());
                st.members = 0;
                b
            }
        };
        st.members += 1;
        let outcome = run_one(&st.conn, hooks, f);
        let (outcome, panic) = match outcome {
            Ok(o) => (o, None),
            Err(p) => (
                Err(StoreError::Conflict("a write panicked".into())),
                Some(p),
            ),
        };
        let kept = match outcome {
            Ok((value, changes)) => {
                st.pending.changes.extend(changes.changes);
                st.pending.queued_outbox |= changes.queued_outbox;
                Ok(value)
            }
            Err(e) => Err(e),
        };
        // SQLite ends the whole transaction by itself on some errors (disk full, I/O): then
        // the batch is lost and every member must hear so.
        let lost = st.conn.is_autocommit().then(|| match &kept {
            // The write that failed says why (disk full, I/O): every member hears the same.
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(c, m))) => {
                (Some(*c), m.clone().unwrap_or_else(|| c.to_string()))
            }
            Err(e) => (None, e.to_string()),
            Ok(_) => (None, "the database rolled the write batch back".into()),
        });
        let full = st.members >= MAX_BATCH;
        let deferring = is_deferring();
        let last = !deferring && self.waiting.load(Ordering::SeqCst) == 0;
        let result = if lost.is_some() || full || last {
            let index_at = if deferring {
                crate::search::INDEX_BACKSTOP
            } else {
                crate::search::INDEX_BATCH
            };
            let ended = self.end_batch(&mut st, hooks, lost, index_at);
            drop(st);
            match (kept, ended) {
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) | (Err(e), _) => Err(e),
            }
        } else if deferring {
            // The deferring thread ends the batch itself (or a writer that joins it does).
            drop(st);
            DEFERRED.with(|d| {
                if let Some(joined) = d.borrow_mut().as_mut() {
                    if !joined.iter().any(|b| Arc::ptr_eq(b, &batch)) {
                        joined.push(batch);
                    }
                }
            });
            kept
        } else {
            // Another writer is about to take the connection and the batch with it.
            drop(st);
            match kept {
                // Its savepoint is undone; nothing of it can commit: answer now.
                Err(e) => Err(e),
                Ok(v) => batch.wait().map(|()| v).map_err(|(c, m)| rebuild(c, m)),
            }
        };
        if let Some(p) = panic {
            resume_unwind(p);
        }
        result
    }

    /// Ends the batches of `deferred`: commits the open one if it is among them, then waits
    /// until each has ended (another writer may be committing it). Committed only if all were.
    pub(crate) fn settle(&self, hooks: &Hooks, deferred: Deferred) -> BatchOutcome {
        if deferred.0.is_empty() {
            return BatchOutcome::committed();
        }
        {
            let mut st = self.lock();
            let open = st
                .open
                .as_ref()
                .is_some_and(|o| deferred.0.iter().any(|b| Arc::ptr_eq(b, o)));
            if open {
                // Its error reaches every member through the batch's outcome.
                let _ = self.end_batch(&mut st, hooks, None, crate::search::INDEX_BACKSTOP);
            }
        }
        for b in &deferred.0 {
            if let Err(e) = b.wait() {
                return BatchOutcome(Err(e));
            }
        }
        BatchOutcome::committed()
    }

    /// Indexes the search entries that wait, once there are [`crate::search::INDEX_BATCH`],
    /// in a transaction of its own. For the deferring thread after it has answered a batch:
    /// the batch's requests do not wait for the indexing, which runs while they are answered,
    /// where a commit that indexed kept them all waiting for it.
    pub(crate) fn index_search_if_many(&self, hooks: &Hooks) -> Result<()> {
        {
            let st = self.lock();
            if st.open.is_some()
                || crate::search::pending_span(&st.conn)? < crate::search::INDEX_BATCH
            {
                return Ok(());
            }
        }
        self.run(hooks, |tx| crate::search::index_pending(tx))
    }

    /// Commits (or, when SQLite already dropped it, records the loss of) the open batch, hands
    /// its changes on, and wakes the members waiting for it. The search entries noted so far
    /// are indexed in bulk within the commit once `index_at` may be waiting; until then every
    /// search indexes them first, so none is missed.
    fn end_batch(
        &self,
        st: &mut State,
        hooks: &Hooks,
        lost: Option<(Option<rusqlite::ffi::Error>, String)>,
        index_at: i64,
    ) -> Result<()> {
        let pending = std::mem::take(&mut st.pending);
        let result = if let Some((code, msg)) = lost {
            Err(rebuild(code, msg))
        } else {
            crate::search::index_pending_if_many(&st.conn, index_at).and_then(|()| {
                st.conn.prepare_cached("COMMIT")?.execute([])?;
                self.checkpoints.committed(&st.conn);
                Ok(())
            })
        };
        if result.is_err() && !st.conn.is_autocommit() {
            let _ = st.conn.execute_batch("ROLLBACK");
        }
        let batch = st.open.take();
        let outcome = match &result {
            Ok(()) => {
                hooks.committed(pending);
                Ok(())
            }
            Err(e) => Err(match e {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(c, m)) => {
                    (Some(*c), m.clone().unwrap_or_else(|| c.to_string()))
                }
                _ => (None, e.to_string()),
            }),
        };
        if let Some(b) = batch {
            b.end(outcome);
        }
        result
    }
}

/// A batch's failure as each of its members reports it: SQLite's code is kept, so a full disk
/// still reads as one (507) for every member.
fn rebuild(code: Option<rusqlite::ffi::Error>, msg: String) -> StoreError {
    match code {
        Some(c) => StoreError::Sqlite(rusqlite::Error::SqliteFailure(c, Some(msg))),
        None => StoreError::Conflict(msg),
    }
}

type Panic = Box<dyn std::any::Any + Send>;

/// Runs one write in its savepoint: kept with its changes, or rolled back alone.
fn run_one<T>(
    conn: &Connection,
    hooks: &Hooks,
    f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
) -> std::result::Result<Result<(T, Committed)>, Panic> {
    let tx = match WriteTx::savepoint(conn, hooks) {
        Ok(tx) => tx,
        Err(e) => return Ok(Err(e)),
    };
    match catch_unwind(AssertUnwindSafe(|| f(&tx))) {
        Ok(Ok(value)) => Ok(tx.release().map(|c| (value, c))),
        Ok(Err(e)) => {
            if let Err(undo) = tx.rollback() {
                tracing::error!(error = %undo, "cannot undo a failed write");
            }
            Ok(Err(e))
        }
        Err(p) => {
            let _ = tx.rollback();
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use opslens_domain::{
        FeedChange, FeedKind, IncidentSource, IncidentStatus, NewHypothesis, Severity,
    };

    use crate::{FeedSink, NewIncidentRow, Store, StoreError};

    #[derive(Default)]
    struct Heard(std::sync::Mutex<Vec<Vec<FeedChange>>>);
    impl FeedSink for Heard {
        fn committed(&self, changes: Vec<FeedChange>) {
            self.0.lock().unwrap().push(changes);
        }
    }

    #[test]
    fn concurrent_writes_share_commits_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let heard = Arc::new(Heard::default());
        s.set_feed(heard.clone());
        let s = Arc::new(s);
        let threads = 12;
        let per = 40;
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (s, start) = (s.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mut ok = Vec::new();
                    for i in 0..per {
                        let inc = s
                            .create_incident(NewIncidentRow {
                                title: format!("t{t}-{i}"),
                                description: String::new(),
                                severity: Severity::Low,
                                status: IncidentStatus::Triggered,
                                source: IncidentSource::Manual,
                                external_id: None,
                            })
                            .unwrap();
                        ok.push(inc.id);
                        // Every third write fails inside its transaction (evidence of no one).
                        if i % 3 == 0 {
                            let bad = NewHypothesis {
                                statement: "linked to nothing".into(),
                                evidence_ids: vec![999_999],
                                status: None,
                                origin: None,
                            };
                            let e = s.add_hypothesis(inc.id, &bad).unwrap_err();
                            assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
                        }
                    }
                    ok
                })
            })
            .collect();
        let ids: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(ids.len(), threads * per);
        // Every acknowledged write is there; no failed one left a row.
        for id in &ids {
            assert!(s.hypotheses(*id).unwrap().is_empty());
            s.incident(*id).unwrap();
        }
        let heard = heard.0.lock().unwrap();
        let created: Vec<i64> = heard
            .iter()
            .flatten()
            .filter(|c| c.kind == FeedKind::Incident)
            .map(|c| c.id)
            .collect();
        assert_eq!(created.len(), ids.len(), "each write announced once");
        assert!(
            heard.len() < ids.len(),
            "writers waiting on each other shared commits ({} commits for {} writes)",
            heard.len(),
            ids.len()
        );
    }
}
