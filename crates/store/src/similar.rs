//! What the similar-incidents ranking reads (incident text, screenshot fingerprints), the
//! merge of one incident into another, and redacted copies of screenshots.
//!
//! The ranking itself (tokens, tf-idf, blending) is in the core; the store only hands over
//! bounded sets of rows and writes the results in single transactions.

use std::collections::HashMap;
use std::path::PathBuf;

use opslens_domain::{
    FeedKind, FeedOp, Incident, IncidentStatus, RedactionBox, Severity, Timestamp,
};
use rusqlite::{params, OptionalExtension};

use crate::incidents::set_status;
use crate::row::{get_in, now, ts, En, Ts};
use crate::tx::Fact;
use crate::{Result, SqliteStore, StoreError};

/// Longest part of one evidence text the ranking reads: the start of a log says what it is
/// about; megabytes of it would only slow the ranking down.
const TEXT_PER_EVIDENCE: i64 = 4000;

/// One incident as the similarity ranking sees it.
#[derive(Debug, Clone)]
pub struct CorpusIncident {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: IncidentStatus,
    /// Severity.
    pub severity: Severity,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Changes whenever the incident or its evidence does (empty where not read).
    pub stamp: String,
    /// Titles and (the start of) the text of its evidence, screenshots' analyses included.
    pub evidence_text: Vec<String>,
}

/// A screenshot's fingerprint, with whose it is.
#[derive(Debug, Clone)]
pub struct ShotPrint {
    /// The screenshot evidence.
    pub evidence_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// The fingerprint (a small grey thumbnail, see the core's `similar`).
    pub thumb: Vec<u8>,
}

/// A screenshot's vision-model embedding, with whose it is.
#[derive(Debug, Clone)]
pub struct ShotEmbedding {
    /// The screenshot evidence.
    pub evidence_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// The model id the vector came from: only vectors of one model are compared.
    pub model: String,
    /// The mean-pooled vision-tower output.
    pub vector: Vec<f32>,
}

/// A vector as stored: little-endian f32s.
pub(crate) fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn blob_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// What a merge moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Evidence rows.
    pub evidence: i64,
    /// Timeline entries (before the two merge entries).
    pub timeline: i64,
    /// Hypotheses.
    pub hypotheses: i64,
    /// Action items.
    pub actions: i64,
}

