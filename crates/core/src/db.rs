//! The store as the services reach it from async code: every call runs on a blocking thread,
//! and store errors become [`CoreError`]s.
//!
//! Writes that are one store call ([`Db::write`]) go instead to the write thread: one thread
//! that runs them back to back in the store's open batch and commits once when it has no more
//! waiting, then answers each. On SQLite a write needs the one connection; handing it from
//! blocking thread to blocking thread (each woken, scheduled, then holding it) left it idle
//! between writes under load, about half of a 2-core machine's time. The write thread keeps
//! it busy, and the commit covers everything queued meanwhile.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use opslens_domain::Incident;
use opslens_store::{BatchOutcome, Store, StoreError};

use crate::CoreError;

/// Answers a write once its batch has ended.
type Answer = Box<dyn FnOnce(&BatchOutcome) + Send>;
/// A write for the write thread: runs on it, returns how to answer.
type Job = Box<dyn FnOnce(&Store) -> Answer + Send>;

/// Most writes the write thread runs before it commits, so a steady stream still commits.
const MOST_PER_COMMIT: usize = 256;

/// A cheap, cloneable handle to the one store of the process.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    store: Arc<Store>,
    /// The write thread's queue (SQLite); on PostgreSQL each write commits on its own, on a
    /// blocking thread like any call.
    writes: Option<mpsc::Sender<Job>>,
}

impl Db {
    pub(crate) fn new(store: Store) -> Self {
        let store = Arc::new(store);
        let writes = (store.backend_name() == "sqlite").then(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let s = store.clone();
            // Ends when every sender (every Db clone) is gone.
            std::thread::Builder::new()
                .name("opslens-writes".into())
                .spawn(move || write_loop(&s, &rx))
                .expect("spawn the write thread");
            tx
        });
        Db { store, writes }
    }

    /// Runs a store call on a blocking thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let store = self.store.clone();
        let author = crate::author::current_author();
        let out = tokio::task::spawn_blocking(move || {
            opslens_store::with_author(author.as_deref(), || f(&store))
        })
        .await?;
        out.map_err(|e| self.store_error(e))
    }

    /// Runs one store write on the write thread; answers after its batch has committed.
    ///
    /// For calls that only write the database: `f` runs on the write thread between other
    /// callers' writes, so it must not wait for anything else (a blob lock, the network), and
    /// what it wrote is not yet committed when it returns, so it must not read it back through
    /// another connection.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let Some(writes) = &self.writes else {
            return self.run(f).await;
        };
        let author = crate::author::current_author();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store: &Store| {
            let out = catch_unwind(AssertUnwindSafe(|| {
                opslens_store::with_author(author.as_deref(), || f(store))
            }));
            Box::new(move |batch: &BatchOutcome| {
                let out = match out {
                    Ok(Ok(v)) => batch.result().map(|()| v),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(StoreError::Conflict("a write panicked".into())),
                };
                let _ = answer.send(out);
            })
        });
        if writes.send(job).is_err() {
            return Err(CoreError::internal(
                "the write thread has stopped",
                std::io::Error::other("write queue closed"),
            ));
        }
        let out = answered
            .await
            .map_err(|e| CoreError::internal("the write thread dropped a write unanswered", e))?;
        out.map_err(|e| self.store_error(e))
    }

    /// A full disk or a busy database says so (507, 503) instead of a bare 500.
    fn store_error(&self, e: StoreError) -> CoreError {
        let dir = self
            .store
            .path()
            .parent()
            .unwrap_or(std::path::Path::new("."));
        crate::storage::store_error(e, dir)
    }

    /// One incident (404 when unknown): most use-cases check their incident first.
    pub(crate) async fn incident(&self, id: i64) -> Result<Incident, CoreError> {
        self.run(move |s| s.incident(id)).await
    }
}

/// How long writes must pause before the write thread indexes the search entries that the
/// last commits left waiting (see `opslens_store`'s search module: it indexes in bulk).
const INDEX_WHEN_IDLE: Duration = Duration::from_millis(500);

