//! The analysis queue on PostgreSQL (as `crate::analysis`). Jobs are taken with
//! `FOR UPDATE SKIP LOCKED` outside the write lock, so workers on several replicas take
//! different jobs at once and never the same one.

use opslens_domain::{
    AnalysisJob, AnalysisState, FeedKind, FeedOp, OccurredAtSource, TimelineKind,
};
use postgres::types::ToSql;
use postgres::{GenericClient, Row};

use super::row::{en, ot, t};
use super::work::set_evidence_time;
use super::{PgStore, PgTx};
use crate::analysis::{
    keeping_answers, with_answer, AnalysisOutcome, FinishedAnalysis, OthersProgress,
    FINDING_EVENT_PREFIX,
};
use crate::row::{now, ts};
use crate::{At, Result, StoreError};

const JOB_COLUMNS: &str = "id, evidence_id, question, state, attempts, model, answer, error, \
     timings, created_at, started_at, finished_at, leased_by, device, lease_until";

fn job_from_row(r: &Row) -> Result<AnalysisJob> {
    Ok(AnalysisJob {
        id: r.try_get("id")?,
        evidence_id: r.try_get("evidence_id")?,
        question: r.try_get("question")?,
        state: en(r, "state")?,
        attempts: r.try_get("attempts")?,
        model: r.try_get("model")?,
        answer: r.try_get("answer")?,
        error: r.try_get("error")?,
        timings: r
            .try_get::<_, Option<String>>("timings")?
            .and_then(|s| serde_json::from_str(&s).ok()),
        created_at: t(r, "created_at")?,
        started_at: ot(r, "started_at")?,
        finished_at: ot(r, "finished_at")?,
        worker: r.try_get("leased_by")?,
        device: r.try_get("device")?,
        lease_until: ot(r, "lease_until")?,
    })
}

fn job_in(c: &mut impl GenericClient, id: i64) -> Result<AnalysisJob> {
    match c.query_opt(
        &format!("SELECT {JOB_COLUMNS} FROM analysis_job WHERE id = $1"),
        &[&id],
    )? {
        Some(r) => job_from_row(&r),
        None => Err(StoreError::NotFound {
            what: "analysis job",
            id,
        }),
    }
}

