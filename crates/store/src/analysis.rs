//! The persistent analysis queue: jobs claimed one at a time by the engine worker, results
//! written in one transaction with the evidence they fill and the timeline events they add.

use opslens_domain::{AnalysisJob, AnalysisState, FeedKind, FeedOp, TimelineKind, Timestamp};
use rusqlite::{params, OptionalExtension, Row};

use crate::row::{now, ts, En, Ts};
use crate::tx::WriteTx;
use crate::{Result, SqliteStore, StoreError};

/// Prefix of the timeline events an analysis adds, so a re-analysis replaces its own events and
/// never a person's.
pub const FINDING_EVENT_PREFIX: &str = "Seen on screenshot #";

/// What a finished model run produced.
#[derive(Debug, Clone)]
pub struct FinishedAnalysis {
    /// Model id.
    pub model: String,
    /// Timings and token counts.
    pub timings: serde_json::Value,
    /// The model's text, kept verbatim whatever the parser made of it.
    pub raw_output: String,
    /// The result proper.
    pub outcome: AnalysisOutcome,
    /// The worker that ran it. When set, the result is recorded only while that worker still
    /// holds the job's lease (a worker that lost it to another records nothing: each job's
    /// result is written once).
    pub worker: Option<String>,
    /// Where it ran (device name, or the remote server's URL).
    pub device: Option<String>,
}

/// Screenshots other workers touched, as (evidence id, incident id), and the newest job
/// timestamp seen (where to look from next time).
pub type OthersProgress = (Vec<(i64, i64)>, Option<String>);

/// The result of a job.
#[derive(Debug, Clone)]
pub enum AnalysisOutcome {
    /// A full analysis: readable text, structured findings, timeline events.
    Findings {
        /// Readable text for the evidence's `content`.
        content: String,
        /// Structured findings.
        findings: serde_json::Value,
        /// Wall time of the run.
        ms: i64,
        /// Times read from the screen with what happened then.
        events: Vec<(Timestamp, String)>,
    },
    /// An answer to a question.
    Answer {
        /// The answer text.
        answer: String,
    },
    /// The run failed.
    Failed {
        /// Why.
        error: String,
    },
}

const JOB_COLUMNS: &str = "id, evidence_id, question, state, attempts, model, answer, error, \
     timings, created_at, started_at, finished_at, leased_by, device, lease_until";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<AnalysisJob> {
    Ok(AnalysisJob {
        id: r.get("id")?,
        evidence_id: r.get("evidence_id")?,
        question: r.get("question")?,
        state: r.get::<_, En<AnalysisState>>("state")?.0,
        attempts: r.get("attempts")?,
        model: r.get("model")?,
        answer: r.get("answer")?,
        error: r.get("error")?,
        timings: r
            .get::<_, Option<String>>("timings")?
            .and_then(|s| serde_json::from_str(&s).ok()),
        created_at: r.get::<_, Ts>("created_at")?.0,
        started_at: r.get::<_, Option<Ts>>("started_at")?.map(|t| t.0),
        finished_at: r.get::<_, Option<Ts>>("finished_at")?.map(|t| t.0),
        worker: r.get("leased_by")?,
        device: r.get("device")?,
        lease_until: r.get::<_, Option<Ts>>("lease_until")?.map(|t| t.0),
    })
}

fn job_in(c: &rusqlite::Connection, id: i64) -> Result<AnalysisJob> {
    c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM analysis_job WHERE id = ?1"),
        [id],
        job_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound {
        what: "analysis job",
        id,
    })
}

