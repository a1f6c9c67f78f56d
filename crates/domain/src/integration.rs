//! Integration bookkeeping shown over the API: sync state per integration and the outbox of
//! outgoing posts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

/// Where an outgoing post is: waiting (maybe after failures), delivered, or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Dead-lettered: a permanent 4xx, or every attempt failed. `POST …/retry` revives it.
    Dead,
}

impl OutboxStatus {
    /// Spelling in the database and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    /// Parses the spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// One outgoing post in the persistent outbox. The destination is named by `target` (e.g.
/// `slack`, `webhook:0`), never by its URL: Slack and Teams URLs are credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// Idempotency key, sent as `webhook-id` to custom endpoints (stable across retries).
    pub message_id: String,
    /// Destination: `slack`, `teams` or `webhook:<n>` (index in `WEBHOOK_URLS`).
    pub target: String,
    /// What happened, e.g. `incident.updated`.
    pub event_type: String,
    /// The incident it is about.
    pub incident_id: Option<i64>,
    /// Body to send (already in the target's format).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// Next try, for pending rows.
    pub next_attempt_at: DateTime<Utc>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Sync bookkeeping of one integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationState {
    /// `pagerduty`, `github`, …
    pub name: String,
    /// Last sync attempt.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Last sync that finished without error.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Where the next sync starts (e.g. the `until` of the last PagerDuty window).
    pub cursor: Option<String>,
    /// Items stored by syncs, all time.
    pub items_synced: i64,
    /// Most recent error, if the last sync failed.
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// One failure of an integration (a sync, an outgoing post), kept in a short history so a
/// flapping integration shows its pattern, not only whatever failed last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationError {
    /// When it failed.
    pub at: DateTime<Utc>,
    /// What failed (never a secret: URLs are stripped before errors are recorded).
    pub message: String,
}
