//! Incidents on PostgreSQL: the same behaviour as `crate::incidents`.

use opslens_domain::{
    FeedKind, FeedOp, Incident, IncidentFilter, IncidentPatch, IncidentSource, IncidentStatus,
    Page, Timestamp,
};
use postgres::types::ToSql;

use super::row::{ensure_incident, incident_from_row, incident_in};
use super::{PgStore, PgTx};
use crate::row::{now, ts, COLUMNS};
use crate::search::parse_query;
use crate::tx::Fact;
use crate::{NewIncidentRow, Result};

/// Inserts an incident and records it as opened.
pub(crate) fn insert(
    tx: &mut PgTx<'_, '_>,
    new: &NewIncidentRow,
    t: &Timestamp,
) -> Result<Incident> {
    let acked = (new.status != IncidentStatus::Triggered).then(|| ts(t));
    let resolved = new.status.is_finished().then(|| ts(t));
    let mitigated = new.status.is_mitigated().then(|| ts(t));
    let id: i64 = tx
        .c
        .query_one(
            "INSERT INTO incident(title, description, severity, status, source, external_id,
                                  created_at, updated_at, acknowledged_at, resolved_at, mitigated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10) RETURNING id",
            &[
                &new.title,
                &new.description,
                &new.severity.as_str(),
                &new.status.as_str(),
                &new.source.as_str(),
                &new.external_id,
                &ts(t),
                &acked,
                &resolved,
                &mitigated,
            ],
        )?
        .get(0);
    tx.touched(FeedKind::Incident, FeedOp::Created, id, id);
    let inc = incident_in(&mut tx.c, id)?;
    tx.record(t, Fact::IncidentOpened(inc.clone()))?;
    Ok(inc)
}

/// Sets a new status with its lifecycle times (as `crate::incidents::set_status`).
pub(crate) fn set_status(
    tx: &mut PgTx<'_, '_>,
    id: i64,
    status: IncidentStatus,
    t: &Timestamp,
) -> Result<()> {
    tx.c.execute(
        "UPDATE incident SET status = $1,
            acknowledged_at = COALESCE(acknowledged_at, $2),
            resolved_at = CASE WHEN $3 THEN COALESCE(resolved_at, $2) ELSE NULL END,
            mitigated_at = CASE WHEN $5 THEN COALESCE(mitigated_at, $2) ELSE NULL END
         WHERE id = $4",
        &[
            &status.as_str(),
            &ts(t),
            &status.is_finished(),
            &id,
            &status.is_mitigated(),
        ],
    )?;
    Ok(())
}

impl PgStore {
    pub(crate) fn latest_open_incident_pg(&self) -> Result<Option<Incident>> {
        self.read(|c| {
            c.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM incident i WHERE i.status NOT IN ('resolved', 'closed') \
                     ORDER BY i.updated_at DESC, i.id DESC LIMIT 1"
                ),
                &[],
            )?
            .map(|r| incident_from_row(&r))
            .transpose()
        })
    }

    pub(crate) fn list_incidents_pg(&self, filter: &IncidentFilter) -> Result<Page<Incident>> {
        let mut wheres = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        if let Some(s) = filter.status {
            args.push(Box::new(s.as_str()));
            wheres.push(format!("i.status = ${}", args.len()));
        }
        if filter.open == Some(true) {
            wheres.push("i.status NOT IN ('resolved', 'closed')".to_string());
        }
        if let Some(s) = filter.severity {
            args.push(Box::new(s.as_str()));
            wheres.push(format!("i.severity = ${}", args.len()));
        }
        if let Some(q) = filter.q.as_deref().and_then(|q| parse_query(q).ok()) {
            // Matches on the incident itself or on any of its entries (as on SQLite).
            let m = super::search::match_sql(&q, &mut args);
            wheres.push(format!(
                "i.id IN (SELECT d.incident_id FROM search_doc d WHERE {m})"
            ));
        }
        let where_sql = if wheres.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wheres.join(" AND "))
        };
        let limit = filter.limit();
        let offset = filter.offset.unwrap_or(0);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        self.read(|c| {
            let total: i64 = c
                .query_one(
                    &format!("SELECT COUNT(*) FROM incident i {where_sql}"),
                    &params,
                )?
                .get(0);
            let rows = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM incident i {where_sql} \
                     ORDER BY i.created_at DESC, i.id DESC LIMIT {limit} OFFSET {offset}"
                ),
                &params,
            )?;
            let items = rows
                .iter()
                .map(incident_from_row)
                .collect::<Result<Vec<_>>>()?;
            Ok(Page {
                items,
                total,
                limit,
                offset,
            })
        })
    }

    pub(crate) fn update_incident_pg(&self, id: i64, patch: &IncidentPatch) -> Result<Incident> {
        self.write(|tx| {
            let old = incident_in(&mut tx.c, id)?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, id, id);
            let t = now();
            if let Some(title) = &patch.title {
                tx.c.execute(
                    "UPDATE incident SET title = $1 WHERE id = $2",
                    &[title, &id],
                )?;
            }
            if let Some(d) = &patch.description {
                tx.c.execute(
                    "UPDATE incident SET description = $1 WHERE id = $2",
                    &[d, &id],
                )?;
            }
            let severity = patch.severity.filter(|s| *s != old.severity);
            if let Some(sev) = severity {
                tx.c.execute(
                    "UPDATE incident SET severity = $1 WHERE id = $2",
                    &[&sev.as_str(), &id],
                )?;
            }
            let status = patch.status.filter(|s| *s != old.status);
            if let Some(st) = status {
                set_status(tx, id, st, &t)?;
            }
            tx.c.execute(
                "UPDATE incident SET updated_at = $1 WHERE id = $2",
                &[&ts(&t), &id],
            )?;
            let inc = incident_in(&mut tx.c, id)?;
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

    pub(crate) fn delete_incident_pg(&self, id: i64) -> Result<()> {
        let _blobs = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let names = self.write(|tx| {
            ensure_incident(&mut tx.c, id)?;
            let names: Vec<String> = tx
                .c
                .query(
                    "SELECT blob_path FROM evidence WHERE incident_id = $1 AND blob_path IS NOT NULL
                     UNION SELECT redacted_blob FROM evidence WHERE incident_id = $1 AND redacted_blob IS NOT NULL",
                    &[&id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.c.execute("DELETE FROM incident WHERE id = $1", &[&id])?;
            tx.touched(FeedKind::Incident, FeedOp::Deleted, id, id);
            Ok(names)
        })?;
        self.remove_unreferenced(&names)
    }

    pub(crate) fn incident_by_external_pg(
        &self,
        source: IncidentSource,
        external_id: &str,
    ) -> Result<Option<Incident>> {
        self.read(|c| {
            c.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM incident i WHERE i.source = $1 AND i.external_id = $2"
                ),
                &[&source.as_str(), &external_id],
            )?
            .map(|r| incident_from_row(&r))
            .transpose()
        })
    }
}
