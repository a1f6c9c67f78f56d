//! The SQLite store of OpsLens: one file `opslens.db` in the data dir, WAL, forward-only
//! migrations embedded in the binary, one writer connection and a small pool of readers.
//!
//! Every call here blocks; async callers run them on a blocking thread. Images live beside the
//! database as content-addressed files (see [`blobs`]), written and synced before the row that
//! names them commits, so an acknowledged evidence row never points at a missing file.

mod analysis;
mod backend;
pub mod backup;
pub mod blobs;
mod checkpoint;
mod event_time;
mod evidence;
mod faults;
mod incidents;
mod integrations;
pub mod objects;
mod outbox;
mod people;
mod pg;
mod postmortem;
mod row;
pub mod search;
mod similar;
mod tokens;
mod tx;
mod updates;
mod work;
mod writer;
pub use writer::{deferring, BatchOutcome, Deferred};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use analysis::{AnalysisOutcome, FinishedAnalysis, FINDING_EVENT_PREFIX};
pub use backend::{database_for, database_url, use_database_for, Store, DATABASE_URL_ENV};
pub use event_time::NewTextEvidence;
pub use evidence::{AnalysisUpdate, NewImageEvidence, UploadFiling};
pub use incidents::NewIncidentRow;
pub use integrations::DeliveryAction;
pub use outbox::{NewOutbox, OutboxResult};
pub use pg::check_url as check_database_url;
pub use pg::describe_url as describe_database_url;
pub use tx::{
    with_author, At, Change, ChangeKind, Committed, Fact, FeedSink, Narration, Narrator, Notifier,
    TimelineLine,
};

pub use people::PersonRow;
pub use postmortem::{StoredPostmortem, TimelineEdit};
pub use search::{parse_query, QueryError, SearchRequest};
pub use similar::{CorpusIncident, MergeCounts, ShotEmbedding, ShotPrint};
#[cfg(test)]
use tx::test_narrator;
use tx::{Hooks, WriteTx};
pub use updates::StatusUpdateRow;
use writer::Writer;

/// Migrations in order; index + 1 is the schema version stored in `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_integrations.sql"),
    include_str!("../migrations/0003_integration_events.sql"),
    include_str!("../migrations/0004_analysis.sql"),
    include_str!("../migrations/0005_event_time.sql"),
    include_str!("../migrations/0006_mitigated.sql"),
    include_str!("../migrations/0007_people.sql"),
    include_str!("../migrations/0008_status_updates.sql"),
    include_str!("../migrations/0009_postmortem.sql"),
    include_str!("../migrations/0010_api_tokens.sql"),
    include_str!("../migrations/0011_analysis_lease.sql"),
    include_str!("../migrations/0012_similar.sql"),
    include_str!("../migrations/0013_search.sql"),
    include_str!("../migrations/0014_image_embedding.sql"),
    include_str!("../migrations/0015_upload_key.sql"),
    include_str!("../migrations/0016_search_at_commit.sql"),
];

/// Readers kept open between calls; more may be opened under load and are then dropped.
const IDLE_READERS: usize = 4;

