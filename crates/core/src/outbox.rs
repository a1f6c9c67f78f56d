//! Outgoing posts through the persistent outbox: queued in SQLite, sent by one background
//! worker, retried with backoff (honouring `Retry-After`), dead-lettered after the last try or
//! at once on a 4xx other than 408/429, and revivable through the API.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use opslens_domain::{OutboxMessage, OutboxStatus};
use opslens_integrations::outgoing::{self, Notice, SendOutcome};
use opslens_integrations::signature::standard_key;
use opslens_store::OutboxResult;

use crate::integrations::IntegrationService;
use crate::CoreError;

/// Longest the worker sleeps without looking at the table (rows queued by another process).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// Rows sent per round.
const BATCH: u32 = 20;

/// Starts the worker; it holds only a weak reference, so it ends when the service is dropped.
pub(crate) fn spawn_worker(service: &Arc<IntegrationService>) {
    let weak = Arc::downgrade(service);
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(worker(weak));
}

async fn worker(weak: Weak<IntegrationService>) {
    loop {
        let Some(s) = weak.upgrade() else { return };
        if let Err(e) = s.process_outbox().await {
            tracing::warn!(error = %e, "outbox round failed");
        }
        let wait = match s.db.run(|st| st.next_outbox_due()).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(IDLE_POLL),
            _ => IDLE_POLL,
        };
        // Wake early when something is queued; never hold the service while sleeping.
        let wake = s.wake.clone();
        let notified = async move { wake.notified().await };
        drop(s);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notified => {}
        }
    }
}

impl IntegrationService {
    /// Sends every due row once and records the outcome.
    pub(crate) async fn process_outbox(&self) -> Result<usize, CoreError> {
        let due = self.db.run(|s| s.due_outbox(&Utc::now(), BATCH)).await?;
        let n = due.len();
        for m in due {
            let outcome = self.attempt(&m).await;
            let id = m.id;
            self.db
                .run(move |s| s.record_outbox_attempt(id, &outcome))
                .await?;
        }
        Ok(n)
    }

    async fn attempt(&self, m: &OutboxMessage) -> OutboxResult {
        let policy = self.cfg.retry;
        let attempt = m.attempts as u32 + 1;
        match self.send_raw(&m.target, &m.message_id, &m.payload).await {
            SendOutcome::Delivered(status) => OutboxResult::Delivered {
                status: status as i64,
            },
            SendOutcome::Permanent { status, error } => OutboxResult::Dead {
                status: Some(status as i64),
                error,
            },
            SendOutcome::Retry { status, error, .. } if attempt >= policy.max_attempts => {
                OutboxResult::Dead {
                    status: status.map(|s| s as i64),
                    error: format!("gave up after {attempt} attempts; last: {error}"),
                }
            }
            SendOutcome::Retry {
                status,
                error,
                retry_after,
            } => {
                let wait = policy.delay(attempt, retry_after);
                OutboxResult::Retry {
                    status: status.map(|s| s as i64),
                    error,
                    next: Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
                }
            }
        }
    }

    /// One POST to a named target; the URL comes from the config, never from the row.
    async fn send_raw(
        &self,
        target: &str,
        message_id: &str,
        payload: &serde_json::Value,
    ) -> SendOutcome {
        let cfg = &self.cfg;
        let body = payload.to_string().into_bytes();
        let not_configured = |what: &str| SendOutcome::Permanent {
            status: 0,
            error: format!("{what} is no longer configured"),
        };
        match target {
            "slack" => match &cfg.slack_webhook_url {
                Some(u) => outgoing::post(&self.http, u.expose(), &[], body).await,
                None => not_configured("SLACK_WEBHOOK_URL"),
            },
            "teams" => match &cfg.teams_webhook_url {
                Some(u) => outgoing::post(&self.http, u.expose(), &[], body).await,
                None => not_configured("TEAMS_WEBHOOK_URL"),
            },
            t => {
                let idx = t
                    .strip_prefix("webhook:")
                    .and_then(|i| i.parse::<usize>().ok());
                let url = idx.and_then(|i| cfg.webhook_urls.get(i));
                let key = cfg
                    .webhook_secret
                    .as_ref()
                    .and_then(|s| standard_key(s.expose()));
                match (url, key) {
                    (Some(u), Some(k)) => {
                        let headers = outgoing::standard_headers(
                            &k,
                            message_id,
                            Utc::now().timestamp(),
                            &body,
                        );
                        outgoing::post(&self.http, u.expose(), &headers, body).await
                    }
                    (None, _) => not_configured(t),
                    (_, None) => not_configured("WEBHOOK_SECRET (whsec_…)"),
                }
            }
        }
    }

    /// Sends once, outside the outbox (connection checks).
    pub(crate) async fn send_to(
        &self,
        target: &str,
        message_id: &str,
        payload: &serde_json::Value,
    ) -> Result<(), String> {
        match self.send_raw(target, message_id, payload).await {
            SendOutcome::Delivered(_) => Ok(()),
            SendOutcome::Retry { error, .. } | SendOutcome::Permanent { error, .. } => Err(error),
        }
    }

    /// Queues a status post about an incident to every configured target (Slack, Teams, each
    /// custom webhook); the worker sends them.
    pub async fn notify(
        &self,
        incident_id: i64,
        text: Option<String>,
    ) -> Result<Vec<OutboxMessage>, CoreError> {
        crate::validate::optional_text("text", text.as_deref())?;
        let inc = self.db.incident(incident_id).await?;
        let notice = Notice {
            event_type: "incident.updated".into(),
            incident_id,
            title: inc.title,
            severity: inc.severity.to_string(),
            status: inc.status.to_string(),
            text: text.unwrap_or_default(),
            timestamp: Utc::now(),
            data: Default::default(),
        };
        // The caller writes this text for the channel: Slack mrkdwn (links, mentions) is kept.
        let rows = crate::notify::rows_for(&crate::notify::targets(&self.cfg), &notice, false);
        if rows.is_empty() {
            return Err(CoreError::NotConfigured(
                "no outgoing integration is configured: set SLACK_WEBHOOK_URL, TEAMS_WEBHOOK_URL \
                 or WEBHOOK_URLS + WEBHOOK_SECRET in secrets.env"
                    .into(),
            ));
        }
        let queued = self.db.run(move |s| s.enqueue_outbox(&rows)).await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Outbox rows, newest first.
    pub async fn outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, CoreError> {
        let limit = limit.clamp(1, 500);
        self.db.run(move |s| s.list_outbox(status, limit)).await
    }

    /// Revives a dead-lettered row (fresh attempts, due now).
    pub async fn retry_outbox(&self, id: i64) -> Result<OutboxMessage, CoreError> {
        let m = self.db.run(move |s| s.retry_outbox(id)).await?;
        self.wake.notify_one();
        Ok(m)
    }
}
