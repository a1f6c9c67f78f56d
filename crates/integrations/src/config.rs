//! Integration settings and secrets: from the environment, the OS keychain, then `secrets.env`
//! (data dir, then working dir), the first source that has a key winning (see [`crate::secrets`]).
//!
//! Values are wrapped in [`Secret`], whose `Debug` prints `***`: a config logged with `{:?}`
//! leaks nothing. Only key *names* and non-secret settings (URLs of APIs, repo names) are ever
//! shown or stored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use crate::keys::{Secret, KEY_NAMES};

/// PagerDuty REST API access.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// `PAGERDUTY_API_TOKEN` (REST API key).
    pub token: Secret,
    /// `PAGERDUTY_API_URL`, default `https://api.pagerduty.com`.
    pub api_url: String,
}

/// GitHub REST API access.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// `GITHUB_TOKEN` (PAT or installation token).
    pub token: Secret,
    /// `GITHUB_API_URL`, default `https://api.github.com`.
    pub api_url: String,
    /// `GITHUB_REPOS`, `owner/name` entries.
    pub repos: Vec<String>,
}

/// Grafana panel rendering.
#[derive(Debug, Clone)]
pub struct GrafanaConfig {
    /// `GRAFANA_URL`.
    pub url: String,
    /// `GRAFANA_TOKEN` (service-account token).
    pub token: Secret,
}

/// Datadog API access.
#[derive(Debug, Clone)]
pub struct DatadogConfig {
    /// `DATADOG_API_KEY`.
    pub api_key: Secret,
    /// `DATADOG_APP_KEY`.
    pub app_key: Secret,
    /// `DATADOG_API_URL`, default `https://api.datadoghq.com`.
    pub api_url: String,
}

/// How the outbox retries; tunable so tests (and impatient users) can shorten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total before a row is dead-lettered (`OUTBOX_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// First backoff (`OUTBOX_RETRY_BASE_MS`, default 5 s); doubles each attempt.
    pub base: Duration,
    /// Largest wait, also for `Retry-After` (`OUTBOX_RETRY_MAX_MS`, default 1 h).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(5),
            max: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `attempt + 1` (1-based `attempt` just failed): exponential with full
    /// jitter, at least `base / 2` so a hot loop is impossible; `retry_after` wins when given.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(r) = retry_after {
            return r.min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max);
        let half = cap / 2;
        half + jitter(cap - half)
    }
}

fn jitter(span: Duration) -> Duration {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    let ms = span.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(u64::from_le_bytes(b) % (ms + 1))
}

/// Everything the integrations need, parsed once at start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// All keys found, by name (values redacted in `Debug`).
    keys: BTreeMap<String, Secret>,
    /// PagerDuty REST, when `PAGERDUTY_API_TOKEN` is set.
    pub pagerduty: Option<PagerDutyConfig>,
    /// `PAGERDUTY_WEBHOOK_SECRET` for inbound v3 webhooks.
    pub pagerduty_webhook_secret: Option<Secret>,
    /// GitHub REST, when `GITHUB_TOKEN` and `GITHUB_REPOS` are set.
    pub github: Option<GitHubConfig>,
    /// `GITHUB_WEBHOOK_SECRET` for inbound webhooks.
    pub github_webhook_secret: Option<Secret>,
    /// `SLACK_WEBHOOK_URL` (incoming webhook; the URL is the credential).
    pub slack_webhook_url: Option<Secret>,
    /// `SLACK_SIGNING_SECRET` for inbound Slack requests.
    pub slack_signing_secret: Option<Secret>,
    /// `TEAMS_WEBHOOK_URL` (Workflows trigger URL; `sig=` makes it a credential).
    pub teams_webhook_url: Option<Secret>,
    /// `WEBHOOK_URLS`, comma separated: custom endpoints signed per Standard Webhooks.
    pub webhook_urls: Vec<Secret>,
    /// `WEBHOOK_SECRET` (`whsec_…`) that signs the custom webhooks.
    pub webhook_secret: Option<Secret>,
    /// `ALERT_WEBHOOK_TOKEN`: bearer token (or Events API `routing_key`) that unsigned alert
    /// senders (Alertmanager, Grafana without HMAC, generic) must present.
    pub alert_webhook_token: Option<Secret>,
    /// `GRAFANA_WEBHOOK_SECRET`: Grafana 12+ HMAC secret for alert webhooks.
    pub grafana_webhook_secret: Option<Secret>,
    /// Grafana renderer.
    pub grafana: Option<GrafanaConfig>,
    /// Datadog snapshots.
    pub datadog: Option<DatadogConfig>,
    /// Outbox retries.
    pub retry: RetryPolicy,
    /// `CORRELATION_WINDOW_MINUTES` (default 60): how long before an alert a change still counts
    /// as a suspect.
    pub correlation_window: Duration,
    /// `SYNC_LOOKBACK_HOURS` (default 24): first PagerDuty sync window.
    pub sync_lookback: Duration,
    /// `GITHUB_WINDOW_HOURS` (default 6): changes before an incident that are fetched.
    pub github_window: Duration,
    /// Retries of sync calls (`SYNC_RETRY_BASE_MS` sets the first 5xx backoff).
    pub http: crate::http::HttpPolicy,
    /// `OPSLENS_ANALYSIS_KEY`: bearer token for the OpenAI-compatible analysis server, kept
    /// with the other keys so it never sits in a command line or the environment.
    pub analysis_key: Option<Secret>,
}

