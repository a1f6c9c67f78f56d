//! Evidence rows: text evidence, screenshots with their image file, analysis results.

use opslens_domain::{
    AnalysisState, Evidence, EvidenceType, FeedKind, FeedOp, ImageInfo, OccurredAtSource,
};
use rusqlite::{params, OptionalExtension, Row};

use crate::blobs::sha256_hex;
use crate::incidents::ensure_exists;
use crate::row::{now, ts, En, Ts};
use crate::tx::{At, Fact, WriteTx};
use crate::{Result, SqliteStore, StoreError};

/// A validated, decoded-once screenshot ready to be stored.
#[derive(Debug, Clone)]
pub struct NewImageEvidence {
    /// Label shown in lists.
    pub title: String,
    /// Where it came from (`upload`, `capture`, `grafana`, …).
    pub source: String,
    /// The file bytes as received (already sniffed and decoded successfully).
    pub bytes: Vec<u8>,
    /// File extension matching the sniffed format (`png`, `jpg`, `webp`).
    pub ext: &'static str,
    /// MIME type matching the sniffed format.
    pub mime: &'static str,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// The client's file name, as a label only.
    pub original_name: Option<String>,
    /// Initial analysis state (`waiting-for-model` until an engine is present).
    pub analysis_state: AnalysisState,
}

/// What an upload may say about itself beyond the image (the desktop filing a capture on a
/// team server: it may have been queued on the laptop for a while, and analysed there).
#[derive(Debug, Clone, Default)]
pub struct UploadFiling {
    /// The client's idempotency key: a repeat with the same key returns the first row.
    pub key: Option<String>,
    /// When the picture was taken, where that was before it arrived (a queued capture).
    pub captured_at: Option<opslens_domain::Timestamp>,
    /// Findings made on another machine, recorded as that machine's finished job (`worker`
    /// names the machine) instead of queueing an analysis here.
    pub analysis: Option<crate::FinishedAnalysis>,
}

fn by_upload_key(c: &rusqlite::Connection, key: &str) -> Result<Option<Evidence>> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM evidence WHERE upload_key = ?1"),
        [key],
        from_row,
    )
    .optional()?)
}

/// The first upload under `key`, when the repeat carries the same image.
pub(crate) fn same_image(ev: Evidence, sha: &str, key: &str) -> Result<Evidence> {
    if ev.sha256 == sha {
        Ok(ev)
    } else {
        Err(StoreError::Conflict(format!(
            "Idempotency-Key {key:?} was used for another image (evidence {}); send a new key for a new upload",
            ev.id
        )))
    }
}

/// Outcome of an analysis run to record on a screenshot.
#[derive(Debug, Clone, Default)]
pub struct AnalysisUpdate {
    /// New state.
    pub state: Option<AnalysisState>,
    /// Readable analysis text for `content`.
    pub content: Option<String>,
    /// Model id.
    pub model: Option<String>,
    /// Failure reason.
    pub error: Option<String>,
    /// Duration.
    pub ms: Option<i64>,
    /// Structured findings.
    pub findings: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, incident_id, evidence_type, title, content, source, sha256, blob_path, \
     image_mime, image_width, image_height, image_bytes, original_name, analysis_state, \
     analysis_model, analysis_error, analysis_ms, findings, occurred_at, occurred_at_source, \
     author, created_at, updated_at, redacted_sha256, redaction_boxes, redacted_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Evidence> {
    let image = match r.get::<_, Option<String>>("image_mime")? {
        Some(mime) => Some(ImageInfo {
            mime,
            width: r.get("image_width")?,
            height: r.get("image_height")?,
            bytes: r.get("image_bytes")?,
            original_name: r.get("original_name")?,
        }),
        None => None,
    };
    let findings = r
        .get::<_, Option<String>>("findings")?
        .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)));
    Ok(Evidence {
        id: r.get("id")?,
        incident_id: r.get("incident_id")?,
        evidence_type: r.get::<_, En<EvidenceType>>("evidence_type")?.0,
        title: r.get("title")?,
        content: r.get("content")?,
        source: r.get("source")?,
        sha256: r.get("sha256")?,
        image,
        analysis_state: r
            .get::<_, Option<En<AnalysisState>>>("analysis_state")?
            .map(|e| e.0),
        analysis_model: r.get("analysis_model")?,
        analysis_error: r.get("analysis_error")?,
        analysis_ms: r.get("analysis_ms")?,
        findings,
        occurred_at: r.get::<_, Ts>("occurred_at")?.0,
        occurred_at_source: r.get::<_, En<OccurredAtSource>>("occurred_at_source")?.0,
        assumed_zone: None,
        author: r.get("author")?,
        created_at: r.get::<_, Ts>("created_at")?.0,
        updated_at: r.get::<_, Ts>("updated_at")?.0,
        redaction: match r.get::<_, Option<String>>("redacted_sha256")? {
            Some(sha256) => Some(opslens_domain::Redaction {
                sha256,
                boxes: r
                    .get::<_, Option<String>>("redaction_boxes")?
                    .and_then(|b| serde_json::from_str(&b).ok())
                    .unwrap_or_default(),
                redacted_at: r.get::<_, Ts>("redacted_at")?.0,
            }),
            None => None,
        },
    })
}

