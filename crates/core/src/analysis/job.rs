//! One analysis job: read the screenshot, prompt the engine (local or remote, the same way),
//! stream its text, parse its findings (or keep its answer to a question), and time each phase.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use opslens_domain::AnalysisJob;
use opslens_store::{AnalysisOutcome, FinishedAnalysis};

use super::engine::{Analyzer, Request};
use super::progress::AnalysisProgress;
use super::{findings, prompts, times, AnalysisService};

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl AnalysisService {
    /// Runs one job on `engine` and describes its outcome for the store; never fails (a
    /// failure is an outcome). `load_ms` is what loading the engine cost this job (0 once
    /// loaded). `cancel` set stops the run (its lease was lost).
    pub(super) async fn run_job(
        &self,
        engine: &dyn Analyzer,
        job: &AnalysisJob,
        load_ms: f64,
        cancel: Arc<AtomicBool>,
    ) -> FinishedAnalysis {
        let device = engine.device();
        let base = AnalysisProgress {
            evidence_id: job.evidence_id,
            job_id: Some(job.id),
            question: job.question.clone(),
            text: String::new(),
            state: "running".into(),
            device: Some(device.clone()),
        };
        self.progress.publish(base.clone());
        let done = self
            .run_job_inner(engine, job, load_ms, &base, cancel)
            .await;
        self.progress.publish(AnalysisProgress {
            text: done.raw_output.clone(),
            state: match done.outcome {
                AnalysisOutcome::Failed { .. } => "failed".into(),
                _ => "done".into(),
            },
            ..base
        });
        FinishedAnalysis {
            worker: Some(self.worker_id.clone()),
            device: Some(device),
            ..done
        }
    }

    async fn run_job_inner(
        &self,
        engine: &dyn Analyzer,
        job: &AnalysisJob,
        load_ms: f64,
        base: &AnalysisProgress,
        cancel: Arc<AtomicBool>,
    ) -> FinishedAnalysis {
        let model = self.model_name();
        let started = Instant::now();
        let mut timings = serde_json::Map::new();
        timings.insert("load_ms".into(), load_ms.into());
        let failed =
            |error: String, timings: serde_json::Map<String, serde_json::Value>| FinishedAnalysis {
                model: model.clone(),
                timings: serde_json::Value::Object(timings),
                raw_output: String::new(),
                outcome: AnalysisOutcome::Failed { error },
                worker: None,
                device: None,
            };
        let eid = job.evidence_id;
        let evidence = match self.db.run(move |s| s.evidence(eid)).await {
            Ok(e) => e,
            Err(e) => return failed(e.to_string(), timings),
        };
        let read = Instant::now();
        let image = match self.db.run(move |s| s.evidence_image(eid)).await {
            Ok((path, mime)) => tokio::fs::read(&path)
                .await
                .map(|b| (b, mime))
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Err(e) => Err(e.to_string()),
        };
        timings.insert("read_ms".into(), ms(read).into());
        let (image, mime) = match image {
            Ok(i) => i,
            Err(e) => return failed(e, timings),
        };
        let (prompt, max) = match job.question.as_deref() {
            Some(q) => (prompts::question(q), self.cfg.max_new_tokens.min(256)),
            None => (prompts::ANALYZE.to_string(), self.cfg.max_new_tokens),
        };
        let req = Request {
            image,
            mime,
            system: prompts::SYSTEM.to_string(),
            prompt,
            max_new_tokens: max,
            stop_at_json_end: job.question.is_none(),
        };
        let generation = engine
            .generate(req, self.progress.sink(base.clone()), cancel)
            .await;
        timings.insert("total_ms".into(), (ms(started) as i64).into());
        let g = match generation {
            Ok(g) => g,
            Err(e) => return failed(e, timings),
        };
        timings.extend(g.timings);
        if let Some(e) = g.embedding {
            // Once per blob and model, for the similar-incidents ranking; a failure to keep it
            // only costs that ranking this screenshot's vector, never the analysis.
            let sha = evidence.sha256.clone();
            if let Err(err) = self
                .db
                .run(move |s| s.put_embedding(&sha, &e.model, &e.vector))
                .await
            {
                tracing::warn!(evidence = eid, error = %err, "screenshot embedding not stored");
            }
        }
        let total_ms = started.elapsed().as_millis() as i64;
        let outcome = match job.question {
            Some(_) => AnalysisOutcome::Answer {
                answer: match g.text.trim() {
                    "" => "(the model gave no answer)".to_string(),
                    a => a.to_string(),
                },
            },
            None => {
                let f = findings::parse(&g.text);
                let events = times::events(&f, evidence.created_at);
                AnalysisOutcome::Findings {
                    content: findings::render(&f),
                    findings: serde_json::to_value(&f).unwrap_or_default(),
                    ms: total_ms,
                    events,
                }
            }
        };
        FinishedAnalysis {
            model,
            timings: serde_json::Value::Object(timings),
            raw_output: g.text,
            outcome,
            worker: None,
            device: None,
        }
    }
}
