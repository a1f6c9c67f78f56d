//! Incidents: create, read, list with filters, patch, delete.

use opslens_domain::{
    FeedKind, FeedOp, Incident, IncidentFilter, IncidentPatch, IncidentSource, IncidentStatus,
    Page, Severity, TimelineKind, Timestamp,
};
use rusqlite::{params, OptionalExtension, Row, ToSql, Transaction};

use crate::feed::touched;
use crate::notify::{from_to, Change, ChangeKind};
use crate::row::{now, opt_ts, ts, En, Ts};
use crate::search::fts_query;
use crate::{Result, Store, StoreError};

/// Description shown in an `incident.created` message at most (characters).
const NOTICE_DESCRIPTION: usize = 300;

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

const COLUMNS: &str =
    "i.id, i.title, i.description, i.severity, i.status, i.source, i.external_id, \
     i.created_at, i.updated_at, i.acknowledged_at, i.mitigated_at, i.resolved_at, i.next_update_at, \
     (SELECT COUNT(*) FROM evidence e WHERE e.incident_id = i.id) AS evidence_count";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
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
    }
    .with_metrics())
}

/// Fills the lifecycle metrics from the timestamps (seconds since the incident opened).
trait WithMetrics {
    fn with_metrics(self) -> Self;
}

impl WithMetrics for Incident {
    fn with_metrics(mut self) -> Self {
        let since = |t: Option<Timestamp>| t.map(|t| (t - self.created_at).num_seconds().max(0));
        self.tta_seconds = since(self.acknowledged_at);
        self.ttm_seconds = since(self.mitigated_at);
        self.ttr_seconds = since(self.resolved_at);
        self
    }
}

/// Adds a timeline event inside the caller's transaction.
pub(crate) fn add_event(
    tx: &Transaction<'_>,
    incident_id: i64,
    kind: TimelineKind,
    message: &str,
    occurred_at: &Timestamp,
    evidence_id: Option<i64>,
) -> Result<i64> {
    let at = crate::event_time::At {
        time: *occurred_at,
        source: opslens_domain::OccurredAtSource::Recorded,
    };
    crate::event_time::add_event_at(tx, incident_id, kind, message, at, evidence_id)
}

pub(crate) fn get_in(c: &rusqlite::Connection, id: i64) -> Result<Incident> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM incident i WHERE i.id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "incident",
            id,
        })
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

impl Store {
    /// Creates an incident and its first timeline event in one transaction.
    pub fn create_incident(&self, new: NewIncidentRow) -> Result<Incident> {
        self.write(|tx| {
            let t = now();
            let acked = (new.status != IncidentStatus::Triggered).then(|| ts(&t));
            let resolved = new.status.is_finished().then(|| ts(&t));
            let mitigated = new.status.is_mitigated().then(|| ts(&t));
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
                    ts(&t),
                    acked,
                    resolved,
                    mitigated
                ],
            )?;
            let id = tx.last_insert_rowid();
            touched(FeedKind::Incident, FeedOp::Created, id, id);
            let msg = format!("Incident opened ({}, {})", new.severity, new.status);
            add_event(tx, id, TimelineKind::IncidentCreated, &msg, &t, None)?;
            let inc = get_in(tx, id)?;
            let mut text = msg;
            if !new.description.trim().is_empty() {
                text.push('\n');
                text.extend(new.description.trim().chars().take(NOTICE_DESCRIPTION));
            }
            self.announce(
                tx,
                Change {
                    kind: ChangeKind::IncidentCreated,
                    incident: inc.clone(),
                    text,
                    data: Default::default(),
                },
            )?;
            Ok(inc)
        })
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
            // Matches on the incident itself or on any of its evidence.
            wheres.push(
                "i.id IN (SELECT incident_id FROM search_index WHERE search_index MATCH ?)"
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

    /// Applies the present fields of `patch`; status and severity changes go on the timeline.
    /// A status, severity or title that really changed is announced (one `incident.updated`
    /// naming every such change); a description edit or a PATCH of current values is not.
    pub fn update_incident(&self, id: i64, patch: &IncidentPatch) -> Result<Incident> {
        self.write(|tx| {
            let old = get_in(tx, id)?;
            touched(FeedKind::Incident, FeedOp::Updated, id, id);
            let t = now();
            let mut lines = Vec::new();
            let mut changes = serde_json::Map::new();
            if let Some(title) = &patch.title {
                tx.execute(
                    "UPDATE incident SET title = ?1 WHERE id = ?2",
                    params![title, id],
                )?;
                if *title != old.title {
                    lines.push(format!("Title: {} → {title}", old.title));
                    changes.insert("title".into(), from_to(&old.title, title));
                }
            }
            if let Some(d) = &patch.description {
                tx.execute(
                    "UPDATE incident SET description = ?1 WHERE id = ?2",
                    params![d, id],
                )?;
            }
            if let Some(sev) = patch.severity.filter(|s| *s != old.severity) {
                tx.execute(
                    "UPDATE incident SET severity = ?1 WHERE id = ?2",
                    params![sev.as_str(), id],
                )?;
                let msg = format!("Severity changed from {} to {}", old.severity, sev);
                add_event(tx, id, TimelineKind::SeverityChanged, &msg, &t, None)?;
                lines.push(format!("Severity: {} → {sev}", old.severity));
                changes.insert("severity".into(), from_to(old.severity, sev));
            }
            if let Some(st) = patch.status.filter(|s| *s != old.status) {
                tx.execute(
                    "UPDATE incident SET status = ?1,
                        acknowledged_at = COALESCE(acknowledged_at, ?2),
                        resolved_at = CASE WHEN ?3 THEN COALESCE(resolved_at, ?2) ELSE NULL END,
                        mitigated_at = CASE WHEN ?5 THEN COALESCE(mitigated_at, ?2) ELSE NULL END
                     WHERE id = ?4",
                    params![st.as_str(), ts(&t), st.is_finished(), id, st.is_mitigated()],
                )?;
                let msg = format!("Status changed from {} to {}", old.status, st);
                add_event(tx, id, TimelineKind::StatusChanged, &msg, &t, None)?;
                lines.insert(0, format!("Status: {} → {st}", old.status));
                changes.insert("status".into(), from_to(old.status, st));
            }
            tx.execute(
                "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), id],
            )?;
            let inc = get_in(tx, id)?;
            if !lines.is_empty() {
                let mut data = serde_json::Map::new();
                data.insert("changes".into(), changes.into());
                self.announce(
                    tx,
                    Change {
                        kind: ChangeKind::IncidentUpdated,
                        incident: inc.clone(),
                        text: lines.join("\n"),
                        data,
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
                "SELECT DISTINCT blob_path FROM evidence WHERE incident_id = ?1 AND blob_path IS NOT NULL",
            )?;
            let names = st
                .query_map([id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(st);
            tx.execute("DELETE FROM incident WHERE id = ?1", [id])?;
            touched(FeedKind::Incident, FeedOp::Deleted, id, id);
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
