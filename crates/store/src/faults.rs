//! Which store failures are the machine's rather than the request's: a full disk and a
//! database another process keeps locked. Callers answer these differently from a bug (507 and
//! 503 with a retry hint instead of 500), so the store names them without the caller having to
//! know rusqlite.

use rusqlite::ErrorCode;

use crate::StoreError;

impl StoreError {
    /// The disk (or the user's quota) holding the database or the image files is full:
    /// SQLITE_FULL from SQLite, ENOSPC/EDQUOT from a file write.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => e.sqlite_error_code() == Some(ErrorCode::DiskFull),
            StoreError::Io(e) => is_full_io(e),
            _ => false,
        }
    }

    /// SQLite stayed busy or locked past the busy timeout (another process holds the lock):
    /// the same request is likely to succeed a moment later.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => pg_transient(e),
            _ => false,
        }
    }
}

/// A PostgreSQL failure that a retry a moment later can fix: the connection broke (a
/// restart, a network cut), the server is shutting down or out of connections, or a
/// serialization failure or deadlock chose this transaction.
fn pg_transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("57P")
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::QUERY_CANCELED
                || *code == SqlState::LOCK_NOT_AVAILABLE
        }
    }
}

fn is_full_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn disk_full_and_busy_are_told_apart_from_other_failures() {
        assert!(sqlite(rusqlite::ffi::SQLITE_FULL).is_disk_full());
        assert!(!sqlite(rusqlite::ffi::SQLITE_FULL).is_busy());
        assert!(sqlite(rusqlite::ffi::SQLITE_BUSY).is_busy());
        assert!(sqlite(rusqlite::ffi::SQLITE_LOCKED).is_busy());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_disk_full());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_busy());
        // ENOSPC (28 on Linux and macOS) as the OS reports it, e.g. from the image file write.
        #[cfg(unix)]
        assert!(StoreError::Io(std::io::Error::from_raw_os_error(28)).is_disk_full());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!StoreError::Io(other).is_disk_full());
        assert!(!StoreError::Conflict("x".into()).is_disk_full());
    }
}
