//! Who hears about changes, and in which format: every configured destination (Slack, Teams,
//! each `WEBHOOK_URLS` entry) gets one message per meaningful change, queued by the store in
//! the change's own transaction (see `opslens_store::Notifier`) and sent by the outbox worker.

use std::sync::Arc;

use chrono::Utc;
use opslens_integrations::outgoing::{self, Notice};
use opslens_integrations::Config;
use opslens_store::{Change, NewOutbox, Notifier};
use tokio::sync::Notify;

use crate::integrations::new_message_id;

/// A destination, named as outbox rows name it (never by its URL: URLs are credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `SLACK_WEBHOOK_URL`, Block Kit.
    Slack,
    /// `TEAMS_WEBHOOK_URL`, Adaptive Card.
    Teams,
    /// The n-th `WEBHOOK_URLS` entry, Standard Webhooks (needs `WEBHOOK_SECRET` to sign).
    Webhook(usize),
}

impl Target {
    fn name(self) -> String {
        match self {
            Target::Slack => "slack".into(),
            Target::Teams => "teams".into(),
            Target::Webhook(i) => format!("webhook:{i}"),
        }
    }
}

/// The destinations `cfg` configures, in a stable order.
pub(crate) fn targets(cfg: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    if cfg.slack_webhook_url.is_some() {
        out.push(Target::Slack);
    }
    if cfg.teams_webhook_url.is_some() {
        out.push(Target::Teams);
    }
    if cfg.webhook_secret.is_some() {
        out.extend((0..cfg.webhook_urls.len()).map(Target::Webhook));
    }
    out
}

/// One outbox row per target for `notice`, each in its target's format with its own
/// idempotency key. `escape_text`: the text is data (titles, statements people typed), so
/// Slack must show it rather than obey `<!channel>` in it.
pub(crate) fn rows_for(targets: &[Target], notice: &Notice, escape_text: bool) -> Vec<NewOutbox> {
    targets
        .iter()
        .map(|t| {
            let payload = match t {
                Target::Slack if escape_text => {
                    let mut n = notice.clone();
                    n.text = outgoing::slack_escape(&n.text);
                    outgoing::slack_payload(&n)
                }
                Target::Slack => outgoing::slack_payload(notice),
                Target::Teams => outgoing::teams_payload(notice),
                Target::Webhook(_) => outgoing::webhook_payload(notice),
            };
            NewOutbox {
                message_id: new_message_id(),
                target: t.name(),
                event_type: notice.event_type.clone(),
                incident_id: Some(notice.incident_id),
                payload,
            }
        })
        .collect()
}

/// The store's notifier: formats each change for every configured destination and wakes the
/// outbox worker once the change has committed.
#[derive(Debug)]
pub(crate) struct Announcer {
    targets: Vec<Target>,
    wake: Arc<Notify>,
}

impl Announcer {
    /// Destinations from `cfg`; `wake` is the outbox worker's bell.
    pub(crate) fn new(cfg: &Config, wake: Arc<Notify>) -> Self {
        Announcer {
            targets: targets(cfg),
            wake,
        }
    }
}

impl Notifier for Announcer {
    fn wants(&self) -> bool {
        !self.targets.is_empty()
    }

    fn rows(&self, c: &Change) -> Vec<NewOutbox> {
        if self.targets.is_empty() {
            return Vec::new();
        }
        let notice = Notice {
            event_type: c.kind.as_str().to_string(),
            incident_id: c.incident.id,
            title: c.incident.title.clone(),
            severity: c.incident.severity.to_string(),
            status: c.incident.status.to_string(),
            text: c.text.clone(),
            timestamp: Utc::now(),
            data: c.data.clone(),
        };
        rows_for(&self.targets, &notice, true)
    }

    fn queued(&self) {
        self.wake.notify_one();
    }
}
