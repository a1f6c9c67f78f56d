//! Data from other systems on PostgreSQL (as `crate::integrations`): synced incidents and
//! their items, webhook deliveries (exactly once per delivery id, also across replicas),
//! correlation hypotheses, and per-integration sync state.

use opslens_domain::{
    ApplyOutcome, ExternalIncident, ExternalItem, FeedKind, FeedOp, HypothesisOrigin,
    HypothesisStatus, Incident, IntegrationError, IntegrationState, OccurredAtSource, SignalKind,
    StoredSignal, TimelineKind, Timestamp,
};
use postgres::GenericClient;

use super::incidents::{insert, set_status};
use super::outbox::record_error_in;
use super::row::{ensure_incident, incident_in, ot, t};
use super::{PgStore, PgTx};
use crate::blobs::sha256_hex;
use crate::row::{now, ts};
use crate::tx::Fact;
use crate::{At, DeliveryAction, NewIncidentRow, Result};

/// Creates or updates the incident of `inc`; returns (id, created, updated).
fn upsert_in(tx: &mut PgTx<'_, '_>, inc: &ExternalIncident) -> Result<(i64, bool, bool)> {
    let existing: Option<(i64, String)> =
        tx.c.query_opt(
            "SELECT id, title FROM incident WHERE source = $1 AND external_id = $2",
            &[&inc.source.as_str(), &inc.external_id],
        )?
        .map(|r| (r.get(0), r.get(1)));
    let now_t = now();
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
        return Ok((insert(tx, &row, &now_t)?.id, true, false));
    };
    let old = incident_in(&mut tx.c, id)?;
    let status = (old.status != inc.status).then_some((old.status, inc.status));
    if status.is_some() {
        set_status(tx, id, inc.status, &now_t)?;
    }
    let retitled = !inc.title.is_empty() && title != inc.title;
    if retitled {
        tx.c.execute(
            "UPDATE incident SET title = $1 WHERE id = $2",
            &[&inc.title, &id],
        )?;
    }
    if status.is_none() && !retitled {
        return Ok((id, false, false));
    }
    tx.c.execute(
        "UPDATE incident SET updated_at = $1 WHERE id = $2",
        &[&ts(&now_t), &id],
    )?;
    tx.touched(FeedKind::Incident, FeedOp::Updated, id, id);
    let incident = incident_in(&mut tx.c, id)?;
    tx.record(
        &now_t,
        Fact::IncidentChanged {
            incident,
            title: retitled.then(|| (title, inc.title.clone())),
            severity: None,
            status,
            via: Some(inc.source),
        },
    )?;
    Ok((id, false, true))
}

/// Replaces a stored item by a newer version of it (as `crate::integrations::replace_in`);
/// returns whether anything changed.
fn replace_in(tx: &mut PgTx<'_, '_>, incident_id: i64, item: &ExternalItem) -> Result<bool> {
    let Some(version) = item.version.as_deref() else {
        return Ok(false);
    };
    let r = tx.c.query_one(
        "SELECT version, message, evidence_id FROM external_item WHERE incident_id = $1 AND key = $2",
        &[&incident_id, &item.key],
    )?;
    let (old_version, old_message, evidence_id): (Option<String>, String, Option<i64>) =
        (r.get(0), r.get(1), r.get(2));
    if old_version.as_deref().is_some_and(|old| old >= version) {
        return Ok(false);
    }
    tx.c.execute(
        "UPDATE external_item SET version = $3, signal = $4, occurred_at = $5, message = $6
         WHERE incident_id = $1 AND key = $2",
        &[
            &incident_id,
            &item.key,
            &version,
            &item.signal.as_str(),
            &ts(&item.occurred_at),
            &item.message,
        ],
    )?;
    if let (Some(id), Some(e)) = (evidence_id, &item.evidence) {
        tx.c.execute(
            "UPDATE evidence SET title = $2, content = $3, source = $4, sha256 = $5, updated_at = $6
             WHERE id = $1",
            &[
                &id,
                &e.title,
                &e.content,
                &e.source,
                &sha256_hex(e.content.as_bytes()),
                &ts(&now()),
            ],
        )?;
        tx.touched(FeedKind::Evidence, FeedOp::Updated, incident_id, id);
    }
    if old_message != item.message {
        add_item_event(tx, incident_id, item, evidence_id)?;
    }
    Ok(true)
}

