//! A machine-drafted postmortem summary: the loaded analysis model, asked in text only (no
//! image), summarises the incident's timeline and findings. The draft is only returned, never
//! saved: the page inserts it, labelled as machine-written, where the user asks, so nothing a
//! person wrote is replaced without their action.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use image::DynamicImage;
use opslens_vlm::{GenerateParams, Sampling};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AnalysisService, Engine};
use crate::CoreError;

/// The first line of every drafted block: a reader of the postmortem must see that a model
/// wrote what follows.
pub const LABEL: &str = "Drafted by the local model — review before sharing";

/// Longest draft asked of the model (tokens): a summary is a paragraph, and a CPU decodes a
/// few tokens a second.
const MAX_TOKENS: usize = 320;

/// What the model is told about its task.
const SYSTEM: &str = "You are an SRE writing the summary section of a blameless incident \
postmortem. Use only the facts given; never invent times, numbers or causes.";

/// A drafted summary, for the user to insert and edit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryDraft {
    /// The label that marks machine-written text (also the first line of `block`).
    pub label: String,
    /// The model's text, trimmed.
    pub text: String,
    /// What to insert into the summary: the label, then the text, as a Markdown quote.
    pub block: String,
    /// The model that wrote it.
    pub model: String,
    /// Time the model took (milliseconds).
    pub ms: i64,
    /// Tokens the model generated.
    pub generated_tokens: usize,
}

/// What the lent engine answered, trimmed, with who and how long.
pub(super) struct LentAnswer {
    pub(super) text: String,
    pub(super) model: String,
    pub(super) ms: i64,
    pub(super) generated_tokens: usize,
}

/// Why no draft was made.
#[derive(Debug)]
pub enum DraftError {
    /// No model can write it now; `code` is `model_missing`, `model_loading` or
    /// `model_failed`, the message says what to do.
    Unavailable {
        /// Machine-readable reason.
        code: &'static str,
        /// What happened and what to do.
        message: String,
    },
    /// Anything else.
    Core(CoreError),
}

impl From<CoreError> for DraftError {
    fn from(e: CoreError) -> Self {
        DraftError::Core(e)
    }
}

/// The prompt: the incident's facts, then the request.
pub fn prompt(facts: &str) -> String {
    format!(
        "Facts of the incident, in time order:\n{facts}\n\nWrite the postmortem summary in \
         three to five plain sentences: what happened, when it started and ended, the impact, \
         and the cause if the facts state one. No headings, no lists."
    )
}

/// The block to insert: the label and the text, quoted so the label stays attached to it.
pub fn block(text: &str) -> String {
    let mut out = format!("> **{LABEL}**\n>");
    for line in text.lines() {
        out.push_str("\n> ");
        out.push_str(line.trim_end());
    }
    out
}

impl AnalysisService {
    /// Asks the loaded model for a summary of `facts`. Where the model is present but not
    /// loaded yet, starts loading it and answers `model_loading` (a 2B model takes a while).
    pub async fn draft_summary(&self, facts: &str) -> Result<SummaryDraft, DraftError> {
        let a = self
            .ask_lent_engine(
                Vec::new(),
                prompt(facts),
                SYSTEM,
                MAX_TOKENS,
                "write a summary",
            )
            .await?;
        Ok(SummaryDraft {
            label: LABEL.to_string(),
            block: block(&a.text),
            text: a.text,
            model: a.model,
            ms: a.ms,
            generated_tokens: a.generated_tokens,
        })
    }

    /// One greedy answer of the engine the worker lends (summary drafts, "what changed?"):
    /// `images` in order, then `prompt`, at most `max_tokens` (and the configured limit).
    /// Nothing is queued or saved; without a loaded engine the answer says why
    /// ([`AnalysisService::why_no_engine`]), and a failed run is `model_failed` saying it could
    /// not `what`.
    pub(super) async fn ask_lent_engine(
        &self,
        images: Vec<DynamicImage>,
        prompt: String,
        system: &str,
        max_tokens: usize,
        what: &str,
    ) -> Result<LentAnswer, DraftError> {
        self.ask_lent_engine_for(images, prompt, system, max_tokens, what, false)
            .await
    }

    /// [`AnalysisService::ask_lent_engine`] for a prompt whose answer is one JSON object
    /// (`json_answer`): the run then ends where that object closes, as queued analyses do.
    pub(super) async fn ask_lent_engine_for(
        &self,
        mut images: Vec<DynamicImage>,
        prompt: String,
        system: &str,
        max_tokens: usize,
        what: &str,
        json_answer: bool,
    ) -> Result<LentAnswer, DraftError> {
        let Some(h) = self.lent_engine() else {
            return Err(self.why_no_engine());
        };
        let model = self
            .entry
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        let params = GenerateParams {
            max_new_tokens: self.cfg.max_new_tokens.min(max_tokens),
            sampling: Sampling::Greedy,
            system: Some(system.to_string()),
            stop_at_json_end: json_answer,
            ..GenerateParams::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let image = (!images.is_empty()).then(|| images.remove(0));
        let job = opslens_vlm::Job {
            image,
            more_images: images,
            prompt,
            params,
            cancel: Arc::default(),
            on_text: None,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        };
        let started = Instant::now();
        // Off the runtime: should this be the last reference (the worker just ended), dropping
        // it joins the engine thread.
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
            message: format!("the model could not {what}: {e}"),
        })?;
        let text = match g.text.trim() {
            "" => "(the model wrote nothing)".to_string(),
            t => t.to_string(),
        };
        Ok(LentAnswer {
            text,
            model,
            ms: started.elapsed().as_millis() as i64,
            generated_tokens: g.token_ids.len(),
        })
    }

    /// Why no engine is loaded, and what happens next.
    pub(super) fn why_no_engine(&self) -> DraftError {
        let (code, message) = match (self.engine(), &self.entry) {
            (_, Err(e)) => (
                "model_missing",
                format!("OPSLENS_MODEL names no supported model: {e}"),
            ),
            (Engine::Loading(_), _) => (
                "model_loading",
                "the analysis model is loading; try again in a minute".to_string(),
            ),
            (Engine::Failed { reason, .. }, _) => ("model_failed", reason),
            (Engine::Remote { url }, _) => (
                "model_remote",
                format!(
                    "screenshots are analysed by {url}; drafting a summary needs the local model \
                     (unset OPSLENS_ANALYSIS_URL to use it)"
                ),
            ),
            (Engine::Idle | Engine::Ready { .. }, _) => match self.locate() {
                Ok(_) => {
                    self.want_engine.store(true, Ordering::Relaxed);
                    self.wake.notify_one();
                    (
                        "model_loading",
                        "the analysis model is loading now; try again in a minute".to_string(),
                    )
                }
                Err(msg) => (
                    "model_missing",
                    format!(
                        "no analysis model is installed ({msg}); download it in Settings or \
                         with `opslens models pull`"
                    ),
                ),
            },
        };
        DraftError::Unavailable { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_labelled_and_quoted_line_by_line() {
        let b = block("Checkout failed.\nRolled back at 07:40.");
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines[0], format!("> **{LABEL}**"));
        assert_eq!(
            &lines[2..],
            ["> Checkout failed.", "> Rolled back at 07:40."]
        );
        assert!(prompt("07:12:58Z deploy v2.41.0").contains("07:12:58Z deploy v2.41.0"));
    }
}