impl Config {
    /// Looks every key up: (when `use_env`) the process environment, then the OS keychain
    /// (unless `OPSLENS_KEYCHAIN=off`), then `secrets.env` in `data_dir`, then `./secrets.env`;
    /// the first that has a key wins. `use_env: false` (tests) reads the files only, so neither
    /// a developer's environment nor their keychain can leak in. Empty values count as absent.
    pub fn load(data_dir: &Path, use_env: bool) -> Config {
        let keychain = if use_env {
            crate::secrets::OsKeychain::from_env()
        } else {
            None
        };
        Self::load_with(
            data_dir,
            use_env,
            keychain
                .as_ref()
                .map(|k| k as &dyn crate::secrets::KeyStore),
        )
    }

    /// [`Config::load`] with the keychain given (`None`: not asked).
    pub fn load_with(
        data_dir: &Path,
        use_env: bool,
        keychain: Option<&dyn crate::secrets::KeyStore>,
    ) -> Config {
        let r = crate::secrets::resolve(data_dir, use_env, keychain);
        if let crate::secrets::KeychainState::Unavailable(why) = &r.keychain {
            tracing::warn!(
                "no OS keychain available ({why}); integration secrets come from the environment \
                 and secrets.env only (set OPSLENS_KEYCHAIN=off to skip the keychain)"
            );
        }
        let keys = r.values.into_iter().map(|(k, (v, _))| (k, v)).collect();
        Self::from_keys(keys)
    }

