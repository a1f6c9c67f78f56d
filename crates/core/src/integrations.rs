//! Integration status: which integrations are configured, their sync state, webhook and outbox
//! counts (`GET /integrations`), and live checks of each (`GET /integrations/test/all`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opslens_domain::{IntegrationError, IntegrationState};
use opslens_integrations::github::GitHub;
use opslens_integrations::outgoing::{self, SendOutcome};
use opslens_integrations::pagerduty::PagerDuty;
use opslens_integrations::{ClientError, Config};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::db::Db;
use crate::evidence::EvidenceService;
use crate::status::{IntegrationCheck, IntegrationsReport};
use crate::CoreError;

/// The integrations use-case: status and checks, syncs, signed webhooks, the outbox of
/// outgoing posts, dashboard snapshots and change correlation. Holds the integration config
/// (read once at start) and what the outbox worker waits on.
#[derive(Debug)]
pub struct IntegrationService {
    pub(crate) db: Db,
    pub(crate) cfg: Config,
    /// Client for outgoing posts (no redirects, 15 s timeout).
    pub(crate) http: reqwest::Client,
    /// Wakes the outbox worker when something is queued.
    pub(crate) wake: std::sync::Arc<Notify>,
    /// Dashboard snapshots are filed as screenshots.
    pub(crate) evidence: std::sync::Arc<EvidenceService>,
    /// Where `secrets.env` lives, for keys set from Settings and checks of stored keys.
    pub(crate) data_dir: std::path::PathBuf,
    /// Whether keys come from the environment and the OS keychain too (off in tests).
    pub(crate) secrets_from_env: bool,
}

impl IntegrationService {
    /// Wraps a loaded config; `wake` is the bell the store's notifier rings.
    pub(crate) fn new(
        db: Db,
        cfg: Config,
        wake: std::sync::Arc<Notify>,
        evidence: std::sync::Arc<EvidenceService>,
        data_dir: std::path::PathBuf,
        secrets_from_env: bool,
    ) -> Self {
        IntegrationService {
            db,
            cfg,
            http: opslens_integrations::http::client(Duration::from_secs(15)),
            wake,
            evidence,
            data_dir,
            secrets_from_env,
        }
    }

    pub(crate) fn pagerduty(&self) -> Option<PagerDuty> {
        self.cfg
            .pagerduty
            .clone()
            .map(|c| PagerDuty::new(c, self.cfg.http))
    }

    pub(crate) fn github(&self) -> Option<GitHub> {
        self.cfg
            .github
            .clone()
            .map(|c| GitHub::new(c, self.cfg.http))
    }
}

/// Integrations and the keys each needs before it can be used.
pub const INTEGRATIONS: &[(&str, &[&str])] = &[
    ("pagerduty", &["PAGERDUTY_API_TOKEN"]),
    ("github", &["GITHUB_TOKEN", "GITHUB_REPOS"]),
    ("slack", &["SLACK_WEBHOOK_URL"]),
    ("teams", &["TEAMS_WEBHOOK_URL"]),
    ("webhooks", &["WEBHOOK_URLS", "WEBHOOK_SECRET"]),
    ("grafana", &["GRAFANA_URL", "GRAFANA_TOKEN"]),
    ("datadog", &["DATADOG_API_KEY", "DATADOG_APP_KEY"]),
];

/// One integration in `GET /integrations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationInfo {
    /// `pagerduty`, `github`, …
    pub name: String,
    /// Whether its keys are present.
    pub configured: bool,
    /// Keys still missing (names only).
    pub missing_keys: Vec<String>,
    /// Sync state, for the integrations that sync.
    pub state: Option<IntegrationState>,
    /// Its last few errors (failed syncs, failed outgoing posts), newest first, so a flapping
    /// integration is told apart from one that failed once.
    pub recent_errors: Vec<IntegrationError>,
    /// The keys it needs (names only), each settable from Settings.
    pub keys: Vec<String>,
    /// What it talks to, with credentials in URLs masked; `null` while not configured.
    pub destination: Option<String>,
    /// The kinds of events it sends there (empty for integrations that only read).
    pub sends: Vec<String>,
    /// What it does, in a sentence: what it reads or sends, and where.
    pub what: String,
}

