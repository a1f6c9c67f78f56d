//! Data from other systems: synced incidents and their items, webhook deliveries (exactly once
//! per delivery id), correlation hypotheses, and per-integration sync state.

use opslens_domain::{
    ApplyOutcome, ExternalIncident, ExternalItem, FeedKind, FeedOp, HypothesisOrigin,
    HypothesisStatus, Incident, IncidentStatus, IntegrationError, IntegrationState, SignalKind,
    StoredSignal, TimelineKind, Timestamp,
};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::blobs::sha256_hex;
use crate::feed::touched;
use crate::incidents::{add_event, ensure_exists, get_in};
use crate::notify::{from_to, Change, ChangeKind};
use crate::people::{set_author, Authored};
use crate::row::{now, opt_ts, ts, Ts};
use crate::{Result, Store};

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

/// Creates or updates the incident of `inc`; returns (id, created, updated). An incident
/// brought in open, and a status or title change, are announced like the same change made
/// by hand; one brought in already resolved (history from a first sync) is not.
fn upsert_in(
    store: &Store,
    tx: &Transaction<'_>,
    inc: &ExternalIncident,
) -> Result<(i64, bool, bool)> {
    let existing: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT id, status, title FROM incident WHERE source = ?1 AND external_id = ?2",
            params![inc.source.as_str(), inc.external_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let t = now();
    match existing {
        None => {
            let acked = (inc.status != IncidentStatus::Triggered).then(|| ts(&t));
            let resolved = inc.status.is_finished().then(|| ts(&t));
            let mitigated = inc.status.is_mitigated().then(|| ts(&t));
            tx.execute(
                "INSERT INTO incident(title, description, severity, status, source, external_id,
                                      created_at, updated_at, acknowledged_at, resolved_at, mitigated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
                params![
                    if inc.title.is_empty() {
                        &inc.external_id
                    } else {
                        &inc.title
                    },
                    inc.description,
                    inc.severity.as_str(),
                    inc.status.as_str(),
                    inc.source.as_str(),
                    inc.external_id,
                    ts(&t),
                    acked,
                    resolved,
                    mitigated
                ],
            )?;
            let id = tx.last_insert_rowid();
            touched(FeedKind::Incident, FeedOp::Created, id, id);
            let msg = format!(
                "Incident opened from {} {} ({}, {})",
                inc.source, inc.external_id, inc.severity, inc.status
            );
            let ev = add_event(tx, id, TimelineKind::IncidentCreated, &msg, &t, None)?;
            set_author(tx, Authored::Timeline, ev, inc.source.as_str())?;
            if !inc.status.is_finished() {
                store.announce(
                    tx,
                    Change {
                        kind: ChangeKind::IncidentCreated,
                        incident: get_in(tx, id)?,
                        text: msg,
                        data: Default::default(),
                    },
                )?;
            }
            Ok((id, true, false))
        }
        Some((id, status, title)) => {
            let mut updated = false;
            let mut lines = Vec::new();
            let mut changes = serde_json::Map::new();
            if status != inc.status.as_str() {
                tx.execute(
                    "UPDATE incident SET status = ?1,
                        acknowledged_at = COALESCE(acknowledged_at, ?2),
                        resolved_at = CASE WHEN ?3 THEN COALESCE(resolved_at, ?2) ELSE NULL END,
                        mitigated_at = CASE WHEN ?5 THEN COALESCE(mitigated_at, ?2) ELSE NULL END
                     WHERE id = ?4",
                    params![
                        inc.status.as_str(),
                        ts(&t),
                        inc.status.is_finished(),
                        id,
                        inc.status.is_mitigated()
                    ],
                )?;
                let msg = format!(
                    "Status changed from {status} to {} ({})",
                    inc.status, inc.source
                );
                let ev = add_event(tx, id, TimelineKind::StatusChanged, &msg, &t, None)?;
                set_author(tx, Authored::Timeline, ev, inc.source.as_str())?;
                lines.push(format!(
                    "Status: {status} → {} ({})",
                    inc.status, inc.source
                ));
                changes.insert("status".into(), from_to(&status, inc.status));
                updated = true;
            }
            if !inc.title.is_empty() && title != inc.title {
                tx.execute(
                    "UPDATE incident SET title = ?1 WHERE id = ?2",
                    params![inc.title, id],
                )?;
                lines.push(format!("Title: {title} → {}", inc.title));
                changes.insert("title".into(), from_to(&title, &inc.title));
                updated = true;
            }
            if updated {
                tx.execute(
                    "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
                    params![ts(&t), id],
                )?;
                touched(FeedKind::Incident, FeedOp::Updated, id, id);
                let mut data = serde_json::Map::new();
                data.insert("changes".into(), changes.into());
                store.announce(
                    tx,
                    Change {
                        kind: ChangeKind::IncidentUpdated,
                        incident: get_in(tx, id)?,
                        text: lines.join("\n"),
                        data,
                    },
                )?;
            }
            Ok((id, false, updated))
        }
    }
}

/// Replaces a stored item by a newer version of it (a deployment that gained a status, or the
/// sync's full copy of what a webhook brought): its time, message and evidence change in place,
/// so one deployment stays one piece of evidence. A changed message goes on the timeline.
/// Returns whether anything changed.
fn replace_in(tx: &Transaction<'_>, incident_id: i64, item: &ExternalItem) -> Result<bool> {
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
        touched(FeedKind::Evidence, FeedOp::Updated, incident_id, id);
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
    tx: &Transaction<'_>,
    incident_id: i64,
    item: &ExternalItem,
    evidence_id: Option<i64>,
) -> Result<i64> {
    let kind = if evidence_id.is_some() {
        TimelineKind::EvidenceAdded
    } else {
        TimelineKind::Observation
    };
    let at = crate::event_time::At {
        time: item.occurred_at,
        source: opslens_domain::OccurredAtSource::Derived,
    };
    let id =
        crate::event_time::add_event_at(tx, incident_id, kind, &item.message, at, evidence_id)?;
    set_author(tx, Authored::Timeline, id, item_author(item))?;
    Ok(id)
}

/// The integration an item came from, as the author of what it brings (`github`, `pagerduty`).
fn item_author(item: &ExternalItem) -> &str {
    item.key.split(':').next().unwrap_or("integration")
}

fn add_items_in(tx: &Transaction<'_>, incident_id: i64, items: &[ExternalItem]) -> Result<usize> {
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
                touched(FeedKind::Evidence, FeedOp::Created, incident_id, id);
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
        touched(
            FeedKind::Incident,
            FeedOp::Updated,
            incident_id,
            incident_id,
        );
    }
    Ok(added)
}

