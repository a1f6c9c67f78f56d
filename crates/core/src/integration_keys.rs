//! Setting an integration up from Settings: what each integration reads or sends where (its
//! destination with credentials masked, the kinds of events), storing its keys in the same
//! store as `opslens secrets set` (the OS keychain, else `DATA_DIR/secrets.env`), and checking
//! the keys as stored now, before a restart puts them to use.

use opslens_integrations::secrets::{self, KeyError, KeyStore, OsKeychain};
use opslens_integrations::Config;
use opslens_store::ChangeKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::integrations::{IntegrationService, INTEGRATIONS};
use crate::status::IntegrationCheck;
use crate::CoreError;

/// The changes posted to Slack, Teams and custom webhooks (one message each).
const CHANGES: [ChangeKind; 7] = [
    ChangeKind::IncidentCreated,
    ChangeKind::IncidentUpdated,
    ChangeKind::StatusUpdate,
    ChangeKind::HypothesisCreated,
    ChangeKind::HypothesisUpdated,
    ChangeKind::ActionCreated,
    ChangeKind::ActionUpdated,
];

/// A URL shown without what makes it a credential: scheme and host, the path cut.
pub fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() {
                "/…"
            } else {
                ""
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// Destination (masked), event kinds sent, and a sentence, for integration `name` under `cfg`.
pub fn describe(cfg: &Config, name: &str) -> (Option<String>, Vec<String>, String) {
    let posted: Vec<String> = CHANGES.iter().map(|c| c.as_str().to_string()).collect();
    match name {
        "pagerduty" => (
            cfg.pagerduty.as_ref().map(|p| p.api_url.clone()),
            Vec::new(),
            "reads incidents and their alerts from PagerDuty (sync); posts nothing".into(),
        ),
        "github" => (
            cfg.github
                .as_ref()
                .map(|g| format!("{} (repos: {})", g.api_url, g.repos.join(", "))),
            Vec::new(),
            "reads deployments, releases and merged pull requests of the listed repos, as \
             change evidence; posts nothing"
                .into(),
        ),
        "slack" => (
            cfg.slack_webhook_url.as_ref().map(|u| {
                format!(
                    "{} (the channel the webhook was made for)",
                    mask_url(u.expose())
                )
            }),
            posted,
            "posts a message per change of an incident to one Slack channel (incoming webhook)"
                .into(),
        ),
        "teams" => (
            cfg.teams_webhook_url.as_ref().map(|u| mask_url(u.expose())),
            posted,
            "posts an Adaptive Card per change of an incident to a Teams Workflow".into(),
        ),
        "webhooks" => (
            (!cfg.webhook_urls.is_empty()).then(|| {
                cfg.webhook_urls
                    .iter()
                    .map(|u| mask_url(u.expose()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            posted,
            "posts each change, signed per Standard Webhooks with WEBHOOK_SECRET, to every URL \
             of WEBHOOK_URLS"
                .into(),
        ),
        "grafana" => (
            cfg.grafana.as_ref().map(|g| mask_url(&g.url)),
            Vec::new(),
            "renders dashboard panels as screenshot evidence when asked; posts nothing".into(),
        ),
        "datadog" => (
            cfg.datadog.as_ref().map(|d| d.api_url.clone()),
            Vec::new(),
            "takes graph snapshots as screenshot evidence when asked; posts nothing".into(),
        ),
        _ => (None, Vec::new(), String::new()),
    }
}

/// Body of `PUT /integrations/keys/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetKey {
    /// The value, one line without control characters and not blank (a token, a webhook
    /// URL, comma-separated repos); spaces around it are dropped.
    #[schema(
        min_length = 1,
        max_length = 8192,
        pattern = r"^[^\x00-\x1F\x7F]*[^\x00-\x20\x7F\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F]*$"
    )]
    pub value: String,
}

/// Answer of `PUT /integrations/keys/{name}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyStored {
    /// The key.
    pub name: String,
    /// `keychain` or `file`.
    pub store: String,
    /// Where, in words (`the OS keychain`, the secrets.env path).
    pub stored_in: String,
    /// The environment variable of the same name is set and wins over the stored value.
    pub shadowed_by_env: bool,
    /// What the user should know next.
    pub message: String,
}

/// How long a check from Settings may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Longest value accepted (a webhook URL list fits many times over).
const MAX_VALUE: usize = 8192;

impl IntegrationService {
    /// Stores key `name` where `opslens secrets set` would (the OS keychain, else
    /// `secrets.env`; only `secrets.env` when the app reads no environment or keychain, as in
    /// tests). The running integrations keep their keys until a restart;
    /// [`IntegrationService::test_stored`] checks the stored ones now.
    pub async fn set_key(&self, name: &str, value: &str) -> Result<KeyStored, CoreError> {
        let keys = opslens_integrations::config::KEY_NAMES;
        if !keys.contains(&name) {
            return Err(CoreError::NotFound(format!(
                "{name} is not a key OpsLens reads; known keys: {}",
                keys.join(", ")
            )));
        }
        if value.chars().count() > MAX_VALUE {
            return Err(CoreError::Invalid(format!(
                "value: at most {MAX_VALUE} characters"
            )));
        }
        if value.chars().any(|c| c <= '\x1f' || c == '\x7f') {
            return Err(CoreError::Invalid(
                "value: must be one line without control characters".into(),
            ));
        }
        let value = value.trim();
        if value.is_empty() {
            return Err(CoreError::Invalid("value: must not be blank".into()));
        }
        let (key, val) = (name.to_string(), value.to_string());
        let dir = self.data_dir.clone();
        let use_keychain = self.secrets_from_env;
        let (store, stored_in) = tokio::task::spawn_blocking(move || {
            if use_keychain {
                if let Some(kc) = OsKeychain::from_env() {
                    match kc.set(&key, &val) {
                        Ok(()) => return Ok(("keychain", "the OS keychain".to_string())),
                        Err(KeyError::Unavailable(why)) => {
                            tracing::info!(%why, "no OS keychain; storing the key in secrets.env")
                        }
                        Err(e) => return Err(CoreError::Upstream(e.to_string())),
                    }
                }
            }
            crate::token::create_private_dir(&dir)
                .and_then(|()| secrets::write_file_key(&dir, &key, Some(&val)))
                .map_err(|e| {
                    CoreError::internal(
                        format!("cannot write {}", dir.join(secrets::SECRETS_FILE).display()),
                        e,
                    )
                })?;
            Ok((
                "file",
                format!("{} (mode 0600)", dir.join(secrets::SECRETS_FILE).display()),
            ))
        })
        .await??;
        let shadowed =
            self.secrets_from_env && std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        Ok(KeyStored {
            name: name.to_string(),
            store: store.into(),
            stored_in: stored_in.clone(),
            shadowed_by_env: shadowed,
            message: if shadowed {
                format!(
                    "stored in {stored_in}, but the environment variable {name} is set and wins"
                )
            } else {
                format!(
                    "stored in {stored_in}; \"Test\" checks it now, and OpsLens uses it for syncs \
                     and posts after a restart"
                )
            },
        })
    }

    /// Checks integration `name` with the keys as stored now (not those the running app read
    /// at start), by a real side-effect-free call where the service has one.
    pub async fn test_stored(&self, name: &str) -> Result<IntegrationCheck, CoreError> {
        let Some((_, keys)) = INTEGRATIONS.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = INTEGRATIONS.iter().map(|(n, _)| *n).collect();
            return Err(CoreError::NotFound(format!(
                "unknown integration {name}; known: {}",
                known.join(", ")
            )));
        };
        let dir = self.data_dir.clone();
        let use_env = self.secrets_from_env;
        let cfg = tokio::task::spawn_blocking(move || Config::load(&dir, use_env)).await?;
        let missing: Vec<&str> = keys.iter().copied().filter(|k| !cfg.has(k)).collect();
        if !missing.is_empty() {
            return Ok(IntegrationCheck {
                name: name.into(),
                configured: false,
                status: "not_configured".into(),
                latency_ms: None,
                message: format!("not configured: set {}", missing.join(", ")),
            });
        }
        let fresh = IntegrationService {
            db: self.db.clone(),
            cfg,
            http: self.http.clone(),
            // Its own bell: a check never wakes the outbox worker.
            wake: std::sync::Arc::default(),
            evidence: self.evidence.clone(),
            data_dir: self.data_dir.clone(),
            secrets_from_env: self.secrets_from_env,
        };
        // A Settings button must answer: a host that never answers is an error after 8 s.
        let (status, latency_ms, message) =
            match tokio::time::timeout(CHECK_TIMEOUT, fresh.check_one(name)).await {
                Ok(r) => r,
                Err(_) => (
                    "error".into(),
                    None,
                    format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
                ),
            };
        Ok(IntegrationCheck {
            name: name.into(),
            configured: true,
            status,
            latency_ms,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secret_parts() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(mask_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(
            mask_url("https://x.example/flow?sig=abc"),
            "https://x.example/…"
        );
        assert_eq!(mask_url("nope"), "(not a URL)");
    }
}