pub(crate) fn get_in(c: &rusqlite::Connection, id: i64) -> Result<Evidence> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM evidence WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound {
        what: "evidence",
        id,
    })
}

/// Records a just-inserted evidence row as added at `at` (a fact the narrator words; its
/// timeline entry shares the evidence's time) and its incident as changed.
pub(crate) fn added(tx: &WriteTx<'_>, incident_id: i64, id: i64, at: At) -> Result<Evidence> {
    tx.touched(FeedKind::Evidence, FeedOp::Created, incident_id, id);
    let ev = get_in(tx, id)?;
    tx.record_at(at, Fact::EvidenceAdded(ev.clone()))?;
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
    Ok(ev)
}

/// Queues the full analysis of a freshly stored screenshot (inside its insert transaction).
fn queue_new_screenshot(
    tx: &WriteTx<'_>,
    evidence_id: i64,
    at: &opslens_domain::Timestamp,
) -> Result<()> {
    tx.execute(
        "INSERT INTO analysis_job(evidence_id, state, created_at) VALUES (?1, 'queued', ?2)",
        params![evidence_id, ts(at)],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Adds text evidence (log, note, metric, …) and its timeline event, recorded now.
    pub fn add_text_evidence(
        &self,
        incident_id: i64,
        evidence_type: EvidenceType,
        title: &str,
        content: &str,
        source: &str,
    ) -> Result<Evidence> {
        let new = crate::NewTextEvidence {
            evidence_type,
            title,
            content,
            source,
            occurred_at: None,
        };
        self.add_text_evidence_at(incident_id, &new)
    }

    /// Stores the image file durably, then the screenshot row and its timeline event.
    pub fn add_image_evidence(&self, incident_id: i64, new: NewImageEvidence) -> Result<Evidence> {
        self.add_image_evidence_filed(incident_id, new, &UploadFiling::default())
            .map(|(ev, _)| ev)
    }

    /// The screenshot an upload with idempotency key `key` stored, if any.
    pub fn evidence_by_upload_key(&self, key: &str) -> Result<Option<Evidence>> {
        self.read(|c| by_upload_key(c, key))
    }

    /// [`Store::add_image_evidence`] for an upload that says more about itself (see
    /// [`UploadFiling`]). Returns the evidence and whether this call stored it: `false` when
    /// `filing.key` was already used for the same image (the first upload's row, untouched).
    /// The key is checked inside the insert's write transaction too, so two racing repeats
    /// still make one row; a key used for a different image is a conflict.
    pub fn add_image_evidence_filed(
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
        self.read(|c| ensure_exists(c, incident_id))?;
        let name = self.put_blob(&sha, new.ext, &new.bytes)?;
        let inserted = self.write(|tx| {
            if let Some(k) = key {
                if let Some(ev) = by_upload_key(tx, k)? {
                    return same_image(ev, &sha, k).map(|ev| (ev, false));
                }
            }
            ensure_exists(tx, incident_id)?;
            let t = now();
            tx.execute(
                "INSERT INTO evidence(incident_id, evidence_type, title, content, source, sha256, blob_path,
                     image_mime, image_width, image_height, image_bytes, original_name, analysis_state,
                     created_at, updated_at, author, upload_key)
                 VALUES (?1, 'screenshot', ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
                params![
                    incident_id,
                    new.title,
                    new.source,
                    sha,
                    name,
                    new.mime,
                    new.width,
                    new.height,
                    new.bytes.len() as i64,
                    new.original_name,
                    new.analysis_state.as_str(),
                    ts(&t),
                    tx.author(),
                    key
                ],
            )?;
            let id = tx.last_insert_rowid();
            queue_new_screenshot(tx, id, &t)?;
            let at = At::recorded(filing.captured_at.unwrap_or(t));
            if filing.captured_at.is_some() {
                crate::event_time::set_evidence_time(tx, id, at)?;
            }
            let ev = added(tx, incident_id, id, at)?;
            let Some(done) = &filing.analysis else {
                return Ok((ev, true));
            };
            // Findings made elsewhere: the queued job becomes that machine's, finished now,
            // so nobody here analyses it again and it records who made them.
            let job: i64 = tx.query_row(
                "UPDATE analysis_job SET state = 'running', attempts = 1, started_at = ?2, leased_by = ?3
                 WHERE evidence_id = ?1 AND state = 'queued' RETURNING id",
                params![id, ts(&t), done.worker],
                |r| r.get(0),
            )?;
            crate::analysis::finish_in(tx, job, done)?;
            Ok((get_in(tx, id)?, true))
        });
        if inserted.is_err() {
            // Nothing committed: do not leave a file no row names (unless another row does).
            let _ = self.remove_unreferenced(std::slice::from_ref(&name));
        }
        inserted
    }

    /// One piece of evidence.
    pub fn evidence(&self, id: i64) -> Result<Evidence> {
        self.read(|c| get_in(c, id))
    }

    /// Evidence of an incident in the order it happened (then the order it was gathered).
    pub fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>> {
        self.read(|c| {
            ensure_exists(c, incident_id)?;
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM evidence WHERE incident_id = ?1 ORDER BY occurred_at, id"
            ))?;
            let items = st
                .query_map([incident_id], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
    }

    /// Path and MIME type of a screenshot's file; `NotFound` for text evidence.
    pub fn evidence_image(&self, id: i64) -> Result<(std::path::PathBuf, String)> {
        let (blob, mime): (Option<String>, Option<String>) = self.read(|c| {
            c.query_row(
                "SELECT blob_path, image_mime FROM evidence WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: "evidence",
                id,
            })
        })?;
        match (blob, mime) {
            (Some(b), Some(m)) => Ok((self.blob_file(&b)?, m)),
            _ => Err(StoreError::NotFound {
                what: "image of evidence",
                id,
            }),
        }
    }

    /// Records analysis progress or results on a screenshot.
    pub fn update_analysis(&self, id: i64, u: &AnalysisUpdate) -> Result<Evidence> {
        self.write(|tx| {
            get_in(tx, id)?;
            let findings = u.findings.as_ref().map(|f| f.to_string());
            tx.execute(
                "UPDATE evidence SET
                    analysis_state = COALESCE(?1, analysis_state),
                    content = COALESCE(?2, content),
                    analysis_model = COALESCE(?3, analysis_model),
                    analysis_error = ?4,
                    analysis_ms = COALESCE(?5, analysis_ms),
                    findings = COALESCE(?6, findings),
                    updated_at = ?7
                 WHERE id = ?8",
                params![
                    u.state.map(|s| s.as_str()),
                    u.content,
                    u.model,
                    u.error,
                    u.ms,
                    findings,
                    ts(&now()),
                    id
                ],
            )?;
            tx.evidence_updated(id)?;
            get_in(tx, id)
        })
    }

    /// How many screenshots are in each not-yet-finished analysis state (for status routes).
    pub fn analysis_backlog(&self) -> Result<Vec<(AnalysisState, i64)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT analysis_state, COUNT(*) FROM evidence
                 WHERE analysis_state IN ('waiting-for-model', 'queued', 'running')
                 GROUP BY analysis_state",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, En<AnalysisState>>(0)?.0, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