/// Runs an `UPDATE evidence … RETURNING id, incident_id` and records each row as updated.
fn updated_evidence(tx: &mut PgTx<'_, '_>, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<usize> {
    let rows: Vec<(i64, i64)> =
        tx.c.query(sql, p)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    for &(id, incident_id) in &rows {
        tx.touched(FeedKind::Evidence, FeedOp::Updated, incident_id, id);
    }
    Ok(rows.len())
}

fn lease_end(lease: std::time::Duration) -> String {
    ts(&(now() + chrono::Duration::from_std(lease).unwrap_or_default()))
}

impl PgStore {
    pub(crate) fn enqueue_analysis_pg(
        &self,
        evidence_id: i64,
        question: Option<&str>,
        model_present: bool,
    ) -> Result<AnalysisJob> {
        self.write(|tx| {
            let (is_image, ev_type): (bool, String) = tx
                .c
                .query_opt(
                    "SELECT blob_path IS NOT NULL, evidence_type FROM evidence WHERE id = $1",
                    &[&evidence_id],
                )?
                .map(|r| (r.get(0), r.get(1)))
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
                    .c
                    .query_opt(
                        "SELECT id FROM analysis_job WHERE evidence_id = $1 AND question IS NULL
                         AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                        &[&evidence_id],
                    )?
                    .map(|r| r.get(0));
                if let Some(id) = pending {
                    if model_present
                        && tx.c.execute(
                            "UPDATE evidence SET analysis_state = 'queued'
                             WHERE id = $1 AND analysis_state = 'waiting-for-model'",
                            &[&evidence_id],
                        )? > 0
                    {
                        tx.evidence_updated(evidence_id)?;
                    }
                    return job_in(&mut tx.c, id);
                }
            }
            let now_t = now();
            let id: i64 = tx
                .c
                .query_one(
                    "INSERT INTO analysis_job(evidence_id, question, state, created_at)
                     VALUES ($1, $2, 'queued', $3) RETURNING id",
                    &[&evidence_id, &question, &ts(&now_t)],
                )?
                .get(0);
            tx.evidence_updated(evidence_id)?;
            if question.is_none() {
                let state = if model_present {
                    AnalysisState::Queued
                } else {
                    AnalysisState::WaitingForModel
                };
                tx.c.execute(
                    "UPDATE evidence SET analysis_state = $1, analysis_error = NULL, updated_at = $2 WHERE id = $3",
                    &[&state.as_str(), &ts(&now_t), &evidence_id],
                )?;
            }
            job_in(&mut tx.c, id)
        })
    }

    pub(crate) fn take_analysis_job_pg(
        &self,
        worker: &str,
        lease: std::time::Duration,
        max_attempts: i64,
    ) -> Result<Option<AnalysisJob>> {
        self.write_queue(|tx| {
            let t = ts(&now());
            let until = lease_end(lease);
            let msg = format!(
                "its worker stopped {max_attempts} times during the analysis (lease not renewed); \
                 POST /api/v1/evidence/{{id}}/analyze to try again"
            );
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = $1, updated_at = $2
                 WHERE id IN (SELECT evidence_id FROM analysis_job
                              WHERE state = 'running' AND question IS NULL AND lease_until < $2
                              AND attempts >= $3)
                 RETURNING id, incident_id",
                &[&msg, &t, &max_attempts],
            )?;
            tx.c.execute(
                "UPDATE analysis_job SET state = 'failed', error = $1, finished_at = $2, lease_until = NULL
                 WHERE state = 'running' AND lease_until < $2 AND attempts >= $3",
                &[&msg, &t, &max_attempts],
            )?;
            let taken: Option<(i64, i64, bool)> = tx
                .c
                .query_opt(
                    "UPDATE analysis_job SET state = 'running', attempts = attempts + 1, started_at = $1,
                         leased_by = $2, lease_until = $3
                     WHERE id = (SELECT id FROM analysis_job
                                 WHERE state = 'queued' OR (state = 'running' AND lease_until < $1)
                                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING id, evidence_id, question IS NULL",
                    &[&t, &worker, &until],
                )?
                .map(|r| (r.get(0), r.get(1), r.get(2)));
            let Some((id, evidence_id, full)) = taken else {
                return Ok(None);
            };
            if full {
                tx.c.execute(
                    "UPDATE evidence SET analysis_state = 'running', updated_at = $1 WHERE id = $2",
                    &[&t, &evidence_id],
                )?;
            }
            tx.evidence_updated(evidence_id)?;
            job_in(&mut tx.c, id).map(Some)
        })
    }

    pub(crate) fn renew_analysis_lease_pg(
        &self,
        job_id: i64,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<bool> {
        self.write_queue(|tx| {
            Ok(tx.c.execute(
                "UPDATE analysis_job SET lease_until = $1
                 WHERE id = $2 AND leased_by = $3 AND state = 'running'",
                &[&lease_end(lease), &job_id, &worker],
            )? == 1)
        })
    }

    pub(crate) fn finish_analysis_job_pg(
        &self,
        job_id: i64,
        done: &FinishedAnalysis,
    ) -> Result<AnalysisJob> {
        self.write(|tx| finish_in(tx, job_id, done))
    }

    pub(crate) fn requeue_interrupted_analyses_pg(
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
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = $1, updated_at = $2
                 WHERE id IN (SELECT evidence_id FROM analysis_job
                              WHERE state = 'running' AND question IS NULL AND attempts >= $3
                              AND (leased_by IS NULL OR leased_by = $4))
                 RETURNING id, incident_id",
                &[&msg, &t, &max_attempts, &worker],
            )?;
            let failed = tx.c.execute(
                "UPDATE analysis_job SET state = 'failed', error = $1, finished_at = $2, lease_until = NULL
                 WHERE state = 'running' AND attempts >= $3 AND (leased_by IS NULL OR leased_by = $4)",
                &[&msg, &t, &max_attempts, &worker],
            )?;
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = 'queued', updated_at = $1
                 WHERE id IN (SELECT evidence_id FROM analysis_job WHERE state = 'running' AND question IS NULL
                              AND (leased_by IS NULL OR leased_by = $2))
                 RETURNING id, incident_id",
                &[&t, &worker],
            )?;
            let requeued = tx.c.execute(
                "UPDATE analysis_job SET state = 'queued', lease_until = NULL
                 WHERE state = 'running' AND (leased_by IS NULL OR leased_by = $1)",
                &[&worker],
            )?;
            Ok((requeued as usize, failed as usize))
        })
    }

    pub(crate) fn set_analysis_waiting_pg(&self, waiting: bool) -> Result<usize> {
        let (from, to) = if waiting {
            (AnalysisState::Queued, AnalysisState::WaitingForModel)
        } else {
            (AnalysisState::WaitingForModel, AnalysisState::Queued)
        };
        self.write(|tx| {
            updated_evidence(
                tx,
                "UPDATE evidence SET analysis_state = $1, updated_at = $2
                 WHERE analysis_state = $3 AND EXISTS
                   (SELECT 1 FROM analysis_job j
                    WHERE j.evidence_id = evidence.id AND j.state = 'queued' AND j.question IS NULL)
                 RETURNING id, incident_id",
                &[&to.as_str(), &ts(&now()), &from.as_str()],
            )
        })
    }

    pub(crate) fn analysis_job_pg(&self, id: i64) -> Result<AnalysisJob> {
        self.read(|c| job_in(c, id))
    }

    pub(crate) fn analysis_jobs_of_pg(&self, evidence_id: i64) -> Result<Vec<AnalysisJob>> {
        self.read(|c| {
            c.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM analysis_job WHERE evidence_id = $1 ORDER BY id"
                ),
                &[&evidence_id],
            )?
            .iter()
            .map(job_from_row)
            .collect()
        })
    }

    pub(crate) fn has_pending_analysis_pg(&self) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT EXISTS(SELECT 1 FROM analysis_job WHERE state = 'queued')
                     OR EXISTS(SELECT 1 FROM analysis_job WHERE state = 'running' AND lease_until < $1)",
                &[&ts(&now())],
            )?
            .get(0))
        })
    }

    pub(crate) fn analyses_by_others_since_pg(
        &self,
        me: &str,
        since: Option<&str>,
    ) -> Result<OthersProgress> {
        self.read(|c| {
            let newest: Option<String> = c
                .query_one(
                    "SELECT max(greatest(coalesce(started_at, ''), coalesce(finished_at, '')))
                     FROM analysis_job WHERE leased_by IS NOT NULL AND leased_by != $1",
                    &[&me],
                )?
                .get(0);
            let Some(since) = since else {
                return Ok((Vec::new(), newest));
            };
            let rows = c
                .query(
                    "SELECT DISTINCT j.evidence_id, e.incident_id FROM analysis_job j
                     JOIN evidence e ON e.id = j.evidence_id
                     WHERE j.leased_by IS NOT NULL AND j.leased_by != $1
                       AND (j.started_at > $2 OR j.finished_at > $2)",
                    &[&me, &since],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok((rows, newest.or_else(|| Some(since.to_string()))))
        })
    }

    pub(crate) fn pending_analysis_count_pg(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT COUNT(*) FROM analysis_job WHERE state IN ('queued', 'running')",
                &[],
            )?
            .get(0))
        })
    }

    pub(crate) fn last_finished_analysis_pg(&self) -> Result<Option<AnalysisJob>> {
        self.read(|c| {
            c.query_opt(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM analysis_job WHERE state = 'done'
                     ORDER BY finished_at DESC, id DESC LIMIT 1"
                ),
                &[],
            )?
            .map(|r| job_from_row(&r))
            .transpose()
        })
    }
}