/// Runs an `UPDATE evidence … RETURNING id, incident_id`, recording each row it changed;
/// returns how many.
fn updated_evidence(tx: &WriteTx<'_>, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
    let rows = tx
        .prepare(sql)?
        .query_map(p, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for &(id, incident_id) in &rows {
        tx.touched(FeedKind::Evidence, FeedOp::Updated, incident_id, id);
    }
    Ok(rows.len())
}

impl SqliteStore {
    /// Queues a run over screenshot `evidence_id`: the full analysis again (`question: None`;
    /// an already pending one is returned instead of a second) or a question.
    /// `model_present` decides whether the evidence shows `queued` or `waiting-for-model`.
    pub fn enqueue_analysis(
        &self,
        evidence_id: i64,
        question: Option<&str>,
        model_present: bool,
    ) -> Result<AnalysisJob> {
        self.write(|tx| {
            let (is_image, ev_type): (bool, String) = tx
                .query_row(
                    "SELECT blob_path IS NOT NULL, evidence_type FROM evidence WHERE id = ?1",
                    [evidence_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or(StoreError::NotFound {
                    what: "evidence",
                    id: evidence_id,
                })?;
            if !is_image {
                return Err(StoreError::Conflict(format!(
                    "evidence {evidence_id} is a {ev_type}, not a screenshot: only images are analysed"
                )));
            }
            if question.is_none() {
                let pending: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM analysis_job WHERE evidence_id = ?1 AND question IS NULL
                         AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                        [evidence_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = pending {
                    if model_present
                        && tx.execute(
                            "UPDATE evidence SET analysis_state = 'queued'
                             WHERE id = ?1 AND analysis_state = 'waiting-for-model'",
                            [evidence_id],
                        )? > 0
                    {
                        tx.evidence_updated(evidence_id)?;
                    }
                    return job_in(tx, id);
                }
            }
            let t = now();
            tx.execute(
                "INSERT INTO analysis_job(evidence_id, question, state, created_at) VALUES (?1, ?2, 'queued', ?3)",
                params![evidence_id, question, ts(&t)],
            )?;
            let id = tx.last_insert_rowid();
            tx.evidence_updated(evidence_id)?;
            if question.is_none() {
                let state = if model_present {
                    AnalysisState::Queued
                } else {
                    AnalysisState::WaitingForModel
                };
                tx.execute(
                    "UPDATE evidence SET analysis_state = ?1, analysis_error = NULL, updated_at = ?2 WHERE id = ?3",
                    params![state.as_str(), ts(&t), evidence_id],
                )?;
            }
            job_in(tx, id)
        })
    }

    /// Takes the oldest queued job (or the oldest running one whose lease ran out: its worker
    /// died) for `worker`, leased until `lease` from now, and marks it running (and its
    /// screenshot, for a full analysis). The pick and the mark are one `UPDATE … RETURNING`
    /// inside the store's single write transaction (`BEGIN IMMEDIATE`, which also excludes
    /// other processes), so two workers never take the same job. Expired jobs already started
    /// `max_attempts` times fail instead, so one poisonous image cannot kill worker after
    /// worker. `None` when nothing is takeable.
    pub fn take_analysis_job(
        &self,
        worker: &str,
        lease: std::time::Duration,
        max_attempts: i64,
    ) -> Result<Option<AnalysisJob>> {
        self.write(|tx| {
            let now_t = now();
            let t = ts(&now_t);
            let until = ts(&(now_t + chrono::Duration::from_std(lease).unwrap_or_default()));
            let msg = format!(
                "its worker stopped {max_attempts} times during the analysis (lease not renewed); \
                 POST /api/v1/evidence/{{id}}/analyze to try again"
            );
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = ?1, updated_at = ?2
                 WHERE id IN (SELECT evidence_id FROM analysis_job
                              WHERE state = 'running' AND question IS NULL AND lease_until < ?2
                              AND attempts >= ?3)
                 RETURNING id, incident_id",
                params![msg, t, max_attempts],
            )?;
            tx.execute(
                "UPDATE analysis_job SET state = 'failed', error = ?1, finished_at = ?2, lease_until = NULL
                 WHERE state = 'running' AND lease_until < ?2 AND attempts >= ?3",
                params![msg, t, max_attempts],
            )?;
            let taken: Option<(i64, i64, bool)> = tx
                .query_row(
                    "UPDATE analysis_job SET state = 'running', attempts = attempts + 1, started_at = ?1,
                         leased_by = ?2, lease_until = ?3
                     WHERE id = (SELECT id FROM analysis_job
                                 WHERE state = 'queued' OR (state = 'running' AND lease_until < ?1)
                                 ORDER BY id LIMIT 1)
                     RETURNING id, evidence_id, question IS NULL",
                    params![t, worker, until],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((id, evidence_id, full)) = taken else {
                return Ok(None);
            };
            if full {
                tx.execute(
                    "UPDATE evidence SET analysis_state = 'running', updated_at = ?1 WHERE id = ?2",
                    params![t, evidence_id],
                )?;
            }
            // A question's job running shows on its screenshot too (its analyses list).
            tx.evidence_updated(evidence_id)?;
            job_in(tx, id).map(Some)
        })
    }

    /// [`Store::take_analysis_job`] for a single process that never loses its lease (tests,
    /// tools): an hour's lease, no attempt limit.
    pub fn claim_analysis_job(&self) -> Result<Option<AnalysisJob>> {
        self.take_analysis_job("local", std::time::Duration::from_secs(3600), i64::MAX)
    }

    /// Extends `worker`'s lease on a running job to `lease` from now (late is fine while no
    /// one has taken the job over). `false` when the job is no longer that worker's (finished, deleted, or taken over after the lease ran out):
    /// the worker then stops the run and records nothing.
    pub fn renew_analysis_lease(
        &self,
        job_id: i64,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<bool> {
        self.write(|tx| {
            let n = now();
            let until = ts(&(n + chrono::Duration::from_std(lease).unwrap_or_default()));
            Ok(tx.execute(
                "UPDATE analysis_job SET lease_until = ?1
                 WHERE id = ?2 AND leased_by = ?3 AND state = 'running'",
                params![until, job_id, worker],
            )? == 1)
        })
    }

    /// Records the end of a job, with everything it produced, in one transaction.
    pub fn finish_analysis_job(&self, job_id: i64, done: &FinishedAnalysis) -> Result<AnalysisJob> {
        self.write(|tx| finish_in(tx, job_id, done))
    }

    /// After a restart of `worker`: the jobs it left `running` (and any running without a
    /// lease, from before leases existed) go back to the queue, unless they were already
    /// started `max_attempts` times (then they fail, so one poisonous image cannot crash-loop
    /// the app). Other workers' jobs are left to their leases. Returns (requeued, failed).
    pub fn requeue_interrupted_analyses(
        &self,
        worker: &str,
        max_attempts: i64,
    ) -> Result<(usize, usize)> {
        self.write(|tx| {
            let t = ts(&now());
            let msg = format!(
                "interrupted {max_attempts} times (the app stopped during the analysis); \
                 POST /api/v1/evidence/{{id}}/analyze to try again"
            );
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = ?1, updated_at = ?2
                 WHERE id IN (SELECT evidence_id FROM analysis_job
                              WHERE state = 'running' AND question IS NULL AND attempts >= ?3
                              AND (leased_by IS NULL OR leased_by = ?4))
                 RETURNING id, incident_id",
                params![msg, t, max_attempts, worker],
            )?;
            let failed = tx.execute(
                "UPDATE analysis_job SET state = 'failed', error = ?1, finished_at = ?2, lease_until = NULL
                 WHERE state = 'running' AND attempts >= ?3 AND (leased_by IS NULL OR leased_by = ?4)",
                params![msg, t, max_attempts, worker],
            )?;
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = 'queued', updated_at = ?1
                 WHERE id IN (SELECT evidence_id FROM analysis_job WHERE state = 'running' AND question IS NULL
                              AND (leased_by IS NULL OR leased_by = ?2))
                 RETURNING id, incident_id",
                params![t, worker],
            )?;
            let requeued = tx.execute(
                "UPDATE analysis_job SET state = 'queued', lease_until = NULL
                 WHERE state = 'running' AND (leased_by IS NULL OR leased_by = ?1)",
                [worker],
            )?;
            Ok((requeued, failed))
        })
    }

    /// Shows screenshots whose full analysis is queued as `waiting-for-model` (no model) or
    /// `queued` (a model is there). Returns how many changed.
    pub fn set_analysis_waiting(&self, waiting: bool) -> Result<usize> {
        let (from, to) = if waiting {
            (AnalysisState::Queued, AnalysisState::WaitingForModel)
        } else {
            (AnalysisState::WaitingForModel, AnalysisState::Queued)
        };
        self.write(|tx| {
            updated_evidence(
                tx,
                // Driven by the (indexed) evidence in the old state, each checked against its
                // own jobs: the cost follows the rows that flip, not the whole queue.
                "UPDATE evidence SET analysis_state = ?1, updated_at = ?2
                 WHERE analysis_state = ?3 AND EXISTS
                   (SELECT 1 FROM analysis_job j
                    WHERE j.evidence_id = evidence.id AND j.state = 'queued' AND j.question IS NULL)
                 RETURNING id, incident_id",
                params![to.as_str(), ts(&now()), from.as_str()],
            )
        })
    }

    /// One job.
    pub fn analysis_job(&self, id: i64) -> Result<AnalysisJob> {
        self.read(|c| job_in(c, id))
    }

    /// The jobs of one screenshot, oldest first.
    pub fn analysis_jobs_of(&self, evidence_id: i64) -> Result<Vec<AnalysisJob>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM analysis_job WHERE evidence_id = ?1 ORDER BY id"
            ))?;
            let v = st
                .query_map([evidence_id], job_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    /// Whether any job is takeable: queued, or running on a lease that ran out. What the
    /// worker asks on every wake, answered from the pending index whatever the queue's length;
    /// jobs other workers hold do not count (this one would load its model for nothing).
    pub fn has_pending_analysis(&self) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM analysis_job WHERE state = 'queued')
                     OR EXISTS(SELECT 1 FROM analysis_job WHERE state = 'running' AND lease_until < ?1)",
                [ts(&now())],
                |r| r.get(0),
            )?)
        })
    }

    /// Screenshots whose jobs other workers (`opslens worker` processes) started or finished
    /// after `since` (a job timestamp as stored; `None`: only find the newest), with their
    /// incidents, and the newest such timestamp: the app announces them on its change feed,
    /// which never hears another process's commits.
    pub fn analyses_by_others_since(
        &self,
        me: &str,
        since: Option<&str>,
    ) -> Result<OthersProgress> {
        self.read(|c| {
            let newest: Option<String> = c.query_row(
                "SELECT max(max(coalesce(started_at, ''), coalesce(finished_at, '')))
                 FROM analysis_job WHERE leased_by IS NOT NULL AND leased_by != ?1",
                [me],
                |r| r.get(0),
            )?;
            let Some(since) = since else {
                return Ok((Vec::new(), newest));
            };
            let mut st = c.prepare_cached(
                "SELECT DISTINCT j.evidence_id, e.incident_id FROM analysis_job j
                 JOIN evidence e ON e.id = j.evidence_id
                 WHERE j.leased_by IS NOT NULL AND j.leased_by != ?1
                   AND (j.started_at > ?2 OR j.finished_at > ?2)",
            )?;
            let rows = st
                .query_map(params![me, since], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, newest.or_else(|| Some(since.to_string()))))
        })
    }

    /// Jobs queued or running (the status route).
    pub fn pending_analysis_count(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM analysis_job WHERE state IN ('queued', 'running')",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// The most recently finished job that succeeded (for the status route's timings).
    pub fn last_finished_analysis(&self) -> Result<Option<AnalysisJob>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM analysis_job WHERE state = 'done'
                     ORDER BY finished_at DESC, id DESC LIMIT 1"
                ),
                [],
                job_from_row,
            )
            .optional()?)
        })
    }
}

