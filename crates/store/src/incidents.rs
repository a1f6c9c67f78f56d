//! Incidents: create, read, list with filters, patch, delete.

use opslens_domain::{
    FeedKind, FeedOp, Incident, IncidentFilter, IncidentPatch, IncidentSource, IncidentStatus,
    Page, Severity, Timestamp,
};
use rusqlite::{params, OptionalExtension, ToSql};

use crate::row::incident_from_row as from_row;
use crate::row::{get_in, now, ts, COLUMNS};
use crate::search::fts_query;
use crate::tx::{Fact, WriteTx};
use crate::{Result, SqliteStore, StoreError};

/// What the store needs to create an incident; validated by the caller.
#[derive(Debug, Clone)]
pub struct NewIncidentRow {
    /// One-line summary.
    pub title: String,
    /// Longer context.
    pub description: String,
    /// How bad.
    pub severity: Severity,
    /// Initial status.
    pub status: IncidentStatus,
    /// Origin.
    pub source: IncidentSource,
    /// Id in the origin system.
    pub external_id: Option<String>,
}

#[cfg(test)]
impl NewIncidentRow {
    /// A high-severity incident opened by hand and still triggered: what most store tests
    /// start from.
    pub(crate) fn test(title: &str) -> Self {
        NewIncidentRow {
            title: title.into(),
            description: String::new(),
            severity: Severity::High,
            status: IncidentStatus::Triggered,
            source: IncidentSource::Manual,
            external_id: None,
        }
    }
}

/// Inserts an incident and records it as opened: the one insert behind incidents opened by
/// hand and those brought in by syncs and webhooks.
pub(crate) fn insert(tx: &WriteTx<'_>, new: &NewIncidentRow, t: &Timestamp) -> Result<Incident> {
    let acked = (new.status != IncidentStatus::Triggered).then(|| ts(t));
    let resolved = new.status.is_finished().then(|| ts(t));
    let mitigated = new.status.is_mitigated().then(|| ts(t));
    tx.execute(
        "INSERT INTO incident(title, description, severity, status, source, external_id,
                              created_at, updated_at, acknowledged_at, resolved_at, mitigated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
        params![
            new.title,
            new.description,
            new.severity.as_str(),
            new.status.as_str(),
            new.source.as_str(),
            new.external_id,
            ts(t),
            acked,
            resolved,
            mitigated
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.touched(FeedKind::Incident, FeedOp::Created, id, id);
    // Built from what was just written rather than read back: a new incident has no evidence,
    // and its times are `t` as stored (to the microsecond), so it equals a later read.
    let at = crate::row::parse_ts(&ts(t)).map_err(|e| StoreError::BadValue(e.to_string()))?;
    let when = |set: bool| set.then_some(at);
    let inc = crate::row::with_metrics(Incident {
        id,
        title: new.title.clone(),
        description: new.description.clone(),
        severity: new.severity,
        status: new.status,
        source: new.source,
        external_id: new.external_id.clone(),
        created_at: at,
        updated_at: at,
        acknowledged_at: when(acked.is_some()),
        mitigated_at: when(mitigated.is_some()),
        resolved_at: when(resolved.is_some()),
        tta_seconds: None,
        ttm_seconds: None,
        ttr_seconds: None,
        next_update_at: None,
        evidence_count: 0,
        merged_into: None,
        possible_duplicate_of: None,
    });
    tx.record(t, Fact::IncidentOpened(inc.clone()))?;
    Ok(inc)
}

/// Sets a new status with its lifecycle times (acknowledged once; mitigated and resolved
/// while the status says so).
pub(crate) fn set_status(
    tx: &WriteTx<'_>,
    id: i64,
    status: IncidentStatus,
    t: &Timestamp,
) -> Result<()> {
    tx.execute(
        "UPDATE incident SET status = ?1,
            acknowledged_at = COALESCE(acknowledged_at, ?2),
            resolved_at = CASE WHEN ?3 THEN COALESCE(resolved_at, ?2) ELSE NULL END,
            mitigated_at = CASE WHEN ?5 THEN COALESCE(mitigated_at, ?2) ELSE NULL END
         WHERE id = ?4",
        params![
            status.as_str(),
            ts(t),
            status.is_finished(),
            id,
            status.is_mitigated()
        ],
    )?;
    Ok(())
}

pub(crate) fn ensure_exists(c: &rusqlite::Connection, id: i64) -> Result<()> {
    let found: bool = c.query_row(
        "SELECT EXISTS(SELECT 1 FROM incident WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: "incident",
            id,
        })
    }
}

impl SqliteStore {
    /// Creates an incident and its first timeline event in one transaction.
    pub fn create_incident(&self, new: NewIncidentRow) -> Result<Incident> {
        self.write(|tx| insert(tx, &new, &now()))
    }

    /// Fails with `NotFound` unless the incident exists; cheaper than [`Store::incident`]
    /// (no evidence count), for callers that only check.
    pub fn ensure_incident(&self, id: i64) -> Result<()> {
        self.read(|c| ensure_exists(c, id))
    }

    /// One incident.
    pub fn incident(&self, id: i64) -> Result<Incident> {
        self.read(|c| get_in(c, id))
    }

