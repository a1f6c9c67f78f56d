//! "What changed?" between two screenshots (before and after a deploy, say): the loaded model
//! gets both pictures in one prompt, numbered as its chat template numbers them, and answers in
//! a few sentences. Like a summary draft the answer is returned, not saved, and labelled as
//! machine-written; it runs on the local model only, so neither picture leaves the machine.

use std::sync::Arc;
use std::time::Instant;

use image::DynamicImage;
use opslens_vlm::{GenerateParams, Sampling};
use serde::Serialize;
use utoipa::ToSchema;

use super::summary::DraftError;
use super::{prompts, AnalysisService};
use crate::CoreError;

/// Longest answer asked of the model (tokens).
const MAX_TOKENS: usize = 256;

/// The label shown beside every comparison answer.
pub const LABEL: &str = "Written by the local model — check it against the pictures";

/// The model's answer to "what changed?".
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScreenComparison {
    /// The earlier screenshot (picture 1).
    pub before_id: i64,
    /// The later screenshot (picture 2).
    pub after_id: i64,
    /// The label marking machine-written text.
    pub label: String,
    /// The model's answer, trimmed.
    pub answer: String,
    /// The model that wrote it.
    pub model: String,
    /// Time the model took (milliseconds).
    pub ms: i64,
    /// Tokens the model generated.
    pub generated_tokens: usize,
}

impl AnalysisService {
    /// Asks the loaded model what changed from `before` to `after` (decoded screenshots).
    /// Where the model is present but not loaded, starts loading it and answers
    /// `model_loading`, as summary drafts do.
    pub async fn compare(
        &self,
        (before_id, before): (i64, DynamicImage),
        (after_id, after): (i64, DynamicImage),
        question: Option<String>,
    ) -> Result<ScreenComparison, DraftError> {
        let Some(h) = self.lent_engine() else {
            return Err(self.why_no_engine());
        };
        let model = self
            .entry
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        let params = GenerateParams {
            max_new_tokens: self.cfg.max_new_tokens.min(MAX_TOKENS),
            sampling: Sampling::Greedy,
            system: Some(prompts::SYSTEM.to_string()),
            ..GenerateParams::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = opslens_vlm::Job {
            image: Some(before),
            more_images: vec![after],
            prompt: prompts::compare(question.as_deref()),
            params,
            cancel: Arc::default(),
            on_text: None,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        };
        let started = Instant::now();
        // Off the runtime: should this be the last reference, dropping it joins the thread.
        let submitted = tokio::task::spawn_blocking(move || h.submit(job))
            .await
            .map_err(CoreError::from)?;
        let g = match submitted {
            Ok(()) => rx.await.map_err(|_| "the engine stopped".to_string()),
            Err(e) => Err(e.to_string()),
        }
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| DraftError::Unavailable {
            code: "model_failed",
            message: format!("the model could not compare the screenshots: {e}"),
        })?;
        let answer = match g.text.trim() {
            "" => "(the model wrote nothing)".to_string(),
            t => t.to_string(),
        };
        Ok(ScreenComparison {
            before_id,
            after_id,
            label: LABEL.to_string(),
            answer,
            model,
            ms: started.elapsed().as_millis() as i64,
            generated_tokens: g.token_ids.len(),
        })
    }
}
