//! WAL checkpoints off the writer's path.
//!
//! SQLite copies the write-ahead log back into the database file (a checkpoint) on the
//! connection that commits once the log passes 1,000 pages. That was the writer: under load,
//! about every fiftieth batch also copied a few MB and waited for two `fsync`s, and every
//! request queued behind it waited as well (5 % of the writer's time went in `fsync` alone).
//! Now the writer only notes the log's length after each commit (SQLite's WAL hook, which
//! replaces its automatic checkpoint) and a thread with its own connection checkpoints once
//! the log passes [`CHECKPOINT_AT`] pages. `PASSIVE`, so it never waits for, nor blocks, the
//! writer or a reader.
//!
//! SQLite starts the log over only when a write transaction begins with every page of it
//! already copied back. Under a steady stream of commits the thread's checkpoint rarely ends
//! before the next commit appends more, so the log would only grow; once it passes
//! [`WRITER_CHECKPOINTS_AT`] pages the writer checkpoints itself, as SQLite would. That copies
//! only what the thread has not (little), and the log starts over at the next batch.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use crate::Result;

/// Log pages past which the checkpoint thread copies them back (SQLite's own default).
pub(crate) const CHECKPOINT_AT: c_int = 1000;

/// Log pages past which the writer checkpoints itself, as SQLite would.
pub(crate) const WRITER_CHECKPOINTS_AT: c_int = 4 * CHECKPOINT_AT;

thread_local! {
    /// The log's length after the last commit on this thread (set by [`note_length`]).
    static LOG_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// SQLite's WAL hook: runs inside each commit, on the committing thread.
fn note_length(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The checkpoint thread, woken by the writer.
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Takes the checkpoints of `writer` (the database at `path`) over.
    pub(crate) fn start(path: &Path, writer: &Connection) -> Result<Self> {
        let conn = Connection::open(path)?;
        crate::configure(&conn)?;
        // One wake-up is enough however many commits ask while a checkpoint runs.
        let (wake, woken) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("opslens-checkpoint".into())
            .spawn(move || {
                // Ends when the writer (the only sender) is gone.
                while woken.recv().is_ok() {
                    if let Err(e) = checkpoint(&conn) {
                        // The next commit asks again; the writer checkpoints if it must.
                        tracing::debug!(error = %e, "background checkpoint failed");
                    }
                }
            })?;
        writer.wal_hook(Some(note_length));
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Called by the writer right after each `COMMIT`, on the committing thread.
    pub(crate) fn committed(&self, writer: &Connection) {
        let pages = LOG_PAGES.with(|p| p.replace(0));
        if pages >= WRITER_CHECKPOINTS_AT {
            if let Err(e) = checkpoint(writer) {
                tracing::warn!(error = %e, pages, "checkpoint failed; the log keeps growing");
            }
        } else if pages >= CHECKPOINT_AT {
            if let Some(wake) = &self.wake {
                // Full: a wake-up is already pending.
                let _ = wake.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies what the log holds back into the database as far as no reader needs it.
fn checkpoint(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{NewIncidentRow, Store};

    /// Under a stream of commits the log is copied back and started over, not left to grow:
    /// its file stays a small multiple of [`super::WRITER_CHECKPOINTS_AT`] pages.
    #[test]
    fn the_log_stays_short_under_many_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let wal = dir.path().join("opslens.db-wal");
        let mut longest = 0;
        for i in 0..4000 {
            s.create_incident(NewIncidentRow {
                description: "x".repeat(2000),
                ..NewIncidentRow::test(&format!("incident {i}"))
            })
            .unwrap();
            longest = longest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        let page = 4096 + 24;
        // With no checkpoints the log would reach ~150 MB here. With them its file is as long
        // as the longest run of commits between two restarts: the writer's own checkpoint
        // gives way (SQLITE_BUSY) while the thread's is still copying, and on a loaded machine
        // (this test beside the crate's others on 2 vCPUs) that thread is held back. Twice
        // the writer's threshold was exceeded there once in ten runs (35-38 MB); four times
        // (66 MB) still fails if the log is never started over.
        let limit = 4 * super::WRITER_CHECKPOINTS_AT as u64 * page;
        assert!(
            longest < limit,
            "the log reached {longest} bytes (limit {limit})"
        );
        // Everything committed is in the database file once the store is closed.
        drop(s);
        let raw = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let n: i64 = raw
            .query_row("SELECT count(*) FROM incident", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4000);
        let ok: String = raw
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}