    /// The incident a capture lands on when none is named: the open (not resolved or closed)
    /// one changed most recently, since that is the one the engineer is working on.
    pub fn latest_open_incident(&self) -> Result<Option<Incident>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM incident i WHERE i.status NOT IN ('resolved', 'closed') \
                     ORDER BY i.updated_at DESC, i.id DESC LIMIT 1"
                ),
                [],
                from_row,
            )
            .optional()?)
        })
    }

    /// Incidents matching `filter`, newest first.
    pub fn list_incidents(&self, filter: &IncidentFilter) -> Result<Page<Incident>> {
        let mut wheres = Vec::new();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(s) = filter.status {
            wheres.push("i.status = ?".to_string());
            args.push(Box::new(s.as_str()));
        }
        if filter.open == Some(true) {
            wheres.push("i.status NOT IN ('resolved', 'closed')".to_string());
        }
        if let Some(s) = filter.severity {
            wheres.push("i.severity = ?".to_string());
            args.push(Box::new(s.as_str()));
        }
        if let Some(q) = filter.q.as_deref().and_then(fts_query) {
            self.index_noted()?;
            // Matches on the incident itself or on any of its evidence.
            wheres.push(
                "i.id IN (SELECT d.incident_id FROM search_fts f JOIN search_doc d ON d.id = f.rowid
                  WHERE search_fts MATCH ?)"
                    .to_string(),
            );
            args.push(Box::new(q));
        }
        let where_sql = if wheres.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wheres.join(" AND "))
        };
        let limit = filter.limit();
        let offset = filter.offset.unwrap_or(0);
        self.read(|c| {
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM incident i {where_sql}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM incident i {where_sql} ORDER BY i.created_at DESC, i.id DESC LIMIT {limit} OFFSET {offset}"
            ))?;
            let items = st
                .query_map(rusqlite::params_from_iter(args.iter()), from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page { items, total, limit, offset })
        })
    }

    /// Applies the present fields of `patch`. A status, severity or title that really
    /// changed is recorded as a fact (the narrator words it); a description edit or a PATCH of
    /// current values is not.
    pub fn update_incident(&self, id: i64, patch: &IncidentPatch) -> Result<Incident> {
        self.write(|tx| {
            let old = get_in(tx, id)?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, id, id);
            let t = now();
            if let Some(title) = &patch.title {
                tx.execute(
                    "UPDATE incident SET title = ?1 WHERE id = ?2",
                    params![title, id],
                )?;
            }
            if let Some(d) = &patch.description {
                tx.execute(
                    "UPDATE incident SET description = ?1 WHERE id = ?2",
                    params![d, id],
                )?;
            }
            let severity = patch.severity.filter(|s| *s != old.severity);
            if let Some(sev) = severity {
                tx.execute(
                    "UPDATE incident SET severity = ?1 WHERE id = ?2",
                    params![sev.as_str(), id],
                )?;
            }
            let status = patch.status.filter(|s| *s != old.status);
            if let Some(st) = status {
                set_status(tx, id, st, &t)?;
            }
            tx.execute(
                "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), id],
            )?;
            let inc = get_in(tx, id)?;
            let title = (inc.title != old.title).then(|| (old.title.clone(), inc.title.clone()));
            if title.is_some() || severity.is_some() || status.is_some() {
                tx.record(
                    &t,
                    Fact::IncidentChanged {
                        incident: inc.clone(),
                        title,
                        severity: severity.map(|s| (old.severity, s)),
                        status: status.map(|s| (old.status, s)),
                        via: None,
                    },
                )?;
            }
            Ok(inc)
        })
    }

    /// Deletes an incident with everything attached to it, and its image files that no other
    /// evidence shares.
    pub fn delete_incident(&self, id: i64) -> Result<()> {
        let _blobs = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let names = self.write(|tx| {
            ensure_exists(tx, id)?;
            let mut st = tx.prepare(
                "SELECT blob_path FROM evidence WHERE incident_id = ?1 AND blob_path IS NOT NULL
                 UNION SELECT redacted_blob FROM evidence WHERE incident_id = ?1 AND redacted_blob IS NOT NULL",
            )?;
            let names = st
                .query_map([id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(st);
            tx.execute("DELETE FROM incident WHERE id = ?1", [id])?;
            tx.touched(FeedKind::Incident, FeedOp::Deleted, id, id);
            Ok(names)
        })?;
        self.remove_unreferenced(&names)
    }

    /// Finds an incident by its id in a source system (for idempotent syncs).
    pub fn incident_by_external(
        &self,
        source: IncidentSource,
        external_id: &str,
    ) -> Result<Option<Incident>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM incident i WHERE i.source = ?1 AND i.external_id = ?2"
                ),
                params![source.as_str(), external_id],
                from_row,
            )
            .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use opslens_domain::{IncidentSource, IncidentStatus, Severity};

    use crate::{NewIncidentRow, Store};

    /// A create answers with the incident built from what it wrote, not read back: it must
    /// equal a later read in every field, lifecycle times and metrics included.
    #[test]
    fn a_created_incident_equals_its_later_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for (i, status) in [
            IncidentStatus::Triggered,
            IncidentStatus::Acknowledged,
            IncidentStatus::Investigating,
            IncidentStatus::Mitigated,
            IncidentStatus::Resolved,
            IncidentStatus::Closed,
        ]
        .into_iter()
        .enumerate()
        {
            let created = s
                .create_incident(NewIncidentRow {
                    title: format!("checkout errors {i}"),
                    description: "5xx on /pay".into(),
                    severity: Severity::High,
                    status,
                    source: if i % 2 == 0 {
                        IncidentSource::Manual
                    } else {
                        IncidentSource::Pagerduty
                    },
                    external_id: (i % 2 == 1).then(|| format!("PD{i}")),
                })
                .unwrap();
            assert_eq!(created, s.incident(created.id).unwrap(), "{status:?}");
        }
    }
}
