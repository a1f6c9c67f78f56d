//! "What changed?" between two screenshots (before and after a deploy, say): the loaded model
//! gets both pictures in one prompt, numbered as its chat template numbers them, and answers in
//! a few sentences. Like a summary draft the answer is returned, not saved, and labelled as
//! machine-written; it runs on the local model only, so neither picture leaves the machine.

use image::DynamicImage;
use serde::Serialize;
use utoipa::ToSchema;

use super::summary::DraftError;
use super::{prompts, AnalysisService};

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
        let a = self
            .ask_lent_engine(
                vec![before, after],
                prompts::compare(question.as_deref()),
                prompts::SYSTEM,
                MAX_TOKENS,
                "compare the screenshots",
            )
            .await?;
        Ok(ScreenComparison {
            before_id,
            after_id,
            label: LABEL.to_string(),
            answer: a.text,
            model: a.model,
            ms: a.ms,
            generated_tokens: a.generated_tokens,
        })
    }
}
