//! Honest status reports for the model and the integrations.
//!
//! Until the analysis engine exists this says so plainly: a script
//! polling them learns what is missing and how to provide it, never a fake "ok".

use std::collections::BTreeMap;

use opslens_domain::AnalysisState;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{CoreError, Services};

/// Default model of OpsLens (see `models/`).
pub const DEFAULT_MODEL: &str = "Qwen/Qwen3-VL-2B-Instruct";

/// Answer of `GET /test/vlm/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VlmStatus {
    /// Model that analyses screenshots.
    pub model: String,
    /// `missing`, `downloading`, `loading`, `ready` or `failed`.
    pub state: String,
    /// Whether the model is loaded in memory.
    pub loaded: bool,
    /// Compute device (`cpu`, `cuda:0`, `metal`).
    pub device: String,
    /// Screenshots waiting for the model, queued or being analysed now.
    pub queue_length: i64,
    /// Per-state counts behind `queue_length`.
    pub queue: BTreeMap<String, i64>,
    /// Timings of the most recent analysis, when there was one.
    #[schema(value_type = Option<Object>)]
    pub last_analysis: Option<serde_json::Value>,
    /// What to do next, in words.
    pub message: String,
}

impl Services {
    /// Model status. No analysis engine is wired in this build yet, so the model is reported
    /// missing and screenshots wait for it.
    pub async fn vlm_status(&self) -> Result<VlmStatus, CoreError> {
        let backlog = self.analysis_backlog().await?;
        let queue: BTreeMap<String, i64> = backlog
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect();
        let queue_length = backlog.iter().map(|(_, n)| n).sum();
        let waiting = queue
            .get(AnalysisState::WaitingForModel.as_str())
            .copied()
            .unwrap_or(0);
        Ok(VlmStatus {
            model: DEFAULT_MODEL.into(),
            state: "missing".into(),
            loaded: false,
            device: "cpu".into(),
            queue_length,
            queue,
            last_analysis: None,
            message: format!(
                "No model is configured: screenshots are stored with analysis state \
                 `waiting-for-model` ({waiting} waiting) and are analysed once the local model \
                 is installed; this build has no analysis engine yet."
            ),
        })
    }
}

/// Answer of `GET /integrations/test/all`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationsReport {
    /// One entry per known integration.
    pub integrations: Vec<IntegrationCheck>,
}

/// Result of trying one integration.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationCheck {
    /// `pagerduty`, `github`, …
    pub name: String,
    /// Whether its keys are present.
    pub configured: bool,
    /// `ok`, `error`, `not_configured` or `not_checked`.
    pub status: String,
    /// Round trip of the check call.
    pub latency_ms: Option<u64>,
    /// What happened, or what to set.
    pub message: String,
}
