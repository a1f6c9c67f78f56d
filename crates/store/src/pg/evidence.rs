//! Evidence rows and their image files on PostgreSQL (as `crate::evidence`, `crate::blobs`).

use std::collections::HashSet;
use std::path::PathBuf;

use opslens_domain::{Evidence, FeedKind, FeedOp, ImageInfo, OccurredAtSource};
use postgres::{GenericClient, Row};

use super::row::{en, ensure_incident, oen, t};
use super::{PgStore, PgTx};
use crate::blobs::sha256_hex;
use crate::evidence::same_image;
use crate::row::{now, ts};
use crate::tx::Fact;
use crate::{At, NewImageEvidence, NewTextEvidence, Result, StoreError, UploadFiling};

const COLUMNS: &str = "id, incident_id, evidence_type, title, content, source, sha256, blob_path, \
     image_mime, image_width, image_height, image_bytes, original_name, analysis_state, \
     analysis_model, analysis_error, analysis_ms, findings, occurred_at, occurred_at_source, \
     author, created_at, updated_at, redacted_sha256, redaction_boxes, redacted_at";

fn dim(r: &Row, col: &str) -> Result<u32> {
    let v: i64 = r.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::BadValue(format!("{col} {v}")))
}

pub(crate) fn from_row(r: &Row) -> Result<Evidence> {
    let image = match r.try_get::<_, Option<String>>("image_mime")? {
        Some(mime) => Some(ImageInfo {
            mime,
            width: dim(r, "image_width")?,
            height: dim(r, "image_height")?,
            bytes: r.try_get("image_bytes")?,
            original_name: r.try_get("original_name")?,
        }),
        None => None,
    };
    let findings = r
        .try_get::<_, Option<String>>("findings")?
        .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)));
    Ok(Evidence {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        evidence_type: en(r, "evidence_type")?,
        title: r.try_get("title")?,
        content: r.try_get("content")?,
        source: r.try_get("source")?,
        sha256: r.try_get("sha256")?,
        image,
        analysis_state: oen(r, "analysis_state")?,
        analysis_model: r.try_get("analysis_model")?,
        analysis_error: r.try_get("analysis_error")?,
        analysis_ms: r.try_get("analysis_ms")?,
        findings,
        occurred_at: t(r, "occurred_at")?,
        occurred_at_source: en(r, "occurred_at_source")?,
        assumed_zone: None,
        author: r.try_get("author")?,
        created_at: t(r, "created_at")?,
        updated_at: t(r, "updated_at")?,
        redaction: match r.try_get::<_, Option<String>>("redacted_sha256")? {
            Some(sha256) => Some(opslens_domain::Redaction {
                sha256,
                boxes: r
                    .try_get::<_, Option<String>>("redaction_boxes")?
                    .and_then(|b| serde_json::from_str(&b).ok())
                    .unwrap_or_default(),
                redacted_at: t(r, "redacted_at")?,
            }),
            None => None,
        },
    })
}

fn by_upload_key(c: &mut impl GenericClient, key: &str) -> Result<Option<Evidence>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM evidence WHERE upload_key = $1"),
        &[&key],
    )?
    .map(|r| from_row(&r))
    .transpose()
}

pub(crate) fn evidence_in(c: &mut impl GenericClient, id: i64) -> Result<Evidence> {
    match c.query_opt(
        &format!("SELECT {COLUMNS} FROM evidence WHERE id = $1"),
        &[&id],
    )? {
        Some(r) => from_row(&r),
        None => Err(StoreError::NotFound {
            what: "evidence",
            id,
        }),
    }
}

/// Records a just-inserted evidence row as added at `at` and its incident as changed (as
/// `crate::evidence::added`).
pub(crate) fn added(tx: &mut PgTx<'_, '_>, incident_id: i64, id: i64, at: At) -> Result<Evidence> {
    tx.touched(FeedKind::Evidence, FeedOp::Created, incident_id, id);
    let ev = evidence_in(&mut tx.c, id)?;
    tx.record_at(at, Fact::EvidenceAdded(ev.clone()))?;
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
    Ok(ev)
}