impl SqliteStore {
    /// Incidents the ranking compares against: the `limit` newest that were not merged away
    /// (plus `always`, the one asked about), without their evidence text but with a `stamp`
    /// that changes whenever the incident or any of its evidence does (so the ranking can keep
    /// what it computed from the text until then).
    pub fn similar_heads(&self, always: i64, limit: u32) -> Result<Vec<CorpusIncident>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT i.id, i.title, i.description, i.status, i.severity, i.created_at,
                        i.updated_at || '|' || (SELECT COUNT(*) || '|' || COALESCE(MAX(e.updated_at), '')
                                                FROM evidence e WHERE e.incident_id = i.id)
                 FROM incident i
                 WHERE i.id = ?1 OR i.id IN (SELECT id FROM incident WHERE merged_into IS NULL
                                              ORDER BY created_at DESC, id DESC LIMIT ?2)",
            )?;
            let out = st
                .query_map(params![always, limit], |r| {
                    Ok(CorpusIncident {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        description: r.get(2)?,
                        status: r.get::<_, En<IncidentStatus>>(3)?.0,
                        severity: r.get::<_, En<Severity>>(4)?.0,
                        created_at: r.get::<_, Ts>(5)?.0,
                        stamp: r.get(6)?,
                        evidence_text: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(out)
        })
    }

    /// Titles and (the start of) the text of the evidence of each of `ids`.
    pub fn similar_texts(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(500) {
            self.read(|c| {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut st = c.prepare(&format!(
                    "SELECT incident_id, title, substr(content, 1, {TEXT_PER_EVIDENCE}) FROM evidence
                     WHERE incident_id IN ({marks})"
                ))?;
                let rows = st.query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                for row in rows {
                    let (incident, title, content) = row?;
                    let texts = out.entry(incident).or_default();
                    texts.push(title);
                    texts.push(content);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Open incidents not merged away (plus `always`), without their evidence text: what
    /// the duplicate check compares, cheap enough for every read of an incident.
    pub fn open_corpus(&self, always: i64) -> Result<Vec<CorpusIncident>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, title, description, status, severity, created_at FROM incident
                 WHERE id = ?1 OR (merged_into IS NULL AND status NOT IN ('resolved', 'closed'))",
            )?;
            let out = st
                .query_map([always], |r| {
                    Ok(CorpusIncident {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        description: r.get(2)?,
                        status: r.get::<_, En<IncidentStatus>>(3)?.0,
                        severity: r.get::<_, En<Severity>>(4)?.0,
                        created_at: r.get::<_, Ts>(5)?.0,
                        stamp: String::new(),
                        evidence_text: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(out)
        })
    }

    /// Fingerprints of every screenshot that has one, of incidents not merged away (only of
    /// open ones, plus `always`, with `open_only`).
    pub fn shot_prints(&self, always: i64, open_only: bool) -> Result<Vec<ShotPrint>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT e.id, e.incident_id, f.thumb FROM evidence e
                 JOIN image_fingerprint f ON f.sha256 = e.sha256
                 JOIN incident i ON i.id = e.incident_id
                 WHERE e.blob_path IS NOT NULL AND i.merged_into IS NULL
                   AND (?2 = 0 OR i.id = ?1 OR i.status NOT IN ('resolved', 'closed'))",
            )?;
            let rows = st
                .query_map(params![always, open_only], |r| {
                    Ok(ShotPrint {
                        evidence_id: r.get(0)?,
                        incident_id: r.get(1)?,
                        thumb: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Stored images without a fingerprint yet (stored before fingerprints existed, or whose
    /// fingerprint write was lost): content hash and file path, at most `limit`.
    pub fn unprinted_images(&self, limit: u32) -> Result<Vec<(String, PathBuf)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT sha256, MIN(blob_path) FROM evidence
                 WHERE blob_path IS NOT NULL
                   AND sha256 NOT IN (SELECT sha256 FROM image_fingerprint)
                 GROUP BY sha256 LIMIT ?1",
            )?;
            let rows = st
                .query_map([limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?
        .into_iter()
        .map(|(sha, name)| Ok((sha, self.blob_file(&name)?)))
        .collect()
    }

    /// Stores the fingerprint of the image whose content hash is `sha256` (once: the same
    /// bytes always give the same fingerprint).
    pub fn put_fingerprint(&self, sha256: &str, thumb: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO image_fingerprint(sha256, thumb, created_at)
                 VALUES (?1, ?2, ?3)",
                params![sha256, thumb, ts(&now())],
            )?;
            Ok(())
        })
    }

    /// Stores the embedding of the image whose content hash is `sha256` made by `model`
    /// (once per blob and model: the same bytes through the same weights give the same
    /// vector). An empty or non-finite vector is refused: it would compare as noise.
    pub fn put_embedding(&self, sha256: &str, model: &str, vector: &[f32]) -> Result<()> {
        if vector.is_empty() || !vector.iter().all(|x| x.is_finite()) || model.is_empty() {
            return Err(StoreError::Conflict(format!(
                "an image embedding needs a model id and finite values (got {} values from {model:?})",
                vector.len()
            )));
        }
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO image_embedding(sha256, model, dim, vector, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    sha256,
                    model,
                    vector.len() as i64,
                    vector_blob(vector),
                    ts(&now())
                ],
            )?;
            Ok(())
        })
    }

    /// Embeddings of the screenshots of incidents not merged away (only of open ones, plus
    /// `always`, with `open_only`) made by a model that also embedded a screenshot of
    /// `always`: nothing at all (one indexed look-up) when `always` has no vector, so the
    /// vectors (kilobytes each) are read only when there is something to compare them with.
    pub fn shot_embeddings(&self, always: i64, open_only: bool) -> Result<Vec<ShotEmbedding>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT e.id, e.incident_id, m.model, m.vector FROM evidence e
                 JOIN image_embedding m ON m.sha256 = e.sha256
                 JOIN incident i ON i.id = e.incident_id
                 WHERE e.blob_path IS NOT NULL AND i.merged_into IS NULL
                   AND (?2 = 0 OR i.id = ?1 OR i.status NOT IN ('resolved', 'closed'))
                   AND m.model IN (SELECT m2.model FROM evidence e2
                                   JOIN image_embedding m2 ON m2.sha256 = e2.sha256
                                   WHERE e2.incident_id = ?1 AND e2.blob_path IS NOT NULL)",
            )?;
            let rows = st
                .query_map(params![always, open_only], |r| {
                    Ok(ShotEmbedding {
                        evidence_id: r.get(0)?,
                        incident_id: r.get(1)?,
                        model: r.get(2)?,
                        vector: blob_vector(&r.get::<_, Vec<u8>>(3)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Screenshots of incident `id` whose image has no embedding from `model` yet: evidence
    /// id, content hash and file path (what a lazy embedding pass would read).
    pub fn unembedded_shots(&self, id: i64, model: &str) -> Result<Vec<(i64, String, PathBuf)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT e.id, e.sha256, e.blob_path FROM evidence e
                 WHERE e.incident_id = ?1 AND e.blob_path IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM image_embedding m
                                   WHERE m.sha256 = e.sha256 AND m.model = ?2)
                 ORDER BY e.id",
            )?;
            let rows = st
                .query_map(params![id, model], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        self.blobs.dir().join(r.get::<_, String>(2)?),
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Whether incident `id` has a postmortem, and its action items' titles.
    pub fn postmortem_and_actions(&self, id: i64) -> Result<(bool, Vec<String>)> {
        self.read(|c| {
            let has: bool = c.query_row(
                "SELECT EXISTS(SELECT 1 FROM postmortem WHERE incident_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            let mut st =
                c.prepare("SELECT title FROM action_item WHERE incident_id = ?1 ORDER BY id")?;
            let titles = st
                .query_map([id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((has, titles))
        })
    }

    /// Moves the evidence, timeline, hypotheses, action items, status updates and signals of
    /// `from` into `into`, closes `from` as merged (its reads then name `into`) and records
    /// the merge on both timelines: one transaction, so a failure moves nothing.
    pub fn merge_incident(&self, from: i64, into: i64) -> Result<(MergeCounts, Incident)> {
        self.write(|tx| {
            let source = get_in(tx, from)?;
            let target = get_in(tx, into)?;
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
            let moved = |table: &str| -> Result<i64> {
                Ok(tx.execute(
                    &format!("UPDATE {table} SET incident_id = ?1 WHERE incident_id = ?2"),
                    params![into, from],
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
            tx.execute(
                "UPDATE OR IGNORE external_item SET incident_id = ?1 WHERE incident_id = ?2",
                params![into, from],
            )?;
            let t = now();
            if !source.status.is_finished() {
                set_status(tx, from, IncidentStatus::Closed, &t)?;
            }
            tx.execute(
                "UPDATE incident SET merged_into = ?1, updated_at = ?2 WHERE id = ?3",
                params![into, ts(&t), from],
            )?;
            tx.execute(
                "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), into],
            )?;
            let source = get_in(tx, from)?;
            let target = get_in(tx, into)?;
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
            tx.record(
                &t,
                Fact::IncidentMerged {
                    from: source,
                    into: target.clone(),
                    on_target: false,
                    moved: [
                        counts.evidence,
                        counts.timeline,
                        counts.hypotheses,
                        counts.actions,
                    ],
                },
            )?;
            tx.record(
                &t,
                Fact::IncidentMerged {
                    from: get_in(tx, from)?,
                    into: target,
                    on_target: true,
                    moved: [
                        counts.evidence,
                        counts.timeline,
                        counts.hypotheses,
                        counts.actions,
                    ],
                },
            )?;
            Ok((counts, get_in(tx, into)?))
        })
    }

    /// Stores `png` as the redacted copy of screenshot `id` (the original file is kept),
    /// replacing an earlier redaction, whose file goes if nothing else names it.
    pub fn set_redaction(
        &self,
        id: i64,
        png: &[u8],
        boxes: &[RedactionBox],
    ) -> Result<opslens_domain::Evidence> {
        let _blobs = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let sha = crate::blobs::sha256_hex(png);
        let name = self.put_blob(&sha, "png", png)?;
        let boxes = serde_json::to_string(boxes).expect("boxes serialize");
        let written = self.write(|tx| {
            let old: Option<Option<String>> = tx
                .query_row(
                    "SELECT redacted_blob FROM evidence WHERE id = ?1 AND blob_path IS NOT NULL",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(old) = old else {
                return Err(StoreError::NotFound {
                    what: "screenshot evidence",
                    id,
                });
            };
            tx.execute(
                "UPDATE evidence SET redacted_blob = ?1, redacted_sha256 = ?2,
                     redaction_boxes = ?3, redacted_at = ?4, updated_at = ?4
                 WHERE id = ?5",
                params![name, sha, boxes, ts(&now()), id],
            )?;
            tx.evidence_updated(id)?;
            Ok((old, crate::evidence::get_in(tx, id)?))
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

    /// Path of a screenshot's redacted copy, `None` when it has none.
    pub fn redacted_image(&self, id: i64) -> Result<Option<PathBuf>> {
        let blob: Option<Option<String>> = self.read(|c| {
            Ok(c.query_row(
                "SELECT redacted_blob FROM evidence WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        match blob {
            None => Err(StoreError::NotFound {
                what: "evidence",
                id,
            }),
            Some(None) => Ok(None),
            Some(Some(b)) => Ok(Some(self.blob_file(&b)?)),
        }
    }
}
