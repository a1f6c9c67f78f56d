//! One analysis job: read the screenshot, prompt the model, parse its findings (or keep its
//! answer to a question), and time each phase.

use std::sync::Arc;
use std::time::Instant;

use opslens_domain::AnalysisJob;
use opslens_store::{AnalysisOutcome, FinishedAnalysis};
use opslens_vlm::{EngineHandle, GenerateParams, Sampling};

use super::{findings, prompts, times, AnalysisService};

impl AnalysisService {
    /// Runs one job on the engine and describes its outcome for the store; never fails (a
    /// failure is an outcome).
    pub(super) async fn run_job(&self, h: &EngineHandle, job: &AnalysisJob) -> FinishedAnalysis {
        let model = self
            .entry
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        let started = Instant::now();
        let failed = |error: String, timings: serde_json::Value| FinishedAnalysis {
            model: model.clone(),
            timings,
            raw_output: String::new(),
            outcome: AnalysisOutcome::Failed { error },
        };
        let eid = job.evidence_id;
        let evidence = match self.db.run(move |s| s.evidence(eid)).await {
            Ok(e) => e,
            Err(e) => return failed(e.to_string(), serde_json::Value::Null),
        };
        let image = match self.db.run(move |s| s.evidence_image(eid)).await {
            Ok((path, _)) => tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                image::load_from_memory(&bytes).map_err(|e| format!("cannot decode the image: {e}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let image = match image {
            Ok(i) => i,
            Err(e) => return failed(e, serde_json::Value::Null),
        };
        let (prompt, max) = match job.question.as_deref() {
            Some(q) => (prompts::question(q), self.cfg.max_new_tokens.min(256)),
            None => (prompts::ANALYZE.to_string(), self.cfg.max_new_tokens),
        };
        let params = GenerateParams {
            max_new_tokens: max,
            sampling: Sampling::Greedy,
            system: Some(prompts::SYSTEM.to_string()),
            ..GenerateParams::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let submitted = h.submit(opslens_vlm::Job {
            image: Some(image),
            prompt,
            params,
            cancel: Arc::default(),
            on_text: None,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        });
        let generation = match submitted {
            Ok(()) => rx
                .await
                .map_err(|_| "the engine stopped during the analysis".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let total_ms = started.elapsed().as_millis() as i64;
        let g = match generation {
            Ok(g) => g,
            Err(e) => return failed(e, serde_json::json!({ "total_ms": total_ms })),
        };
        let t = &g.timings;
        let decode_s = t.decode_ms / 1000.0;
        let timings = serde_json::json!({
            "total_ms": total_ms,
            "preprocess_ms": t.preprocess_ms,
            "vision_ms": t.vision_ms,
            "prefill_ms": t.prefill_ms,
            "decode_ms": t.decode_ms,
            "prompt_tokens": g.prompt_tokens,
            "image_tokens": g.image_tokens,
            "generated_tokens": g.token_ids.len(),
            "decode_tokens_per_s": if decode_s > 0.0 { g.token_ids.len() as f64 / decode_s } else { 0.0 },
            "stop_reason": g.stop_reason,
        });
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
            timings,
            raw_output: g.text,
            outcome,
        }
    }
}
