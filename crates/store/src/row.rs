//! Conversions between SQLite values and domain types.

use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use opslens_domain::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

/// Timestamps are stored as fixed-width RFC 3339 UTC text so that text order is time order.
pub(crate) fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Now, truncated to what is stored, so a value returned after a write equals a later read.
pub(crate) fn now() -> Timestamp {
    parse_ts(&ts(&Utc::now())).expect("own format parses")
}

pub(crate) fn parse_ts(s: &str) -> Result<Timestamp, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Reads a timestamp column.
pub(crate) struct Ts(pub Timestamp);

impl FromSql for Ts {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        parse_ts(s)
            .map(Ts)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Reads a wire-enum column (severity, status, …).
pub(crate) struct En<T>(pub T);

impl<T> FromSql for En<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map(En)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(crate) fn opt_ts(row: &rusqlite::Row<'_>, idx: &str) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<Ts>>(idx)?.map(|t| t.0))
}