/// Records the end of job `job_id` inside `tx` (see [`Store::finish_analysis_job`]); also used
/// by an upload that carries findings made on another machine, so those land exactly as a
/// worker's would (content, findings, timeline events, the job's model, worker and device).
pub(crate) fn finish_in(
    tx: &WriteTx<'_>,
    job_id: i64,
    done: &FinishedAnalysis,
) -> Result<AnalysisJob> {
    let job = job_in(tx, job_id)?;
    if let Some(w) = &done.worker {
        if job.state != AnalysisState::Running || job.worker.as_deref() != Some(w.as_str()) {
            return Err(StoreError::Conflict(format!(
                "analysis job {job_id} is no longer leased to {w} (now {} by {}); its result is not recorded",
                job.state.as_str(),
                job.worker.as_deref().unwrap_or("nobody")
            )));
        }
    }
    let t = now();
    let (state, answer, error) = match &done.outcome {
        AnalysisOutcome::Findings { .. } => (AnalysisState::Done, None, None),
        AnalysisOutcome::Answer { answer } => (AnalysisState::Done, Some(answer.as_str()), None),
        AnalysisOutcome::Failed { error } => (AnalysisState::Failed, None, Some(error.as_str())),
    };
    tx.execute(
        "UPDATE analysis_job SET state = ?1, model = ?2, answer = ?3, error = ?4, timings = ?5,
             raw_output = ?6, finished_at = ?7, lease_until = NULL,
             device = coalesce(?9, device), leased_by = coalesce(?10, leased_by)
         WHERE id = ?8",
        params![
            state.as_str(),
            done.model,
            answer,
            error,
            done.timings.to_string(),
            done.raw_output,
            ts(&t),
            job_id,
            done.device,
            done.worker,
        ],
    )?;
    let (incident_id, findings): (i64, Option<String>) = tx.query_row(
        "SELECT incident_id, findings FROM evidence WHERE id = ?1",
        [job.evidence_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.touched(
        FeedKind::Evidence,
        FeedOp::Updated,
        incident_id,
        job.evidence_id,
    );
    match (&done.outcome, job.question.as_deref()) {
        (
            AnalysisOutcome::Findings {
                content,
                findings: f,
                ms,
                events,
            },
            None,
        ) => {
            let f = keeping_answers(f, findings);
            tx.execute(
                "UPDATE evidence SET analysis_state = 'done', content = ?1, findings = ?2,
                     analysis_model = ?3, analysis_error = NULL, analysis_ms = ?4, updated_at = ?5
                 WHERE id = ?6",
                params![
                    content,
                    f.to_string(),
                    done.model,
                    ms,
                    ts(&t),
                    job.evidence_id
                ],
            )?;
            let removed = tx
                .prepare(
                    "DELETE FROM timeline_event WHERE evidence_id = ?1 AND kind = 'observation'
                     AND substr(message, 1, length(?2)) = ?2 RETURNING id",
                )?
                .query_map(params![job.evidence_id, FINDING_EVENT_PREFIX], |r| {
                    r.get::<_, i64>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for id in removed {
                tx.touched(FeedKind::Timeline, FeedOp::Deleted, incident_id, id);
            }
            for (at, what) in events {
                let msg = format!("{FINDING_EVENT_PREFIX}{}: {what}", job.evidence_id);
                let at = crate::tx::At {
                    time: *at,
                    source: opslens_domain::OccurredAtSource::Derived,
                };
                let ev = tx.add_event_at(
                    incident_id,
                    TimelineKind::Observation,
                    &msg,
                    at,
                    Some(job.evidence_id),
                )?;
                crate::people::set_author(tx, crate::people::Authored::Timeline, ev, "analysis")?;
            }
            // The screenshot shows what happened at its earliest anomaly or error.
            if let Some(first) = events.iter().map(|(at, _)| *at).min() {
                let at = crate::tx::At {
                    time: first,
                    source: opslens_domain::OccurredAtSource::Derived,
                };
                crate::event_time::set_evidence_time(tx, job.evidence_id, at)?;
            }
            tx.execute(
                "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
                params![ts(&t), incident_id],
            )?;
            tx.touched(
                FeedKind::Incident,
                FeedOp::Updated,
                incident_id,
                incident_id,
            );
        }
        (AnalysisOutcome::Answer { answer }, Some(q)) => {
            let f = with_answer(
                findings,
                serde_json::json!({
                    "job_id": job_id, "question": q, "answer": answer, "at": ts(&t),
                }),
            );
            tx.execute(
                "UPDATE evidence SET findings = ?1, updated_at = ?2 WHERE id = ?3",
                params![f.to_string(), ts(&t), job.evidence_id],
            )?;
        }
        (AnalysisOutcome::Failed { error }, None) => {
            tx.execute(
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = ?1,
                     analysis_model = ?2, updated_at = ?3 WHERE id = ?4",
                params![error, done.model, ts(&t), job.evidence_id],
            )?;
        }
        _ => {}
    }
    job_in(tx, job_id)
}

/// New findings keeping the answers to earlier questions (`questions`) of the stored ones
/// across a re-analysis. Both backends write what this decides.
pub(crate) fn keeping_answers(
    new: &serde_json::Value,
    stored: Option<String>,
) -> serde_json::Value {
    let mut f = new.clone();
    if let Some(q) = stored
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|old| old.get("questions").cloned())
    {
        f["questions"] = q;
    }
    f
}

/// The stored findings with one more answered question appended to `questions` (an empty
/// object where none are stored yet). Both backends write what this decides.
pub(crate) fn with_answer(stored: Option<String>, entry: serde_json::Value) -> serde_json::Value {
    let mut f = stored
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| serde_json::json!({}));
    match f.get_mut("questions").and_then(|v| v.as_array_mut()) {
        Some(list) => list.push(entry),
        None => f["questions"] = serde_json::json!([entry]),
    }
    f
}

#[cfg(test)]
mod tests;