fn apply_in(
    store: &Store,
    tx: &Transaction<'_>,
    inc: &ExternalIncident,
    items: &[ExternalItem],
) -> Result<ApplyOutcome> {
    let (incident_id, created, updated) = upsert_in(store, tx, inc)?;
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
pub(crate) fn record_error_in(tx: &Transaction<'_>, name: &str, message: &str) -> Result<()> {
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

impl Store {
    /// Creates or updates an incident from another system and adds its new items, in one
    /// transaction; a second call with the same data changes nothing.
    pub fn apply_external(
        &self,
        inc: &ExternalIncident,
        items: &[ExternalItem],
    ) -> Result<ApplyOutcome> {
        self.write(|tx| apply_in(self, tx, inc, items))
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
                DeliveryAction::Upsert(inc, items) => vec![apply_in(self, tx, inc, items)?],
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
            tx.execute(
                "INSERT INTO hypothesis(incident_id, statement, status, origin, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![incident_id, statement, HypothesisStatus::Proposed.as_str(),
                        HypothesisOrigin::Correlation.as_str(), ts(&t)],
            )?;
            let id = tx.last_insert_rowid();
            touched(FeedKind::Hypothesis, FeedOp::Created, incident_id, id);
            set_author(tx, Authored::Hypothesis, id, "correlation")?;
            for e in evidence_ids {
                tx.execute(
                    "INSERT OR IGNORE INTO hypothesis_evidence(hypothesis_id, evidence_id) VALUES (?1, ?2)",
                    params![id, e],
                )?;
            }
            tx.execute(
                "UPDATE external_item SET hypothesis_id = ?1 WHERE incident_id = ?2 AND key = ?3",
                params![id, incident_id, key],
            )?;
            let msg = format!("Hypothesis proposed (correlation): {statement}");
            let ev = add_event(tx, incident_id, TimelineKind::HypothesisAdded, &msg, &t, None)?;
            set_author(tx, Authored::Timeline, ev, "correlation")?;
            let h = crate::work::hypothesis_in(tx, id)?;
            let data = crate::work::subject("hypothesis", &h, None);
            self.announce(
                tx,
                Change {
                    kind: ChangeKind::HypothesisCreated,
                    incident: get_in(tx, incident_id)?,
                    text: msg,
                    data,
                },
            )?;
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
