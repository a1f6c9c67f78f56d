//! Data from other systems: synced incidents and their items, webhook deliveries (exactly once
//! per delivery id), correlation hypotheses, and per-integration sync state.

use opslens_domain::{
    ApplyOutcome, ExternalIncident, ExternalItem, FeedKind, FeedOp, HypothesisOrigin,
    HypothesisStatus, Incident, IntegrationError, IntegrationState, SignalKind, StoredSignal,
    TimelineKind, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::blobs::sha256_hex;
use crate::incidents::{ensure_exists, insert, set_status};
use crate::people::{set_author, Authored};
use crate::row::{get_in, now, opt_ts, ts, Ts};
use crate::tx::{Fact, WriteTx};
use crate::{NewIncidentRow, Result, SqliteStore};

/// What a verified webhook delivery does, applied in the same transaction that records the
/// delivery id, so a delivery is processed exactly once even if the process dies midway.
#[derive(Debug, Clone)]
pub enum DeliveryAction {
    /// Create or update the incident, then add the items to it (PagerDuty, alerts).
    Upsert(ExternalIncident, Vec<ExternalItem>),
    /// Add the items to every incident that is not resolved or closed (GitHub merges/deploys).
    AttachToOpen(Vec<ExternalItem>),
    /// Record the delivery but change nothing (event types OpsLens does not use).
    Ignore(String),
}

/// Creates or updates the incident of `inc`; returns (id, created, updated). The narrator
/// decides what of it is news (an incident brought in already resolved is history, not news).
fn upsert_in(tx: &WriteTx<'_>, inc: &ExternalIncident) -> Result<(i64, bool, bool)> {
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, title FROM incident WHERE source = ?1 AND external_id = ?2",
            params![inc.source.as_str(), inc.external_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let t = now();
    // What a sync or webhook writes is by that integration.
    tx.as_author(inc.source.as_str());
    let Some((id, title)) = existing else {
        let row = NewIncidentRow {
            title: if inc.title.is_empty() {
                inc.external_id.clone()
            } else {
                inc.title.clone()
            },
            description: inc.description.clone(),
            severity: inc.severity,
            status: inc.status,
            source: inc.source,
            external_id: Some(inc.external_id.clone()),
        };
        return Ok((insert(tx, &row, &t)?.id, true, false));
    };
    let old = get_in(tx, id)?;
    let status = (old.status != inc.status).then_some((old.status, inc.status));
    if status.is_some() {
        set_status(tx, id, inc.status, &t)?;
    }
    let retitled = !inc.title.is_empty() && title != inc.title;
    if retitled {
        tx.execute(
            "UPDATE incident SET title = ?1 WHERE id = ?2",
            params![inc.title, id],
        )?;
    }
    if status.is_none() && !retitled {
        return Ok((id, false, false));
    }
    tx.execute(
        "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
        params![ts(&t), id],
    )?;
    tx.touched(FeedKind::Incident, FeedOp::Updated, id, id);
    tx.record(
        &t,
        Fact::IncidentChanged {
            incident: get_in(tx, id)?,
            title: retitled.then(|| (title, inc.title.clone())),
            severity: None,
            status,
            via: Some(inc.source),
        },
    )?;
    Ok((id, false, true))
}

/// Replaces a stored item by a newer version of it (a deployment that gained a status, or the
/// sync's full copy of what a webhook brought): its time, message and evidence change in place,
/// so one deployment stays one piece of evidence. A changed message goes on the timeline.
/// Returns whether anything changed.
fn replace_in(tx: &WriteTx<'_>, incident_id: i64, item: &ExternalItem) -> Result<bool> {
    let Some(version) = item.version.as_deref() else {
        return Ok(false);
    };
    let (old_version, old_message, evidence_id): (Option<String>, String, Option<i64>) = tx
        .query_row(
            "SELECT version, message, evidence_id FROM external_item WHERE incident_id = ?1 AND key = ?2",
            params![incident_id, item.key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
    if old_version.as_deref().is_some_and(|old| old >= version) {
        return Ok(false);
    }
    tx.execute(
        "UPDATE external_item SET version = ?3, signal = ?4, occurred_at = ?5, message = ?6
         WHERE incident_id = ?1 AND key = ?2",
        params![
            incident_id,
            item.key,
            version,
            item.signal.as_str(),
            ts(&item.occurred_at),
            item.message
        ],
    )?;
    if let (Some(id), Some(e)) = (evidence_id, &item.evidence) {
        tx.execute(
            "UPDATE evidence SET title = ?2, content = ?3, source = ?4, sha256 = ?5, updated_at = ?6
             WHERE id = ?1",
            params![id, e.title, e.content, e.source, sha256_hex(e.content.as_bytes()), ts(&now())],
        )?;
        tx.touched(FeedKind::Evidence, FeedOp::Updated, incident_id, id);
    }
    if old_message != item.message {
        add_item_event(tx, incident_id, item, evidence_id)?;
    }
    Ok(true)
}

/// Adds the items not yet on the incident and replaces stored ones by newer versions; returns
/// how many were added or replaced.
/// The timeline entry of an external item: "evidence added" when it brought evidence, else an
/// observation (a log entry, an alert without a payload worth keeping).
fn add_item_event(
    tx: &WriteTx<'_>,
    incident_id: i64,
    item: &ExternalItem,
    evidence_id: Option<i64>,
) -> Result<i64> {
    let kind = if evidence_id.is_some() {
        TimelineKind::EvidenceAdded
    } else {
        TimelineKind::Observation
    };
    let at = crate::tx::At {
        time: item.occurred_at,
        source: opslens_domain::OccurredAtSource::Derived,
    };
    let id = tx.add_event_at(incident_id, kind, &item.message, at, evidence_id)?;
    set_author(tx, Authored::Timeline, id, item_author(item))?;
    Ok(id)
}

/// The integration an item came from, as the author of what it brings (`github`, `pagerduty`).
fn item_author(item: &ExternalItem) -> &str {
    item.key.split(':').next().unwrap_or("integration")
}

fn add_items_in(tx: &WriteTx<'_>, incident_id: i64, items: &[ExternalItem]) -> Result<usize> {
    let mut added = 0;
    for item in items {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO external_item(incident_id, key, signal, occurred_at, message, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                incident_id,
                item.key,
                item.signal.as_str(),
                ts(&item.occurred_at),
                item.message,
                item.version
            ],
        )?;
        if inserted == 0 {
            if replace_in(tx, incident_id, item)? {
                added += 1;
            }
            continue;
        }
        added += 1;
        let t = now();
        let evidence_id = match &item.evidence {
            Some(e) => {
                tx.execute(
                    "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![incident_id, e.evidence_type.as_str(), e.title, e.content, e.source,
                            sha256_hex(e.content.as_bytes()), ts(&t)],
                )?;
                let id = tx.last_insert_rowid();
                tx.touched(FeedKind::Evidence, FeedOp::Created, incident_id, id);
                // The integration's event time is when it happened (the deploy, the alert).
                tx.execute(
                    "UPDATE evidence SET occurred_at = ?1, occurred_at_source = 'derived' WHERE id = ?2",
                    params![ts(&item.occurred_at), id],
                )?;
                set_author(tx, Authored::Evidence, id, item_author(item))?;
                tx.execute(
                    "UPDATE external_item SET evidence_id = ?1 WHERE incident_id = ?2 AND key = ?3",
                    params![id, incident_id, item.key],
                )?;
                Some(id)
            }
            None => None,
        };
        add_item_event(tx, incident_id, item, evidence_id)?;
    }
    if added > 0 {
        tx.execute(
            "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
            params![ts(&now()), incident_id],
        )?;
        tx.touched(
            FeedKind::Incident,
            FeedOp::Updated,
            incident_id,
            incident_id,
        );
    }
    Ok(added)
}

fn apply_in(
    tx: &WriteTx<'_>,
    inc: &ExternalIncident,
    items: &[ExternalItem],
) -> Result<ApplyOutcome> {
    let (incident_id, created, updated) = upsert_in(tx, inc)?;
    let new_items = add_items_in(tx, incident_id, items)?;
    Ok(ApplyOutcome {
        incident_id,
        created,
        updated,
        new_items,
    })
}

/// Errors kept per integration; older ones are pruned as new ones come in.
pub const ERRORS_KEPT: i64 = 50;

/// Records an error of integration `name` inside the caller's transaction, pruning the oldest.
pub(crate) fn record_error_in(tx: &Connection, name: &str, message: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO integration_error(name, occurred_at, message) VALUES (?1, ?2, ?3)",
        params![name, ts(&now()), message],
    )?;
    tx.execute(
        "DELETE FROM integration_error WHERE name = ?1 AND id <= (
             SELECT id FROM integration_error WHERE name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![name, ERRORS_KEPT],
    )?;
    Ok(())
}

fn open_incident_ids(c: &rusqlite::Connection) -> Result<Vec<i64>> {
    let mut st = c.prepare(
        "SELECT id FROM incident WHERE status NOT IN ('resolved', 'closed') ORDER BY id",
    )?;
    let ids = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

impl SqliteStore {
    /// Creates or updates an incident from another system and adds its new items, in one
    /// transaction; a second call with the same data changes nothing.
    pub fn apply_external(
        &self,
        inc: &ExternalIncident,
        items: &[ExternalItem],
    ) -> Result<ApplyOutcome> {
        self.write(|tx| apply_in(tx, inc, items))
    }

    /// Adds items (merges, deployments) to an existing incident; returns how many were new.
    pub fn attach_external(&self, incident_id: i64, items: &[ExternalItem]) -> Result<usize> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            add_items_in(tx, incident_id, items)
        })
    }

    /// Records a verified webhook delivery and applies its action in the same transaction.
    /// `None` when the delivery id was seen before (a redelivery): nothing is changed.
    pub fn ingest_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event_type: &str,
        body: &str,
        action: &DeliveryAction,
    ) -> Result<Option<Vec<ApplyOutcome>>> {
        self.write(|tx| {
            let (status, note) = match action {
                DeliveryAction::Ignore(why) => ("ignored", Some(why.as_str())),
                _ => ("processed", None),
            };
            let inserted = tx.execute(
                "INSERT INTO webhook_delivery(provider, delivery_id, event_type, received_at, body, status, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(provider, delivery_id) DO NOTHING",
                params![provider, delivery_id, event_type, ts(&now()), body, status, note],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            let outcomes = match action {
                DeliveryAction::Upsert(inc, items) => vec![apply_in(tx, inc, items)?],
                DeliveryAction::AttachToOpen(items) => {
                    let mut out = Vec::new();
                    for id in open_incident_ids(tx)? {
                        let new_items = add_items_in(tx, id, items)?;
                        out.push(ApplyOutcome { incident_id: id, created: false, updated: false, new_items });
                    }
                    out
                }
                DeliveryAction::Ignore(_) => Vec::new(),
            };
            Ok(Some(outcomes))
        })
    }

    /// Number of recorded webhook deliveries per provider.
    pub fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT provider, COUNT(*) FROM webhook_delivery GROUP BY provider ORDER BY provider",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Changes and alerts stored on an incident, oldest first (input of change correlation).
    pub fn signals(&self, incident_id: i64) -> Result<Vec<StoredSignal>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT key, signal, occurred_at, evidence_id, message FROM external_item
                 WHERE incident_id = ?1 AND signal IN ('change', 'alert') ORDER BY occurred_at, key",
            )?;
            let rows = st
                .query_map([incident_id], |r| {
                    Ok(StoredSignal {
                        key: r.get(0)?,
                        signal: SignalKind::parse(&r.get::<_, String>(1)?),
                        occurred_at: r.get::<_, Ts>(2)?.0,
                        evidence_id: r.get(3)?,
                        message: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Proposes a correlation hypothesis once per `key`; `None` when it was proposed before.
    pub fn add_correlation(
        &self,
        incident_id: i64,
        key: &str,
        statement: &str,
        evidence_ids: &[i64],
    ) -> Result<Option<i64>> {
        self.write(|tx| {
            let t = now();
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO external_item(incident_id, key, signal, occurred_at, message)
                 VALUES (?1, ?2, 'correlation', ?3, ?4)",
                params![incident_id, key, ts(&t), statement],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            tx.as_author("correlation");
            let h = crate::work::insert_hypothesis(
                tx,
                incident_id,
                statement,
                HypothesisStatus::Proposed,
                HypothesisOrigin::Correlation,
                evidence_ids,
                &t,
            )?;
            set_author(tx, Authored::Hypothesis, h.id, "correlation")?;
            tx.execute(
                "UPDATE external_item SET hypothesis_id = ?1 WHERE incident_id = ?2 AND key = ?3",
                params![h.id, incident_id, key],
            )?;
            let id = h.id;
            Ok(Some(id))
        })
    }

    /// Incidents whose window may hold relevant changes: still open, or opened since `since`.
    pub fn incidents_for_changes(&self, since: &Timestamp) -> Result<Vec<Incident>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id FROM incident WHERE status NOT IN ('resolved', 'closed') OR created_at >= ?1
                 ORDER BY id",
            )?;
            let ids = st
                .query_map([ts(since)], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.into_iter().map(|id| get_in(c, id)).collect()
        })
    }

    /// Records the end of a sync: on success the new cursor and item count, on failure the
    /// error (the previous cursor is kept so the next sync retries the same window).
    pub fn record_sync(
        &self,
        name: &str,
        outcome: std::result::Result<(Option<String>, i64), String>,
    ) -> Result<()> {
        self.write(|tx| {
            let t = ts(&now());
            tx.execute(
                "INSERT INTO integration_state(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                [name],
            )?;
            match outcome {
                Ok((cursor, items)) => tx.execute(
                    "UPDATE integration_state SET last_sync_at = ?2, last_success_at = ?2,
                        cursor = COALESCE(?3, cursor), items_synced = items_synced + ?4,
                        last_error = NULL WHERE name = ?1",
                    params![name, t, cursor, items],
                )?,
                Err(e) => {
                    record_error_in(tx, name, &e)?;
                    tx.execute(
                        "UPDATE integration_state SET last_sync_at = ?2, last_error = ?3, last_error_at = ?2
                         WHERE name = ?1",
                        params![name, t, e],
                    )?
                }
            };
            Ok(())
        })
    }

    /// Sync state of every integration that ever synced.
    pub fn integration_states(&self) -> Result<Vec<IntegrationState>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT * FROM integration_state ORDER BY name")?;
            let rows = st
                .query_map([], |r| {
                    Ok(IntegrationState {
                        name: r.get("name")?,
                        last_sync_at: opt_ts(r, "last_sync_at")?,
                        last_success_at: opt_ts(r, "last_success_at")?,
                        cursor: r.get("cursor")?,
                        items_synced: r.get("items_synced")?,
                        last_error: r.get("last_error")?,
                        last_error_at: opt_ts(r, "last_error_at")?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The most recent errors of integration `name`, newest first.
    pub fn integration_errors(&self, name: &str, limit: u32) -> Result<Vec<IntegrationError>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT occurred_at, message FROM integration_error WHERE name = ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![name, limit], |r| {
                    Ok(IntegrationError {
                        at: r.get::<_, Ts>(0)?.0,
                        message: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
