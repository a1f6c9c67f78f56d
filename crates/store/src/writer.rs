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
//! the next writer and waits for the batch's end.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::tx::{Committed, Hooks, WriteTx};
use crate::{Result, StoreError};

/// Most writes in one batch, so a steady stream of writers still commits regularly.
const MAX_BATCH: usize = 64;
/// Failed batches remembered for the members that wake after the failure.
const FAILURES_KEPT: usize = 64;

struct State {
    conn: Connection,
    /// A batch transaction is open.
    open: bool,
    /// Number of the open (or the last) batch.
    batch: u64,
    /// Writes in the open batch so far.
    members: usize,
    /// Every batch up to this number has ended (committed or failed).
    ended: u64,
    /// Batches that failed: number, SQLite's error code if any, message.
    failed: VecDeque<(u64, Option<rusqlite::ffi::Error>, String)>,
    /// What the open batch's kept writes changed, in order.
    pending: Committed,
}

/// The writer connection and its batch.
pub(crate) struct Writer {
    state: Mutex<State>,
    ended: Condvar,
    /// Writers waiting for the connection right now.
    waiting: AtomicUsize,
}

impl Writer {
    pub(crate) fn new(conn: Connection) -> Self {
        Writer {
            state: Mutex::new(State {
                conn,
                open: false,
                batch: 0,
                members: 0,
                ended: 0,
                failed: VecDeque::new(),
                pending: Committed::default(),
            }),
            ended: Condvar::new(),
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
        if !st.open {
            st.conn.execute_batch("BEGIN IMMEDIATE")?;
            st.open = true;
            st.batch += 1;
            st.members = 0;
        }
        let mine = st.batch;
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
        let result = if lost.is_some() || full || self.waiting.load(Ordering::SeqCst) == 0 {
            let ended = self.end_batch(&mut st, hooks, lost);
            match (kept, ended) {
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) | (Err(e), _) => Err(e),
            }
        } else {
            match kept {
                // Its savepoint is undone; nothing of it can commit: answer now.
                Err(e) => Err(e),
                Ok(v) => {
                    while st.ended < mine {
                        st = self.ended.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    match failure_of(&st, mine) {
                        Some(e) => Err(e),
                        None => Ok(v),
                    }
                }
            }
        };
        drop(st);
        if let Some(p) = panic {
            resume_unwind(p);
        }
        result
    }

    /// Commits (or, when SQLite already dropped it, records the loss of) the open batch, hands
    /// its changes on, and wakes the members waiting for it.
    fn end_batch(
        &self,
        st: &mut State,
        hooks: &Hooks,
        lost: Option<(Option<rusqlite::ffi::Error>, String)>,
    ) -> Result<()> {
        let batch = st.batch;
        let pending = std::mem::take(&mut st.pending);
        let result = if let Some((code, msg)) = lost {
            Err(rebuild(code, msg))
        } else {
            st.conn.execute_batch("COMMIT").map_err(StoreError::from)
        };
        if result.is_err() && !st.conn.is_autocommit() {
            let _ = st.conn.execute_batch("ROLLBACK");
        }
        st.open = false;
        st.ended = batch;
        match &result {
            Ok(()) => hooks.committed(pending),
            Err(e) => {
                let code = match e {
                    StoreError::Sqlite(rusqlite::Error::SqliteFailure(c, _)) => Some(*c),
                    _ => None,
                };
                st.failed.push_back((batch, code, e.to_string()));
                if st.failed.len() > FAILURES_KEPT {
                    st.failed.pop_front();
                }
            }
        }
        self.ended.notify_all();
        result
    }
}

/// The error of batch `n` for a member that waited for it, if it failed.
fn failure_of(st: &State, n: u64) -> Option<StoreError> {
    let (_, code, msg) = st.failed.iter().find(|(b, _, _)| *b == n)?;
    Some(rebuild(*code, msg.clone()))
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
