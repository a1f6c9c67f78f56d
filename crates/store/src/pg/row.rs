//! Conversions between PostgreSQL rows and domain types (the counterpart of `crate::row`):
//! times are the same RFC 3339 text, enums their wire spelling.

use std::str::FromStr;

use opslens_domain::{Incident, Timestamp};
use postgres::{GenericClient, Row};

use crate::row::parse_ts;
use crate::{Result, StoreError};

/// A column that holds a time.
pub(crate) fn t(r: &Row, col: &str) -> Result<Timestamp> {
    let s: String = r.try_get(col)?;
    parse_ts(&s).map_err(|e| StoreError::BadValue(format!("{col} {s:?}: {e}")))
}

/// A column that may hold a time.
pub(crate) fn ot(r: &Row, col: &str) -> Result<Option<Timestamp>> {
    let s: Option<String> = r.try_get(col)?;
    s.map(|s| parse_ts(&s).map_err(|e| StoreError::BadValue(format!("{col} {s:?}: {e}"))))
        .transpose()
}

/// A column that holds a wire enum (severity, status, …).
pub(crate) fn en<T>(r: &Row, col: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s: String = r.try_get(col)?;
    s.parse()
        .map_err(|e: T::Err| StoreError::BadValue(format!("{col} {s:?}: {e}")))
}

/// A column that may hold a wire enum.
pub(crate) fn oen<T>(r: &Row, col: &str) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s: Option<String> = r.try_get(col)?;
    s.map(|s| {
        s.parse()
            .map_err(|e: T::Err| StoreError::BadValue(format!("{col} {s:?}: {e}")))
    })
    .transpose()
}

/// An incident from a row of [`crate::row::COLUMNS`] (the same select list on both backends).
pub(crate) fn incident_from_row(r: &Row) -> Result<Incident> {
    let mut inc = Incident {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        severity: en(r, "severity")?,
        status: en(r, "status")?,
        source: en(r, "source")?,
        external_id: r.try_get("external_id")?,
        created_at: t(r, "created_at")?,
        updated_at: t(r, "updated_at")?,
        acknowledged_at: ot(r, "acknowledged_at")?,
        mitigated_at: ot(r, "mitigated_at")?,
        resolved_at: ot(r, "resolved_at")?,
        tta_seconds: None,
        ttm_seconds: None,
        ttr_seconds: None,
        next_update_at: ot(r, "next_update_at")?,
        evidence_count: r.try_get("evidence_count")?,
        merged_into: r.try_get("merged_into")?,
        possible_duplicate_of: None,
    };
    let since = |x: Option<Timestamp>| x.map(|x| (x - inc.created_at).num_seconds().max(0));
    inc.tta_seconds = since(inc.acknowledged_at);
    inc.ttm_seconds = since(inc.mitigated_at);
    inc.ttr_seconds = since(inc.resolved_at);
    Ok(inc)
}

/// One incident, in a transaction or on a plain connection.
pub(crate) fn incident_in(c: &mut impl GenericClient, id: i64) -> Result<Incident> {
    let cols = crate::row::COLUMNS;
    match c.query_opt(
        &format!("SELECT {cols} FROM incident i WHERE i.id = $1"),
        &[&id],
    )? {
        Some(r) => incident_from_row(&r),
        None => Err(StoreError::NotFound {
            what: "incident",
            id,
        }),
    }
}

/// Fails with `NotFound` unless the incident exists.
pub(crate) fn ensure_incident(c: &mut impl GenericClient, id: i64) -> Result<()> {
    let found: bool = c
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM incident WHERE id = $1)",
            &[&id],
        )?
        .get(0);
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: "incident",
            id,
        })
    }
}