/// The write thread: runs queued writes one after another, each left in the open batch,
/// commits when none is waiting (or after [`MOST_PER_COMMIT`]), then answers them all. When
/// writes pause, it indexes the search entries left waiting.
fn write_loop(store: &Store, queue: &mpsc::Receiver<Job>) {
    let mut wrote = false;
    loop {
        let first = match queue.recv_timeout(INDEX_WHEN_IDLE) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if std::mem::take(&mut wrote) {
                    if let Err(e) = store.index_waiting_search() {
                        // Searches index what is waiting themselves; nothing is lost.
                        tracing::warn!(error = %e, "cannot index waiting search entries");
                    }
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        wrote = true;
        let mut answers = Vec::new();
        let mut deferred = opslens_store::Deferred::default();
        let mut next = Some(first);
        while let Some(job) = next {
            let (answer, joined) = opslens_store::deferring(|| job(store));
            answers.push(answer);
            deferred.extend(joined);
            next = if answers.len() < MOST_PER_COMMIT {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        let outcome = store.settle(deferred);
        for answer in answers {
            answer(&outcome);
        }
        // Its commit left the search entries waiting (see `Store::index_search_if_many`); they
        // are indexed now that the batch is answered, while its requests' answers go out.
        if let Err(e) = store.index_search_if_many() {
            // Searches index what is waiting themselves; nothing is lost.
            tracing::warn!(error = %e, "cannot index waiting search entries");
        }
    }
}

#[cfg(test)]
mod tests {
    use opslens_domain::{IncidentSource, IncidentStatus, NewHypothesis, Severity};
    use opslens_store::{NewIncidentRow, Store, StoreError};

    use super::Db;
    use crate::CoreError;

    fn row(title: String) -> NewIncidentRow {
        NewIncidentRow {
            title,
            description: String::new(),
            severity: Severity::Low,
            status: IncidentStatus::Triggered,
            source: IncidentSource::Manual,
            external_id: None,
        }
    }

    /// Search entries the commits left waiting are indexed once writes pause, so the next
    /// search does not pay for them.
    #[test]
    fn the_write_thread_indexes_waiting_search_entries_when_writes_pause() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::new(Store::open(dir.path()).unwrap());
        let raw = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let waiting = || -> i64 {
            raw.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
                .unwrap()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for i in 0..3 {
                db.write(move |s| s.create_incident(row(format!("kestrel {i}"))))
                    .await
                    .unwrap();
            }
            assert_eq!(waiting(), 3, "a few entries wait after their commits");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while waiting() > 0 {
                assert!(std::time::Instant::now() < deadline, "still waiting");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let indexed: i64 = raw
                .query_row(
                    "SELECT count(*) FROM search_fts WHERE search_fts MATCH 'kestrel'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(indexed, 3);
        });
    }

    /// Under a steady stream of writes the write thread still indexes in bulk (after answering
    /// a batch, once a bulk's worth waits), not only when writes pause or at the commits'
    /// backstop.
    #[test]
    fn the_write_thread_indexes_in_bulk_under_a_steady_stream() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::new(Store::open(dir.path()).unwrap());
        let raw = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).unwrap() };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // One at a time: each write is its own batch, answered before the next is sent.
            for i in 0..300 {
                db.write(move |s| s.create_incident(row(format!("plover {i}"))))
                    .await
                    .unwrap();
            }
        });
        let waiting = count("SELECT count(*) FROM search_pending");
        let indexed = count("SELECT count(*) FROM search_fts WHERE search_fts MATCH 'plover'");
        assert!(waiting < 256, "{waiting} entries still wait");
        assert_eq!(waiting + indexed, 300);
    }

    /// Many callers' writes through the write thread: each answered with its own result once
    /// committed (readable through another connection at that moment), a failing or panicking
    /// one alone refused, and the rest unaffected.
    #[test]
    fn the_write_thread_answers_each_write_after_its_commit_and_fails_one_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::new(Store::open(dir.path()).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..16 {
                let db = db.clone();
                tasks.push(tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..25 {
                        let inc = db
                            .write(move |s| s.create_incident(row(format!("t{t}-{i}"))))
                            .await
                            .unwrap();
                        // Answered only after the commit: another connection sees it.
                        assert_eq!(db.incident(inc.id).await.unwrap().title, inc.title);
                        ids.push(inc.id);
                        if i % 5 == 0 {
                            let id = inc.id;
                            let bad = NewHypothesis {
                                statement: "linked to nothing".into(),
                                evidence_ids: vec![999_999],
                                status: None,
                                origin: None,
                            };
                            let e = db
                                .write(move |s| s.add_hypothesis(id, &bad))
                                .await
                                .unwrap_err();
                            assert!(matches!(e, CoreError::NotFound(_)), "{e}");
                        }
                        if i == 7 {
                            let e = db
                                .write(|_s| -> Result<(), StoreError> { panic!("a bug") })
                                .await
                                .unwrap_err();
                            assert!(e.to_string().contains("panicked"), "{e}");
                        }
                    }
                    ids
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            assert_eq!(all.len(), 16 * 25);
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 16 * 25, "distinct ids");
            for id in all {
                let hyps = db.run(move |s| s.hypotheses(id)).await.unwrap();
                assert!(hyps.is_empty(), "a failed write left nothing");
            }
        });
    }
}