/// The timeline entry of an external item, by the integration it came from: "evidence added"
/// when it brought evidence, else an observation.
fn add_item_event(
    tx: &mut PgTx<'_, '_>,
    incident_id: i64,
    item: &ExternalItem,
    evidence_id: Option<i64>,
) -> Result<i64> {
    let kind = if evidence_id.is_some() {
        TimelineKind::EvidenceAdded
    } else {
        TimelineKind::Observation
    };
    let at = At {
        time: item.occurred_at,
        source: OccurredAtSource::Derived,
    };
    let before = tx.author.replace(item_author(item).to_string());
    let id = tx.add_event_at(incident_id, kind, &item.message, at, evidence_id);
    tx.author = before;
    id
}

/// The integration an item came from, as the author of what it brings (`github`, `pagerduty`).
fn item_author(item: &ExternalItem) -> &str {
    item.key.split(':').next().unwrap_or("integration")
}

/// Adds the items not yet on the incident and replaces stored ones by newer versions; returns
/// how many were added or replaced.
fn add_items_in(tx: &mut PgTx<'_, '_>, incident_id: i64, items: &[ExternalItem]) -> Result<usize> {
    let mut added = 0;
    for item in items {
        let inserted = tx.c.execute(
            "INSERT INTO external_item(incident_id, key, signal, occurred_at, message, version)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &incident_id,
                &item.key,
                &item.signal.as_str(),
                &ts(&item.occurred_at),
                &item.message,
                &item.version,
            ],
        )?;
        if inserted == 0 {
            if replace_in(tx, incident_id, item)? {
                added += 1;
            }
            continue;
        }
        added += 1;
        let evidence_id = match &item.evidence {
            Some(e) => {
                // The integration's event time is when it happened (the deploy, the alert).
                let id: i64 = tx
                    .c
                    .query_one(
                        "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256,
                                              occurred_at, occurred_at_source, created_at, updated_at, author)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'derived', $8, $8, $9) RETURNING id",
                        &[
                            &incident_id,
                            &e.evidence_type.as_str(),
                            &e.title,
                            &e.content,
                            &e.source,
                            &sha256_hex(e.content.as_bytes()),
                            &ts(&item.occurred_at),
                            &ts(&now()),
                            &item_author(item),
                        ],
                    )?
                    .get(0);
                tx.touched(FeedKind::Evidence, FeedOp::Created, incident_id, id);
                tx.c.execute(
                    "UPDATE external_item SET evidence_id = $1 WHERE incident_id = $2 AND key = $3",
                    &[&id, &incident_id, &item.key],
                )?;
                Some(id)
            }
            None => None,
        };
        add_item_event(tx, incident_id, item, evidence_id)?;
    }
    if added > 0 {
        tx.c.execute(
            "UPDATE incident SET updated_at = $1 WHERE id = $2",
            &[&ts(&now()), &incident_id],
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
    tx: &mut PgTx<'_, '_>,
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

fn open_incident_ids(c: &mut impl GenericClient) -> Result<Vec<i64>> {
    Ok(c.query(
        "SELECT id FROM incident WHERE status NOT IN ('resolved', 'closed') ORDER BY id",
        &[],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

impl PgStore {
    pub(crate) fn apply_external_pg(
        &self,
        inc: &ExternalIncident,
        items: &[ExternalItem],
    ) -> Result<ApplyOutcome> {
        self.write(|tx| apply_in(tx, inc, items))
    }

    pub(crate) fn attach_external_pg(
        &self,
        incident_id: i64,
        items: &[ExternalItem],
    ) -> Result<usize> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            add_items_in(tx, incident_id, items)
        })
    }

    /// Records the delivery and applies its action in one transaction. The unique
    /// `(provider, delivery_id)` decides a redelivery, whichever replica it reaches: the
    /// write lock serialises the two, and the second one's insert returns no row.
    pub(crate) fn ingest_delivery_pg(
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
            let inserted = tx.c.query_opt(
                "INSERT INTO webhook_delivery(provider, delivery_id, event_type, received_at, body, status, note)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (provider, delivery_id) DO NOTHING RETURNING id",
                &[&provider, &delivery_id, &event_type, &ts(&now()), &body, &status, &note],
            )?;
            if inserted.is_none() {
                return Ok(None);
            }
            let outcomes = match action {
                DeliveryAction::Upsert(inc, items) => vec![apply_in(tx, inc, items)?],
                DeliveryAction::AttachToOpen(items) => {
                    let mut out = Vec::new();
                    for id in open_incident_ids(&mut tx.c)? {
                        let new_items = add_items_in(tx, id, items)?;
                        out.push(ApplyOutcome {
                            incident_id: id,
                            created: false,
                            updated: false,
                            new_items,
                        });
                    }
                    out
                }
                DeliveryAction::Ignore(_) => Vec::new(),
            };
            Ok(Some(outcomes))
        })
    }

    pub(crate) fn delivery_counts_pg(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT provider, COUNT(*) FROM webhook_delivery GROUP BY provider ORDER BY provider",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    pub(crate) fn signals_pg(&self, incident_id: i64) -> Result<Vec<StoredSignal>> {
        self.read(|c| {
            c.query(
                "SELECT key, signal, occurred_at, evidence_id, message FROM external_item
                 WHERE incident_id = $1 AND signal IN ('change', 'alert') ORDER BY occurred_at, key",
                &[&incident_id],
            )?
            .iter()
            .map(|r| {
                Ok(StoredSignal {
                    key: r.try_get("key")?,
                    signal: SignalKind::parse(&r.try_get::<_, String>("signal")?),
                    occurred_at: t(r, "occurred_at")?,
                    evidence_id: r.try_get("evidence_id")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
        })
    }

    pub(crate) fn add_correlation_pg(
        &self,
        incident_id: i64,
        key: &str,
        statement: &str,
        evidence_ids: &[i64],
    ) -> Result<Option<i64>> {
        self.write(|tx| {
            let at = now();
            let inserted = tx.c.execute(
                "INSERT INTO external_item(incident_id, key, signal, occurred_at, message)
                 VALUES ($1, $2, 'correlation', $3, $4) ON CONFLICT DO NOTHING",
                &[&incident_id, &key, &ts(&at), &statement],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            tx.as_author("correlation");
            let h = super::work::insert_hypothesis(
                tx,
                incident_id,
                statement,
                HypothesisStatus::Proposed,
                HypothesisOrigin::Correlation,
                evidence_ids,
                &at,
            )?;
            tx.c.execute(
                "UPDATE external_item SET hypothesis_id = $1 WHERE incident_id = $2 AND key = $3",
                &[&h.id, &incident_id, &key],
            )?;
            Ok(Some(h.id))
        })
    }

    pub(crate) fn incidents_for_changes_pg(&self, since: &Timestamp) -> Result<Vec<Incident>> {
        self.read(|c| {
            let ids: Vec<i64> = c
                .query(
                    "SELECT id FROM incident WHERE status NOT IN ('resolved', 'closed') OR created_at >= $1
                     ORDER BY id",
                    &[&ts(since)],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids.into_iter().map(|id| incident_in(c, id)).collect()
        })
    }

    pub(crate) fn record_sync_pg(
        &self,
        name: &str,
        outcome: std::result::Result<(Option<String>, i64), String>,
    ) -> Result<()> {
        self.write(|tx| {
            let at = ts(&now());
            tx.c.execute(
                "INSERT INTO integration_state(name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                &[&name],
            )?;
            match outcome {
                Ok((cursor, items)) => tx.c.execute(
                    "UPDATE integration_state SET last_sync_at = $2, last_success_at = $2,
                        cursor = COALESCE($3, cursor), items_synced = items_synced + $4,
                        last_error = NULL WHERE name = $1",
                    &[&name, &at, &cursor, &items],
                )?,
                Err(e) => {
                    record_error_in(tx, name, &e)?;
                    tx.c.execute(
                        "UPDATE integration_state SET last_sync_at = $2, last_error = $3, last_error_at = $2
                         WHERE name = $1",
                        &[&name, &at, &e],
                    )?
                }
            };
            Ok(())
        })
    }

    pub(crate) fn integration_states_pg(&self) -> Result<Vec<IntegrationState>> {
        self.read(|c| {
            c.query("SELECT * FROM integration_state ORDER BY name", &[])?
                .iter()
                .map(|r| {
                    Ok(IntegrationState {
                        name: r.try_get("name")?,
                        last_sync_at: ot(r, "last_sync_at")?,
                        last_success_at: ot(r, "last_success_at")?,
                        cursor: r.try_get("cursor")?,
                        items_synced: r.try_get("items_synced")?,
                        last_error: r.try_get("last_error")?,
                        last_error_at: ot(r, "last_error_at")?,
                    })
                })
                .collect()
        })
    }

    pub(crate) fn integration_errors_pg(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<IntegrationError>> {
        self.read(|c| {
            c.query(
                "SELECT occurred_at, message FROM integration_error WHERE name = $1
                 ORDER BY id DESC LIMIT $2",
                &[&name, &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(IntegrationError {
                    at: t(r, "occurred_at")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
        })
    }
}