/// Errors listed per integration in `GET /integrations`.
pub const RECENT_ERRORS: u32 = 10;

/// Answer of `GET /integrations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationsOverview {
    /// One entry per known integration.
    pub integrations: Vec<IntegrationInfo>,
    /// Inbound webhook receivers and whether each has its secret.
    pub webhooks: BTreeMap<String, bool>,
    /// Deliveries recorded per provider.
    pub deliveries: BTreeMap<String, i64>,
    /// Outbox rows per status (`pending`, `delivered`, `dead`).
    pub outbox: BTreeMap<String, i64>,
}

fn check_result(r: Result<Duration, ClientError>, what: &str) -> (String, Option<u64>, String) {
    match r {
        Ok(d) => ("ok".into(), Some(d.as_millis() as u64), what.to_string()),
        Err(e) => ("error".into(), None, e.to_string()),
    }
}

impl IntegrationService {
    /// Configuration, sync state and counters of every integration.
    pub async fn integrations_overview(&self) -> Result<IntegrationsOverview, CoreError> {
        let states = self.db.run(|s| s.integration_states()).await?;
        let deliveries = self.db.run(|s| s.delivery_counts()).await?;
        let outbox = self.db.run(|s| s.outbox_counts()).await?;
        let mut errors = self
            .db
            .run(|s| {
                INTEGRATIONS
                    .iter()
                    .map(|(name, _)| s.integration_errors(name, RECENT_ERRORS))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
            .into_iter();
        let cfg = &self.cfg;
        let integrations = INTEGRATIONS
            .iter()
            .map(|(name, keys)| {
                let missing: Vec<String> = keys
                    .iter()
                    .filter(|k| !cfg.has(k))
                    .map(|k| k.to_string())
                    .collect();
                let (destination, sends, what) = crate::integration_keys::describe(cfg, name);
                IntegrationInfo {
                    name: name.to_string(),
                    configured: missing.is_empty(),
                    missing_keys: missing,
                    state: states.iter().find(|s| s.name == *name).cloned(),
                    recent_errors: errors.next().unwrap_or_default(),
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    destination,
                    sends,
                    what,
                }
            })
            .collect();
        let webhooks = [
            ("pagerduty", cfg.pagerduty_webhook_secret.is_some()),
            ("github", cfg.github_webhook_secret.is_some()),
            ("slack", cfg.slack_signing_secret.is_some()),
            (
                "grafana",
                cfg.grafana_webhook_secret.is_some() || cfg.alert_webhook_token.is_some(),
            ),
            ("alertmanager", cfg.alert_webhook_token.is_some()),
            ("events", cfg.alert_webhook_token.is_some()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(IntegrationsOverview {
            integrations,
            webhooks,
            deliveries: deliveries.into_iter().collect(),
            outbox: outbox
                .into_iter()
                .map(|(s, n)| (s.as_str().to_string(), n))
                .collect(),
        })
    }

    /// Tries every configured integration with a real, side-effect-free call where the service
    /// has one; unconfigured ones are reported as such, not as failures.
    pub async fn integrations_report(&self) -> IntegrationsReport {
        let cfg = &self.cfg;
        let mut integrations = Vec::new();
        for (name, keys) in INTEGRATIONS {
            let missing: Vec<&str> = keys.iter().copied().filter(|k| !cfg.has(k)).collect();
            if !missing.is_empty() {
                integrations.push(IntegrationCheck {
                    name: (*name).into(),
                    configured: false,
                    status: "not_configured".into(),
                    latency_ms: None,
                    message: format!(
                        "not configured: set {} in secrets.env or the environment",
                        missing.join(", ")
                    ),
                });
                continue;
            }
            let (status, latency_ms, message) = self.check_one(name).await;
            integrations.push(IntegrationCheck {
                name: (*name).into(),
                configured: true,
                status,
                latency_ms,
                message,
            });
        }
        IntegrationsReport { integrations }
    }

    pub(crate) async fn check_one(&self, name: &str) -> (String, Option<u64>, String) {
        let cfg = &self.cfg;
        match name {
            "pagerduty" => match self.pagerduty() {
                Some(pd) => check_result(pd.check().await, "API token accepted"),
                None => ("error".into(), None, "PAGERDUTY_API_TOKEN missing".into()),
            },
            "github" => match self.github() {
                Some(gh) => check_result(gh.check().await, "token accepted"),
                None => ("error".into(), None, "GITHUB_TOKEN missing".into()),
            },
            "slack" => {
                // An empty message is refused with `no_text`/`invalid_payload` by a live
                // webhook and with 403/404/410 by a revoked one: a check that posts nothing.
                let url = cfg
                    .slack_webhook_url
                    .as_ref()
                    .map(|s| s.expose().to_string());
                let start = Instant::now();
                let out = outgoing::post(
                    &self.http,
                    url.as_deref().unwrap_or(""),
                    &[],
                    b"{}".to_vec(),
                )
                .await;
                let ms = Some(start.elapsed().as_millis() as u64);
                match out {
                    SendOutcome::Permanent { status: 400, .. } | SendOutcome::Delivered(_) => {
                        ("ok".into(), ms, "webhook URL is live".into())
                    }
                    SendOutcome::Permanent { error, .. } => ("error".into(), ms, error),
                    SendOutcome::Retry { error, .. } => ("error".into(), ms, error),
                }
            }
            "teams" => (
                "not_checked".into(),
                None,
                "Teams Workflows have no side-effect-free check (any call runs the flow); \
                 send a test with POST /api/v1/incidents/{id}/notify"
                    .into(),
            ),
            "webhooks" => {
                let n = cfg.webhook_urls.len();
                let mut failures = Vec::new();
                let start = Instant::now();
                for i in 0..n {
                    let ping = serde_json::json!({"type": "opslens.ping", "timestamp": chrono::Utc::now(), "data": {}});
                    if let Err(e) = self
                        .send_to(&format!("webhook:{i}"), &new_message_id(), &ping)
                        .await
                    {
                        failures.push(format!("webhook:{i}: {e}"));
                    }
                }
                let ms = Some(start.elapsed().as_millis() as u64);
                if failures.is_empty() {
                    (
                        "ok".into(),
                        ms,
                        format!("{n} endpoint(s) accepted a signed opslens.ping"),
                    )
                } else {
                    ("error".into(), ms, failures.join("; "))
                }
            }
            "grafana" => match &cfg.grafana {
                Some(g) => {
                    let url = format!("{}/api/search?limit=1", g.url);
                    check_result(
                        timed_get(
                            &self.http,
                            &url,
                            &[("Authorization", format!("Bearer {}", g.token.expose()))],
                        )
                        .await,
                        "service-account token accepted",
                    )
                }
                None => ("error".into(), None, "GRAFANA_URL missing".into()),
            },
            "datadog" => match &cfg.datadog {
                Some(d) => {
                    let url = format!("{}/api/v1/validate", d.api_url);
                    check_result(
                        timed_get(
                            &self.http,
                            &url,
                            &[("DD-API-KEY", d.api_key.expose().to_string())],
                        )
                        .await,
                        "API key valid",
                    )
                }
                None => ("error".into(), None, "DATADOG_API_KEY missing".into()),
            },
            other => ("error".into(), None, format!("unknown integration {other}")),
        }
    }
}

/// A GET that only needs a 2xx.
async fn timed_get(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
) -> Result<Duration, ClientError> {
    let start = Instant::now();
    let mut req = http.get(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.map_err(|e| ClientError::Transport {
        service: "integration",
        message: opslens_integrations::http::without_url(&e),
    })?;
    if res.status().is_success() {
        Ok(start.elapsed())
    } else {
        Err(ClientError::Status {
            service: "integration",
            status: res.status().as_u16(),
            message: opslens_integrations::http::body_excerpt(res).await,
        })
    }
}

/// A fresh Standard Webhooks message id (`msg_` + 128 random bits).
pub(crate) fn new_message_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS randomness");
    format!("msg_{}", hex::encode(b))
}