/// Why a store call failed, in terms the API can turn into the right status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database was written by a newer OpsLens; opening it could corrupt it.
    #[error("database schema v{found} is newer than this build knows (v{known}); upgrade OpsLens")]
    TooNew {
        /// Version found in the file.
        found: usize,
        /// Newest version this build knows.
        known: usize,
    },
    /// A referenced row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of row (`incident`, `evidence`, …).
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// The request is well-formed but contradicts the stored data (e.g. linking evidence of
    /// another incident).
    #[error("{0}")]
    Conflict(String),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (a statement, or the connection under it).
    #[error("database error: {}", pg::error_text(.0))]
    Postgres(#[from] postgres::Error),
    /// The database cannot be reached (PostgreSQL down, restarting, or no free connection):
    /// the same request is likely to succeed a moment later.
    #[error("{0}")]
    Unavailable(String),
    /// The backend in use cannot do this call yet (PostgreSQL: see `PG_STATUS.md`).
    #[error("not available on this database backend yet: {0}")]
    Unsupported(&'static str),
    /// A stored value does not parse (a time, an enum): the database was changed by hand.
    #[error("stored value does not parse: {0}")]
    BadValue(String),
    /// The file system failed (blob write, data dir).
    #[error("file system error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result of every store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The SQLite backend: the database file and blob directory of one install.
pub(crate) struct SqliteStore {
    path: PathBuf,
    /// The image files: `blobs/`, and the shared bucket when there is one.
    blobs: blobs::Blobs,
    /// All writes go through here, batched (see [`writer`]): SQLite has one writer, a second
    /// connection only buys SQLITE_BUSY.
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// Held across "write file, commit row" and "delete rows, remove files" so a file is never
    /// removed between another upload finding it present and committing its row.
    blob_lock: Mutex<()>,
    /// The core's narrator, notifier and change feed (see [`tx`]).
    hooks: Hooks,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    pub(crate) fn open_with(
        data_dir: &Path,
        sweep: bool,
        blobs: &objects::BlobConfig,
    ) -> Result<Self> {
        let blobs = blobs::Blobs::open(data_dir, blobs)?;
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("opslens.db");
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        enable_wal(&writer)?;
        // Every write is a savepoint in the batch transaction, so SQLite keeps a statement
        // journal of the pages each one changes: in a temporary file by default (an open, a
        // write per page and a close per batch), in memory with this.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        // Every distinct write statement stays compiled ([`WriteTx::execute`]); there are
        // about a hundred, so the default of 16 would evict the hot ones.
        writer.set_prepared_statement_cache_capacity(256);
        tracing::info!(synchronous = synchronous(), "database opened");
        migrate(&mut writer)?;
        // Entries noted by writes made outside the writer (the sqlite3 shell) are searchable
        // from the start, not only after the next write. IMMEDIATE: a deferred transaction
        // that reads, then writes, gets SQLITE_BUSY at once (no busy wait) when another
        // process committed in between, which two workers starting together did.
        let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        search::index_pending(&tx)?;
        tx.commit()?;
        let checkpoints = checkpoint::Checkpointer::start(&path, &writer)?;
        let store = SqliteStore {
            path,
            blobs,
            writer: Writer::new(writer, checkpoints),
            readers: Mutex::new(Vec::new()),
            blob_lock: Mutex::new(()),
            hooks: Hooks::default(),
        };
        let removed = if sweep {
            store.sweep_orphan_blobs()?
        } else {
            0
        };
        if removed > 0 {
            tracing::info!(removed, "removed image files no evidence refers to");
        }
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory of the content-addressed image files.
    pub fn blob_dir(&self) -> &Path {
        self.blobs.dir()
    }

    /// Schema version of the open database.
    pub fn schema_version(&self) -> Result<usize> {
        self.read(|c| {
            Ok(c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize)
        })
    }

    /// Runs `f` as one write, all or nothing, in the writer's current batch; returns once
    /// that batch has committed. After the commit, the list of what it changed goes to the
    /// change feed, and the outbox worker is woken if it queued messages.
    fn write<T>(&self, f: impl FnOnce(&WriteTx<'_>) -> Result<T>) -> Result<T> {
        self.writer.run(&self.hooks, f)
    }

    /// See [`Store::settle`].
    pub(crate) fn settle(&self, deferred: Deferred) -> BatchOutcome {
        self.writer.settle(&self.hooks, deferred)
    }

    /// See [`Store::index_search_if_many`].
    pub(crate) fn index_search_if_many(&self) -> Result<()> {
        self.writer.index_search_if_many(&self.hooks)
    }

    /// Sets who hears about committed changes (the change feed); without one, nobody does.
    pub fn set_feed(&mut self, sink: std::sync::Arc<dyn FeedSink>) {
        self.hooks.feed = Some(sink);
    }

    /// Sets who turns announced changes into outbox rows; without one, nothing is queued.
    pub fn set_notifier(&mut self, notifier: std::sync::Arc<dyn Notifier>) {
        self.hooks.notifier = Some(notifier);
    }

    /// Sets who words facts for the timeline and announcements; without one, facts put
    /// nothing on the timeline.
    pub fn set_narrator(&mut self, narrator: std::sync::Arc<dyn Narrator>) {
        self.hooks.narrator = Some(narrator);
    }

    /// Runs `f` on a read-only connection from the pool.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

/// How long a connection waits for another's lock before it answers busy (the store's own
/// connections and the backup's).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // NORMAL in WAL mode never corrupts; a power cut may lose the last commits (security.md §4).
    // FULL syncs the WAL at every commit, so a commit also survives a power cut, at a cost.
    conn.pragma_update(None, "synchronous", synchronous())?;
    Ok(())
}

/// Puts the database in WAL mode, waiting for other processes as a busy connection would.
///
/// Processes that open a new database together (the app and its workers) race to switch it.
/// The switch needs the file to itself, and SQLite may answer the loser SQLITE_BUSY without
/// waiting out the busy timeout: it skips the busy handler where waiting could deadlock (a
/// connection that holds a read lock waiting for one that waits for it). Seen on a 2-vCPU EPYC
/// in 21 of 30 runs of `stores_opened_together_all_open`, each failing well within the 5 s
/// timeout. The switch is retried until [`BUSY_TIMEOUT`]; once the winner has switched the
/// file, the retry finds it in WAL mode already.
fn enable_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return Ok(other?),
        }
    }
}

/// `OPSLENS_DURABILITY=full` asks for `synchronous=FULL`; unset or `normal` keeps NORMAL.
fn synchronous() -> &'static str {
    match std::env::var("OPSLENS_DURABILITY") {
        Ok(v) if v.eq_ignore_ascii_case("full") => "FULL",
        Ok(v) if !v.is_empty() && !v.eq_ignore_ascii_case("normal") => {
            tracing::warn!(value = %v, "OPSLENS_DURABILITY is `full` or `normal`; using normal");
            "NORMAL"
        }
        _ => "NORMAL",
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if found > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        // IMMEDIATE, and the version read again inside: another process opening the same
        // database at the same moment may have applied this step while we waited for the lock.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
        if now > i {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes that open one database together (the app and its workers, two workers)
    /// all open it: on a fresh data dir (the migrations) and on an existing one.
    #[test]
    fn stores_opened_together_all_open() {
        for fresh in [true, false] {
            for _ in 0..10 {
                let dir = tempfile::tempdir().unwrap();
                if !fresh {
                    drop(Store::open(dir.path()).unwrap());
                }
                let start = std::sync::Barrier::new(4);
                std::thread::scope(|s| {
                    let opened: Vec<_> = (0..4)
                        .map(|_| {
                            s.spawn(|| {
                                start.wait();
                                Store::open_shared(dir.path()).map(drop)
                            })
                        })
                        .collect();
                    for o in opened {
                        o.join().unwrap().unwrap();
                    }
                });
                let c = Connection::open(dir.path().join("opslens.db")).unwrap();
                let v: i64 = c
                    .pragma_query_value(None, "user_version", |r| r.get(0))
                    .unwrap();
                assert_eq!(v as usize, MIGRATIONS.len());
            }
        }
    }

    #[test]
    fn refuses_a_database_from_a_newer_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("opslens.db")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew { found: 99, known }
                    if known == MIGRATIONS.len()
            ),
            "{err}"
        );
    }

    #[test]
    fn reopening_keeps_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut c = Connection::open(dir.path().join("opslens.db")).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            tx.execute(
                "INSERT INTO incident(title, severity, status, created_at, updated_at)
                 VALUES ('old', 'low', 'triggered', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        assert_eq!(s.incident(1).unwrap().title, "old");
        // Migration 0011 backfilled the search index from the rows already there.
        let found = s
            .search(&search::SearchRequest {
                q: "old".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found.hits.len(), 1);
        assert_eq!(found.hits[0].snippet, "[old]");
        assert!(s.outbox_counts().unwrap().is_empty());
        assert!(s.integration_states().unwrap().is_empty());
    }

    #[test]
    fn a_version_4_database_gets_event_times() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut c = Connection::open(dir.path().join("opslens.db")).unwrap();
            let tx = c.transaction().unwrap();
            for m in &MIGRATIONS[..4] {
                tx.execute_batch(m).unwrap();
            }
            tx.pragma_update(None, "user_version", 4).unwrap();
            tx.execute_batch(
                "INSERT INTO incident(title, severity, status, created_at, updated_at)
                 VALUES ('old', 'low', 'triggered', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
                 INSERT INTO evidence(incident_id, evidence_type, title, sha256, created_at, updated_at)
                 VALUES (1, 'log', 'l', 'x', '2026-01-01T00:00:05.000000Z', '2026-01-01T00:00:05.000000Z'),
                        (1, 'deployment', 'd', 'y', '2026-01-01T00:00:06.000000Z', '2026-01-01T00:00:06.000000Z');
                 INSERT INTO external_item(incident_id, key, signal, occurred_at, message, evidence_id)
                 VALUES (1, 'github:deploy:o/r:7', 'change', '2025-12-31T23:00:00.000000Z', 'Deploy', 2);
                 INSERT INTO timeline_event(incident_id, kind, message, occurred_at, created_at, evidence_id)
                 VALUES (1, 'evidence_added', 'Deploy', '2025-12-31T23:00:00.000000Z', '2026-01-01T00:00:06.000000Z', 2),
                        (1, 'note', 'n', '2025-12-31T22:00:00.000000Z', '2026-01-01T00:00:07.000000Z', NULL),
                        (1, 'observation', 'o', '2025-12-31T21:00:00.000000Z', '2026-01-01T00:00:08.000000Z', NULL);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        use opslens_domain::OccurredAtSource as S;
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        let ev = s.list_evidence(1).unwrap();
        assert_eq!(ev[0].title, "d", "the deploy happened first");
        assert_eq!(ev[0].occurred_at_source, S::Derived);
        assert_eq!(ev[0].occurred_at.to_rfc3339(), "2025-12-31T23:00:00+00:00");
        assert_eq!(ev[1].occurred_at, ev[1].created_at);
        assert_eq!(ev[1].occurred_at_source, S::Recorded);
        let sources: Vec<_> = s
            .timeline(1)
            .unwrap()
            .into_iter()
            .map(|t| (t.message, t.occurred_at_source))
            .collect();
        assert_eq!(
            sources,
            [
                ("o".to_string(), S::Derived),
                ("n".to_string(), S::User),
                ("Deploy".to_string(), S::Derived)
            ]
        );
    }

    #[test]
    fn integration_errors_keep_the_newest_fifty_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 0..60 {
            s.record_sync("github", Err(format!("failure {i}")))
                .unwrap();
        }
        s.record_sync("pagerduty", Err("pd down".into())).unwrap();
        let all = s.integration_errors("github", 1000).unwrap();
        assert_eq!(all.len() as i64, integrations::ERRORS_KEPT);
        assert_eq!(all[0].message, "failure 59");
        assert_eq!(all.last().unwrap().message, "failure 10");
        assert_eq!(s.integration_errors("github", 3).unwrap().len(), 3);
        assert_eq!(s.integration_errors("pagerduty", 10).unwrap().len(), 1);
        assert!(s.integration_errors("slack", 10).unwrap().is_empty());
    }

    #[test]
    fn a_version_2_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut c = Connection::open(dir.path().join("opslens.db")).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.execute_batch(MIGRATIONS[1]).unwrap();
            tx.pragma_update(None, "user_version", 2).unwrap();
            tx.execute_batch(
                "INSERT INTO incident(title, severity, status, created_at, updated_at)
                 VALUES ('old', 'low', 'triggered', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
                 INSERT INTO external_item(incident_id, key, signal, occurred_at, message)
                 VALUES (1, 'github:deploy:o/r:7', 'change', '2026-01-01T00:00:00.000000Z', 'Deploy'),
                        (1, 'github:deploy:o/r:8:in_progress', 'change', '2026-01-01T00:00:00.000000Z', 'D8 a'),
                        (1, 'github:deploy:o/r:8:success', 'change', '2026-01-01T00:00:01.000000Z', 'D8 b'),
                        (1, 'github:deploy:o/r:9:success', 'change', '2026-01-01T00:00:02.000000Z', 'D9'),
                        (1, 'github:pr:o/r#3', 'change', '2026-01-01T00:00:03.000000Z', 'PR');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        // Webhook copies of deployments are re-keyed by deployment id, one per deployment.
        let keys: Vec<String> = s.signals(1).unwrap().into_iter().map(|x| x.key).collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        for k in [
            "github:deploy:o/r:7",
            "github:deploy:o/r:8",
            "github:deploy:o/r:9",
            "github:pr:o/r#3",
        ] {
            assert_eq!(
                keys.iter().filter(|x| *x == k).count(),
                1,
                "{k} in {keys:?}"
            );
        }
        assert_eq!(
            keys.iter()
                .filter(|k| k.starts_with("github:deploy:o/r:8:"))
                .count(),
            1
        );
        assert!(s.integration_errors("github", 10).unwrap().is_empty());
        // The old item has no version: any versioned copy of it replaces it.
        let item = opslens_domain::ExternalItem {
            key: "github:deploy:o/r:7".into(),
            occurred_at: chrono::Utc::now(),
            message: "Deploy (success)".into(),
            signal: opslens_domain::SignalKind::Change,
            evidence: None,
            version: Some("v1".into()),
        };
        assert_eq!(
            s.attach_external(1, std::slice::from_ref(&item)).unwrap(),
            1
        );
        assert_eq!(
            s.attach_external(1, &[item]).unwrap(),
            0,
            "same version: no change"
        );
        assert!(s
            .signals(1)
            .unwrap()
            .iter()
            .any(|x| x.key == "github:deploy:o/r:7" && x.message == "Deploy (success)"));
    }
}
