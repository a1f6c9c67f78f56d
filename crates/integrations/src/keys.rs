//! The names of the keys OpsLens reads and the wrapper that keeps their values out of logs;
//! shared by the config and the secret stores, so neither depends on the other for them.

/// A credential: token, signing secret, or a webhook URL that embeds one (Slack, Teams).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The value, for the one place that sends it (a header, a URL, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Names of every key OpsLens reads, for docs and the not-configured messages.
pub const KEY_NAMES: &[&str] = &[
    "PAGERDUTY_API_TOKEN",
    "PAGERDUTY_API_URL",
    "PAGERDUTY_WEBHOOK_SECRET",
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "GITHUB_REPOS",
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_WEBHOOK_URL",
    "SLACK_SIGNING_SECRET",
    "TEAMS_WEBHOOK_URL",
    "WEBHOOK_URLS",
    "WEBHOOK_SECRET",
    "ALERT_WEBHOOK_TOKEN",
    "GRAFANA_WEBHOOK_SECRET",
    "GRAFANA_URL",
    "GRAFANA_TOKEN",
    "DATADOG_API_KEY",
    "DATADOG_APP_KEY",
    "DATADOG_API_URL",
    "OUTBOX_MAX_ATTEMPTS",
    "OUTBOX_RETRY_BASE_MS",
    "OUTBOX_RETRY_MAX_MS",
    "CORRELATION_WINDOW_MINUTES",
    "SYNC_LOOKBACK_HOURS",
    "GITHUB_WINDOW_HOURS",
    "SYNC_RETRY_BASE_MS",
    "OPSLENS_ANALYSIS_KEY",
    "OPSLENS_SERVER_URL",
    "OPSLENS_SERVER_TOKEN",
];