impl PgStore {
    pub(crate) fn add_text_evidence_at_pg(
        &self,
        incident_id: i64,
        new: &NewTextEvidence<'_>,
    ) -> Result<Evidence> {
        self.write(|tx| {
            ensure_incident(&mut tx.c, incident_id)?;
            let t = now();
            let at = new.occurred_at.unwrap_or(At {
                time: t,
                source: OccurredAtSource::Recorded,
            });
            let author = tx.author();
            let id: i64 = tx
                .c
                .query_one(
                    "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256,
                                          occurred_at, occurred_at_source, created_at, updated_at, author)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
                    &[
                        &incident_id,
                        &new.evidence_type.as_str(),
                        &new.title,
                        &new.content,
                        &new.source,
                        &sha256_hex(new.content.as_bytes()),
                        &ts(&at.time),
                        &at.source.as_str(),
                        &ts(&t),
                        &author,
                    ],
                )?
                .get(0);
            added(tx, incident_id, id, at)
        })
    }

    pub(crate) fn add_image_evidence_pg(
        &self,
        incident_id: i64,
        new: NewImageEvidence,
    ) -> Result<Evidence> {
        self.add_image_evidence_filed_pg(incident_id, new, &UploadFiling::default())
            .map(|(ev, _)| ev)
    }

    pub(crate) fn evidence_by_upload_key_pg(&self, key: &str) -> Result<Option<Evidence>> {
        self.read(|c| by_upload_key(c, key))
    }

    /// As the SQLite side: the key is checked before the file is written and again inside the
    /// insert's transaction (under the write lock), so two racing repeats make one row, and
    /// the unique index on `upload_key` backs it across replicas.
    pub(crate) fn add_image_evidence_filed_pg(
        &self,
        incident_id: i64,
        new: NewImageEvidence,
        filing: &UploadFiling,
    ) -> Result<(Evidence, bool)> {
        let _blobs = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let sha = sha256_hex(&new.bytes);
        let key = filing.key.as_deref();
        if let Some(k) = key {
            if let Some(ev) = self.read(|c| by_upload_key(c, k))? {
                return same_image(ev, &sha, k).map(|ev| (ev, false));
            }
        }
        // Fail before touching the disk when the incident is gone.
        self.read(|c| ensure_incident(c, incident_id))?;
        let name = self.blobs.put(&sha, new.ext, &new.bytes)?;
        let inserted = self.write(|tx| {
            if let Some(k) = key {
                if let Some(ev) = by_upload_key(&mut tx.c, k)? {
                    return same_image(ev, &sha, k).map(|ev| (ev, false));
                }
            }
            ensure_incident(&mut tx.c, incident_id)?;
            let t = now();
            let author = tx.author();
            let id: i64 = tx
                .c
                .query_one(
                    "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256, blob_path,
                         image_mime, image_width, image_height, image_bytes, original_name, analysis_state,
                         created_at, updated_at, author, upload_key)
                     VALUES ($1, 'screenshot', $2, '', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)
                     RETURNING id",
                    &[
                        &incident_id,
                        &new.title,
                        &new.source,
                        &sha,
                        &name,
                        &new.mime,
                        &i64::from(new.width),
                        &i64::from(new.height),
                        &(new.bytes.len() as i64),
                        &new.original_name,
                        &new.analysis_state.as_str(),
                        &ts(&t),
                        &author,
                        &key,
                    ],
                )?
                .get(0);
            tx.c.execute(
                "INSERT INTO analysis_job(evidence_id, state, created_at) VALUES ($1, 'queued', $2)",
                &[&id, &ts(&t)],
            )?;
            let at = At::recorded(filing.captured_at.unwrap_or(t));
            if filing.captured_at.is_some() {
                super::work::set_evidence_time(tx, id, at)?;
            }
            let ev = added(tx, incident_id, id, at)?;
            let Some(done) = &filing.analysis else {
                return Ok((ev, true));
            };
            // Findings made elsewhere: the queued job becomes that machine's, finished now,
            // so nobody here analyses it again and it records who made them.
            let job: i64 = tx
                .c
                .query_one(
                    "UPDATE analysis_job SET state = 'running', attempts = 1, started_at = $2, leased_by = $3
                     WHERE evidence_id = $1 AND state = 'queued' RETURNING id",
                    &[&id, &ts(&t), &done.worker],
                )?
                .get(0);
            super::analysis::finish_in(tx, job, done)?;
            Ok((evidence_in(&mut tx.c, id)?, true))
        });
        if inserted.is_err() {
            // Nothing committed: do not leave a file no row names (unless another row does).
            let _ = self.remove_unreferenced(std::slice::from_ref(&name));
        }
        inserted
    }

    pub(crate) fn list_evidence_pg(&self, incident_id: i64) -> Result<Vec<Evidence>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM evidence WHERE incident_id = $1 ORDER BY occurred_at, id"
                ),
                &[&incident_id],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    pub(crate) fn evidence_image_pg(&self, id: i64) -> Result<(PathBuf, String)> {
        let (blob, mime): (Option<String>, Option<String>) = self.read(|c| {
            c.query_opt(
                "SELECT blob_path, image_mime FROM evidence WHERE id = $1",
                &[&id],
            )?
            .map(|r| (r.get(0), r.get(1)))
            .ok_or(StoreError::NotFound {
                what: "evidence",
                id,
            })
        })?;
        match (blob, mime) {
            (Some(b), Some(m)) => Ok((self.blobs.file(&b)?, m)),
            _ => Err(StoreError::NotFound {
                what: "image of evidence",
                id,
            }),
        }
    }

    /// Removes image files no evidence row names. With several replicas on one database,
    /// only files older than a minute go: another replica may be between writing a file and
    /// committing its row.
    pub(crate) fn sweep_orphan_blobs_pg(&self) -> Result<usize> {
        let _uploads = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let referenced: HashSet<String> = self.read(|c| {
            Ok(c.query(
                "SELECT blob_path FROM evidence WHERE blob_path IS NOT NULL
                 UNION SELECT redacted_blob FROM evidence WHERE redacted_blob IS NOT NULL",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })?;
        self.blobs
            .sweep(&referenced, std::time::Duration::from_secs(60))
    }

    /// Deletes the given image files if no evidence row names them any more.
    pub(crate) fn remove_unreferenced(&self, names: &[String]) -> Result<()> {
        for name in names {
            let still_used: bool = self.read(|c| {
                Ok(c.query_one(
                    "SELECT EXISTS(SELECT 1 FROM evidence WHERE blob_path = $1 OR redacted_blob = $1)",
                    &[name],
                )?
                .get(0))
            })?;
            if !still_used {
                self.blobs.remove_local(name)?;
            }
        }
        Ok(())
    }

    pub(crate) fn update_analysis_pg(
        &self,
        id: i64,
        u: &crate::AnalysisUpdate,
    ) -> Result<Evidence> {
        self.write(|tx| {
            evidence_in(&mut tx.c, id)?;
            let findings = u.findings.as_ref().map(|f| f.to_string());
            tx.c.execute(
                "UPDATE evidence SET
                    analysis_state = COALESCE($1, analysis_state),
                    content = COALESCE($2, content),
                    analysis_model = COALESCE($3, analysis_model),
                    analysis_error = $4,
                    analysis_ms = COALESCE($5, analysis_ms),
                    findings = COALESCE($6, findings),
                    updated_at = $7
                 WHERE id = $8",
                &[
                    &u.state.map(|s| s.as_str()),
                    &u.content,
                    &u.model,
                    &u.error,
                    &u.ms,
                    &findings,
                    &ts(&now()),
                    &id,
                ],
            )?;
            tx.evidence_updated(id)?;
            evidence_in(&mut tx.c, id)
        })
    }

    pub(crate) fn analysis_backlog_pg(&self) -> Result<Vec<(opslens_domain::AnalysisState, i64)>> {
        self.read(|c| {
            c.query(
                "SELECT analysis_state, COUNT(*) AS n FROM evidence
                 WHERE analysis_state IN ('waiting-for-model', 'queued', 'running')
                 GROUP BY analysis_state",
                &[],
            )?
            .iter()
            .map(|r| Ok((en(r, "analysis_state")?, r.try_get("n")?)))
            .collect()
        })
    }

    pub(crate) fn update_evidence_pg(
        &self,
        id: i64,
        title: Option<&str>,
        occurred_at: Option<opslens_domain::Timestamp>,
    ) -> Result<Evidence> {
        self.write(|tx| {
            let old = evidence_in(&mut tx.c, id)?;
            if let Some(title) = title.filter(|x| *x != old.title) {
                tx.c.execute(
                    "UPDATE evidence SET title = $1, updated_at = $2 WHERE id = $3",
                    &[&title, &ts(&now()), &id],
                )?;
                tx.evidence_updated(id)?;
            }
            if let Some(time) = occurred_at {
                let at = At {
                    time,
                    source: OccurredAtSource::User,
                };
                super::work::set_evidence_time(tx, id, at)?;
            }
            evidence_in(&mut tx.c, id)
        })
    }
}