    /// Builds the config from a key map (tests, and [`Config::load`]).
    pub fn from_keys(keys: BTreeMap<String, Secret>) -> Config {
        let get = |k: &str| keys.get(k).cloned();
        let plain = |k: &str, d: &str| {
            keys.get(k)
                .map(|s| s.expose().trim_end_matches('/').to_string())
                .unwrap_or_else(|| d.to_string())
        };
        let num = |k: &str, d: u64| {
            keys.get(k)
                .and_then(|s| s.expose().parse::<u64>().ok())
                .unwrap_or(d)
        };
        let list = |k: &str| -> Vec<String> {
            keys.get(k)
                .map(|s| {
                    s.expose()
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let pagerduty = get("PAGERDUTY_API_TOKEN").map(|token| PagerDutyConfig {
            token,
            api_url: plain("PAGERDUTY_API_URL", "https://api.pagerduty.com"),
        });
        let repos = list("GITHUB_REPOS");
        let github = match get("GITHUB_TOKEN") {
            Some(token) if !repos.is_empty() => Some(GitHubConfig {
                token,
                api_url: plain("GITHUB_API_URL", "https://api.github.com"),
                repos,
            }),
            _ => None,
        };
        let grafana = match (keys.get("GRAFANA_URL"), get("GRAFANA_TOKEN")) {
            (Some(_), Some(token)) => Some(GrafanaConfig {
                url: plain("GRAFANA_URL", ""),
                token,
            }),
            _ => None,
        };
        let datadog = match (get("DATADOG_API_KEY"), get("DATADOG_APP_KEY")) {
            (Some(api_key), Some(app_key)) => Some(DatadogConfig {
                api_key,
                app_key,
                api_url: plain("DATADOG_API_URL", "https://api.datadoghq.com"),
            }),
            _ => None,
        };
        let defaults = RetryPolicy::default();
        Config {
            analysis_key: get("OPSLENS_ANALYSIS_KEY"),
            pagerduty,
            pagerduty_webhook_secret: get("PAGERDUTY_WEBHOOK_SECRET"),
            github,
            github_webhook_secret: get("GITHUB_WEBHOOK_SECRET"),
            slack_webhook_url: get("SLACK_WEBHOOK_URL"),
            slack_signing_secret: get("SLACK_SIGNING_SECRET"),
            teams_webhook_url: get("TEAMS_WEBHOOK_URL"),
            webhook_urls: list("WEBHOOK_URLS").into_iter().map(Secret::new).collect(),
            webhook_secret: get("WEBHOOK_SECRET"),
            alert_webhook_token: get("ALERT_WEBHOOK_TOKEN"),
            grafana_webhook_secret: get("GRAFANA_WEBHOOK_SECRET"),
            grafana,
            datadog,
            retry: RetryPolicy {
                max_attempts: num("OUTBOX_MAX_ATTEMPTS", defaults.max_attempts as u64).max(1)
                    as u32,
                base: Duration::from_millis(num(
                    "OUTBOX_RETRY_BASE_MS",
                    defaults.base.as_millis() as u64,
                )),
                max: Duration::from_millis(num(
                    "OUTBOX_RETRY_MAX_MS",
                    defaults.max.as_millis() as u64,
                )),
            },
            correlation_window: Duration::from_secs(60 * num("CORRELATION_WINDOW_MINUTES", 60)),
            sync_lookback: Duration::from_secs(3600 * num("SYNC_LOOKBACK_HOURS", 24)),
            github_window: Duration::from_secs(3600 * num("GITHUB_WINDOW_HOURS", 6)),
            http: crate::http::HttpPolicy {
                backoff: Duration::from_millis(num("SYNC_RETRY_BASE_MS", 500)),
                ..Default::default()
            },
            keys,
        }
    }

    /// Whether a key is set (for "not configured: set X" messages; never the value).
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_file_is_read_and_debug_is_redacted() {
        let dir = std::env::temp_dir().join(format!("opslens-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("secrets.env"),
            "PAGERDUTY_API_TOKEN=pd-file-token\nGITHUB_TOKEN=ghp_file\nGITHUB_REPOS=\"o/r, o/s\"\nUNRELATED=x\nOUTBOX_MAX_ATTEMPTS=4\n",
        )
        .unwrap();
        let c = Config::load(&dir, false);
        let pd = c.pagerduty.as_ref().unwrap();
        assert_eq!(pd.token.expose(), "pd-file-token");
        assert_eq!(pd.api_url, "https://api.pagerduty.com");
        assert_eq!(c.github.as_ref().unwrap().repos, ["o/r", "o/s"]);
        assert_eq!(c.retry.max_attempts, 4);
        assert!(!c.has("UNRELATED"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pd-file-token"), "{dbg}");
        assert!(!dbg.contains("ghp_file"), "{dbg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            let cap = (100u64 << (attempt - 1).min(20)).min(1000);
            assert!(
                d.as_millis() as u64 >= cap / 2 && d.as_millis() as u64 <= cap,
                "{d:?}"
            );
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_millis(1000)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(7))),
            Duration::from_millis(7)
        );
    }
}
