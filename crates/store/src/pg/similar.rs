//! What the similar-incidents ranking reads, merges and redactions on PostgreSQL (as
//! `crate::similar`).

use std::collections::HashMap;
use std::path::PathBuf;

use opslens_domain::{FeedKind, FeedOp, Incident, IncidentStatus, RedactionBox};

use super::evidence::evidence_in;
use super::incidents::set_status;
use super::row::{en, incident_in, t};
use super::PgStore;
use crate::row::{now, ts};
use crate::similar::{blob_vector, vector_blob};
use crate::tx::Fact;
use crate::{CorpusIncident, MergeCounts, Result, ShotEmbedding, ShotPrint, StoreError};

const TEXT_PER_EVIDENCE: i64 = 4000;

fn corpus_row(r: &postgres::Row, stamp: String) -> Result<CorpusIncident> {
    Ok(CorpusIncident {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        status: en(r, "status")?,
        severity: en(r, "severity")?,
        created_at: t(r, "created_at")?,
        stamp,
        evidence_text: Vec::new(),
    })
}

impl PgStore {
    pub(crate) fn similar_heads_pg(&self, always: i64, limit: u32) -> Result<Vec<CorpusIncident>> {
        self.read(|c| {
            c.query(
                "SELECT i.id, i.title, i.description, i.status, i.severity, i.created_at,
                        i.updated_at || '|' || (SELECT COUNT(*)::text || '|' || COALESCE(MAX(e.updated_at), '')
                                                FROM evidence e WHERE e.incident_id = i.id) AS stamp
                 FROM incident i
                 WHERE i.id = $1 OR i.id IN (SELECT id FROM incident WHERE merged_into IS NULL
                                              ORDER BY created_at DESC, id DESC LIMIT $2)",
                &[&always, &i64::from(limit)],
            )?
            .iter()
            .map(|r| corpus_row(r, r.get("stamp")))
            .collect()
        })
    }

