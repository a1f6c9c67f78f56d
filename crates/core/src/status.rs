//! Honest status reports for the model and the integrations.
//!
//! Until the analysis engine exists this says so plainly: a script
//! polling them learns what is missing and how to provide it, never a fake "ok".

use serde::Serialize;
use utoipa::ToSchema;

pub use crate::analysis::VlmStatus;

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