/// Records the end of job `job_id` with everything it produced, inside `tx` (as
/// `crate::analysis::finish_in`): also used when an upload brings findings made elsewhere.
pub(crate) fn finish_in(
    tx: &mut PgTx<'_, '_>,
    job_id: i64,
    done: &FinishedAnalysis,
) -> Result<AnalysisJob> {
    let job = job_in(&mut tx.c, job_id)?;
    if let Some(w) = &done.worker {
        if job.state != AnalysisState::Running || job.worker.as_deref() != Some(w.as_str()) {
            return Err(StoreError::Conflict(format!(
                "analysis job {job_id} is no longer leased to {w} (now {} by {}); its result is not recorded",
                job.state.as_str(),
                job.worker.as_deref().unwrap_or("nobody")
            )));
        }
    }
    let now_t = now();
    let (state, answer, error) = match &done.outcome {
        AnalysisOutcome::Findings { .. } => (AnalysisState::Done, None, None),
        AnalysisOutcome::Answer { answer } => (AnalysisState::Done, Some(answer.as_str()), None),
        AnalysisOutcome::Failed { error } => (AnalysisState::Failed, None, Some(error.as_str())),
    };
    tx.c.execute(
        "UPDATE analysis_job SET state = $1, model = $2, answer = $3, error = $4, timings = $5,
             raw_output = $6, finished_at = $7, lease_until = NULL,
             device = coalesce($9, device), leased_by = coalesce($10, leased_by)
         WHERE id = $8",
        &[
            &state.as_str(),
            &done.model,
            &answer,
            &error,
            &done.timings.to_string(),
            &done.raw_output,
            &ts(&now_t),
            &job_id,
            &done.device,
            &done.worker,
        ],
    )?;
    let (incident_id, findings): (i64, Option<String>) =
        tx.c.query_one(
            "SELECT incident_id, findings FROM evidence WHERE id = $1",
            &[&job.evidence_id],
        )
        .map(|r| (r.get(0), r.get(1)))?;
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
            tx.c.execute(
                "UPDATE evidence SET analysis_state = 'done', content = $1, findings = $2,
                     analysis_model = $3, analysis_error = NULL, analysis_ms = $4, updated_at = $5
                 WHERE id = $6",
                &[
                    content,
                    &f.to_string(),
                    &done.model,
                    ms,
                    &ts(&now_t),
                    &job.evidence_id,
                ],
            )?;
            let removed: Vec<i64> =
                tx.c.query(
                    "DELETE FROM timeline_event WHERE evidence_id = $1 AND kind = 'observation'
                     AND left(message, length($2)) = $2 RETURNING id",
                    &[&job.evidence_id, &FINDING_EVENT_PREFIX],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for id in removed {
                tx.touched(FeedKind::Timeline, FeedOp::Deleted, incident_id, id);
            }
            for (at, what) in events {
                let msg = format!("{FINDING_EVENT_PREFIX}{}: {what}", job.evidence_id);
                let at = At {
                    time: *at,
                    source: OccurredAtSource::Derived,
                };
                let ev = tx.add_event_at(
                    incident_id,
                    TimelineKind::Observation,
                    &msg,
                    at,
                    Some(job.evidence_id),
                )?;
                tx.c.execute(
                    "UPDATE timeline_event SET author = 'analysis' WHERE id = $1",
                    &[&ev],
                )?;
            }
            if let Some(first) = events.iter().map(|(at, _)| *at).min() {
                let at = At {
                    time: first,
                    source: OccurredAtSource::Derived,
                };
                set_evidence_time(tx, job.evidence_id, at)?;
            }
            tx.c.execute(
                "UPDATE incident SET updated_at = $1 WHERE id = $2",
                &[&ts(&now_t), &incident_id],
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
                    "job_id": job_id, "question": q, "answer": answer, "at": ts(&now_t),
                }),
            );
            tx.c.execute(
                "UPDATE evidence SET findings = $1, updated_at = $2 WHERE id = $3",
                &[&f.to_string(), &ts(&now_t), &job.evidence_id],
            )?;
        }
        (AnalysisOutcome::Failed { error }, None) => {
            tx.c.execute(
                "UPDATE evidence SET analysis_state = 'failed', analysis_error = $1,
                     analysis_model = $2, updated_at = $3 WHERE id = $4",
                &[error, &done.model, &ts(&now_t), &job.evidence_id],
            )?;
        }
        _ => {}
    }
    job_in(&mut tx.c, job_id)
}
