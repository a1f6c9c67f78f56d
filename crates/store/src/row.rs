//! Conversions between SQLite values and domain types.

use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use opslens_domain::{Incident, IncidentSource, IncidentStatus, Severity, Timestamp};
use rusqlite::{OptionalExtension, Row};

use crate::{Result, StoreError};
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

/// Columns of an incident row (`i` is the incident table), with its evidence count.
pub(crate) const COLUMNS: &str =
    "i.id, i.title, i.description, i.severity, i.status, i.source, i.external_id, \
     i.created_at, i.updated_at, i.acknowledged_at, i.mitigated_at, i.resolved_at, \
     i.next_update_at, i.merged_into, \
     (SELECT COUNT(*) FROM evidence e WHERE e.incident_id = i.id) AS evidence_count";

/// An incident from a row of [`COLUMNS`].
pub(crate) fn incident_from_row(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(with_metrics(Incident {
        id: r.get("id")?,
        title: r.get("title")?,
        description: r.get("description")?,
        severity: r.get::<_, En<Severity>>("severity")?.0,
        status: r.get::<_, En<IncidentStatus>>("status")?.0,
        source: r.get::<_, En<IncidentSource>>("source")?.0,
        external_id: r.get("external_id")?,
        created_at: r.get::<_, Ts>("created_at")?.0,
        updated_at: r.get::<_, Ts>("updated_at")?.0,
        acknowledged_at: opt_ts(r, "acknowledged_at")?,
        mitigated_at: opt_ts(r, "mitigated_at")?,
        resolved_at: opt_ts(r, "resolved_at")?,
        tta_seconds: None,
        ttm_seconds: None,
        ttr_seconds: None,
        next_update_at: opt_ts(r, "next_update_at")?,
        evidence_count: r.get("evidence_count")?,
        merged_into: r.get("merged_into")?,
        possible_duplicate_of: None,
    }))
}

/// Fills the lifecycle metrics from the timestamps (seconds since the incident opened).
pub(crate) fn with_metrics(mut inc: Incident) -> Incident {
    let since = |t: Option<Timestamp>| t.map(|t| (t - inc.created_at).num_seconds().max(0));
    inc.tta_seconds = since(inc.acknowledged_at);
    inc.ttm_seconds = since(inc.mitigated_at);
    inc.ttr_seconds = since(inc.resolved_at);
    inc
}

/// One incident, inside any transaction or reader.
pub(crate) fn get_in(c: &rusqlite::Connection, id: i64) -> Result<Incident> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM incident i WHERE i.id = ?1"))?
        .query_row([id], incident_from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "incident",
            id,
        })
}