    pub(crate) fn similar_texts_pg(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        let ids = ids.to_vec();
        let rows: Vec<(i64, String, String)> = self.read(|c| {
            Ok(c.query(
                &format!(
                    "SELECT incident_id, title, substr(content, 1, {TEXT_PER_EVIDENCE}) FROM evidence
                     WHERE incident_id = ANY($1)"
                ),
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
        })?;
        for (incident, title, content) in rows {
            let texts = out.entry(incident).or_default();
            texts.push(title);
            texts.push(content);
        }
        Ok(out)
    }

    pub(crate) fn open_corpus_pg(&self, always: i64) -> Result<Vec<CorpusIncident>> {
        self.read(|c| {
            c.query(
                "SELECT id, title, description, status, severity, created_at FROM incident
                 WHERE id = $1 OR (merged_into IS NULL AND status NOT IN ('resolved', 'closed'))",
                &[&always],
            )?
            .iter()
            .map(|r| corpus_row(r, String::new()))
            .collect()
        })
    }

    pub(crate) fn shot_prints_pg(&self, always: i64, open_only: bool) -> Result<Vec<ShotPrint>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT e.id, e.incident_id, f.thumb FROM evidence e
                 JOIN image_fingerprint f ON f.sha256 = e.sha256
                 JOIN incident i ON i.id = e.incident_id
                 WHERE e.blob_path IS NOT NULL AND i.merged_into IS NULL
                   AND (NOT $2 OR i.id = $1 OR i.status NOT IN ('resolved', 'closed'))",
                &[&always, &open_only],
            )?
            .iter()
            .map(|r| ShotPrint {
                evidence_id: r.get(0),
                incident_id: r.get(1),
                thumb: r.get(2),
            })
            .collect())
        })
    }

    pub(crate) fn unprinted_images_pg(&self, limit: u32) -> Result<Vec<(String, PathBuf)>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            Ok(c.query(
                "SELECT sha256, MIN(blob_path) FROM evidence
                 WHERE blob_path IS NOT NULL
                   AND sha256 NOT IN (SELECT sha256 FROM image_fingerprint)
                 GROUP BY sha256 LIMIT $1",
                &[&i64::from(limit)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })?;
        rows.into_iter()
            .map(|(sha, name)| Ok((sha, self.blobs.file(&name)?)))
            .collect()
    }

    pub(crate) fn put_embedding_pg(&self, sha256: &str, model: &str, vector: &[f32]) -> Result<()> {
        if vector.is_empty() || !vector.iter().all(|x| x.is_finite()) || model.is_empty() {
            return Err(StoreError::Conflict(format!(
                "an image embedding needs a model id and finite values (got {} values from {model:?})",
                vector.len()
            )));
        }
        self.write(|tx| {
            tx.c.execute(
                "INSERT INTO image_embedding(sha256, model, dim, vector, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256, model) DO NOTHING",
                &[
                    &sha256,
                    &model,
                    &(vector.len() as i64),
                    &vector_blob(vector),
                    &ts(&now()),
                ],
            )?;
            Ok(())
        })
    }

    pub(crate) fn shot_embeddings_pg(
        &self,
        always: i64,
        open_only: bool,
    ) -> Result<Vec<ShotEmbedding>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT e.id, e.incident_id, m.model, m.vector FROM evidence e
                 JOIN image_embedding m ON m.sha256 = e.sha256
                 JOIN incident i ON i.id = e.incident_id
                 WHERE e.blob_path IS NOT NULL AND i.merged_into IS NULL
                   AND (NOT $2 OR i.id = $1 OR i.status NOT IN ('resolved', 'closed'))
                   AND m.model IN (SELECT m2.model FROM evidence e2
                                   JOIN image_embedding m2 ON m2.sha256 = e2.sha256
                                   WHERE e2.incident_id = $1 AND e2.blob_path IS NOT NULL)",
                &[&always, &open_only],
            )?
            .iter()
            .map(|r| ShotEmbedding {
                evidence_id: r.get(0),
                incident_id: r.get(1),
                model: r.get(2),
                vector: blob_vector(r.get::<_, &[u8]>(3)),
            })
            .collect())
        })
    }

    pub(crate) fn unembedded_shots_pg(
        &self,
        id: i64,
        model: &str,
    ) -> Result<Vec<(i64, String, PathBuf)>> {
        let rows: Vec<(i64, String, String)> = self.read(|c| {
            Ok(c.query(
                "SELECT e.id, e.sha256, e.blob_path FROM evidence e
                 WHERE e.incident_id = $1 AND e.blob_path IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM image_embedding m
                                   WHERE m.sha256 = e.sha256 AND m.model = $2)
                 ORDER BY e.id",
                &[&id, &model],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
        })?;
        rows.into_iter()
            .map(|(id, sha, name)| Ok((id, sha, self.blobs.file(&name)?)))
            .collect()
    }

    pub(crate) fn put_fingerprint_pg(&self, sha256: &str, thumb: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.c.execute(
                "INSERT INTO image_fingerprint(sha256, thumb, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (sha256) DO NOTHING",
                &[&sha256, &thumb, &ts(&now())],
            )?;
            Ok(())
        })
    }

    pub(crate) fn postmortem_and_actions_pg(&self, id: i64) -> Result<(bool, Vec<String>)> {
        self.read(|c| {
            let has: bool = c
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM postmortem WHERE incident_id = $1)",
                    &[&id],
                )?
                .get(0);
            let titles = c
                .query(
                    "SELECT title FROM action_item WHERE incident_id = $1 ORDER BY id",
                    &[&id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok((has, titles))
        })
    }

    pub(crate) fn merge_incident_pg(
        &self,
        from: i64,
        into: i64,
    ) -> Result<(MergeCounts, Incident)> {
        self.write(|tx| {
            let source = incident_in(&mut tx.c, from)?;
            let target = incident_in(&mut tx.c, into)?;
            if from == into {
                return Err(StoreError::Conflict(format!(
                    "incident {from} cannot be merged into itself"
                )));
            }
            if let Some(m) = source.merged_into {
                return Err(StoreError::Conflict(format!(
                    "incident {from} was already merged into incident {m}"
                )));
            }
            if let Some(m) = target.merged_into {
                return Err(StoreError::Conflict(format!(
                    "incident {into} was merged into incident {m}; merge into {m} instead"
                )));
            }
            if target.status.is_finished() {
                return Err(StoreError::Conflict(format!(
                    "incident {into} is {}; merge only into an open incident (reopen it first)",
                    target.status
                )));
            }
            let mut moved = |table: &str| -> Result<i64> {
                Ok(tx.c.execute(
                    &format!("UPDATE {table} SET incident_id = $1 WHERE incident_id = $2"),
                    &[&into, &from],
                )? as i64)
            };
            let counts = MergeCounts {
                evidence: moved("evidence")?,
                timeline: moved("timeline_event")?,
                hypotheses: moved("hypothesis")?,
                actions: moved("action_item")?,
            };
            moved("status_update")?;
            // A signal both incidents already carry stays with the merged one.
            tx.c.execute(
                "UPDATE external_item e SET incident_id = $1 WHERE incident_id = $2
                   AND NOT EXISTS (SELECT 1 FROM external_item x WHERE x.incident_id = $1 AND x.key = e.key)",
                &[&into, &from],
            )?;
            let now_t = now();
            if !source.status.is_finished() {
                set_status(tx, from, IncidentStatus::Closed, &now_t)?;
            }
            tx.c.execute(
                "UPDATE incident SET merged_into = $1, updated_at = $2 WHERE id = $3",
                &[&into, &ts(&now_t), &from],
            )?;
            tx.c.execute(
                "UPDATE incident SET updated_at = $1 WHERE id = $2",
                &[&ts(&now_t), &into],
            )?;
            let source = incident_in(&mut tx.c, from)?;
            let target = incident_in(&mut tx.c, into)?;
            for kind in [
                FeedKind::Evidence,
                FeedKind::Timeline,
                FeedKind::Hypothesis,
                FeedKind::Action,
            ] {
                tx.touched(kind, FeedOp::Updated, into, into);
                tx.touched(kind, FeedOp::Deleted, from, from);
            }
            tx.touched(FeedKind::Incident, FeedOp::Updated, from, from);
            tx.touched(FeedKind::Incident, FeedOp::Updated, into, into);
            let moved = [
                counts.evidence,
                counts.timeline,
                counts.hypotheses,
                counts.actions,
            ];
            tx.record(
                &now_t,
                Fact::IncidentMerged {
                    from: source,
                    into: target.clone(),
                    on_target: false,
                    moved,
                },
            )?;
            let from_now = incident_in(&mut tx.c, from)?;
            tx.record(
                &now_t,
                Fact::IncidentMerged {
                    from: from_now,
                    into: target,
                    on_target: true,
                    moved,
                },
            )?;
            Ok((counts, incident_in(&mut tx.c, into)?))
        })
    }

    pub(crate) fn set_redaction_pg(
        &self,
        id: i64,
        png: &[u8],
        boxes: &[RedactionBox],
    ) -> Result<opslens_domain::Evidence> {
        let _blobs = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let sha = crate::blobs::sha256_hex(png);
        let name = self.blobs.put(&sha, "png", png)?;
        let boxes = serde_json::to_string(boxes).expect("boxes serialize");
        let written = self.write(|tx| {
            let old: Option<Option<String>> =
                tx.c.query_opt(
                    "SELECT redacted_blob FROM evidence WHERE id = $1 AND blob_path IS NOT NULL",
                    &[&id],
                )?
                .map(|r| r.get(0));
            let Some(old) = old else {
                return Err(StoreError::NotFound {
                    what: "screenshot evidence",
                    id,
                });
            };
            tx.c.execute(
                "UPDATE evidence SET redacted_blob = $1, redacted_sha256 = $2,
                     redaction_boxes = $3, redacted_at = $4, updated_at = $4
                 WHERE id = $5",
                &[&name, &sha, &boxes, &ts(&now()), &id],
            )?;
            tx.evidence_updated(id)?;
            Ok((old, evidence_in(&mut tx.c, id)?))
        });
        match written {
            Ok((old, ev)) => {
                if let Some(old) = old.filter(|o| *o != name) {
                    self.remove_unreferenced(&[old])?;
                }
                Ok(ev)
            }
            Err(e) => {
                let _ = self.remove_unreferenced(std::slice::from_ref(&name));
                Err(e)
            }
        }
    }

    pub(crate) fn redacted_image_pg(&self, id: i64) -> Result<Option<PathBuf>> {
        let blob: Option<Option<String>> = self.read(|c| {
            Ok(
                c.query_opt("SELECT redacted_blob FROM evidence WHERE id = $1", &[&id])?
                    .map(|r| r.get(0)),
            )
        })?;
        match blob {
            None => Err(StoreError::NotFound {
                what: "evidence",
                id,
            }),
            Some(b) => b.map(|b| self.blobs.file(&b)).transpose(),
        }
    }
}
