//! Clients for the services OpsLens talks to (PagerDuty, GitHub, Slack, Teams, custom
//! webhooks), the webhook signature schemes, and the secrets config.
//!
//! Every client takes its base URL from the config so tests point it at a local server that
//! speaks the documented wire format. Nothing here knows SQLite or axum: results are domain
//! values (`opslens_domain::ExternalItem`, …) that the core stores.

pub mod alerts;
pub mod config;
pub mod github;
pub mod http;
pub mod keys;
pub mod outgoing;
pub mod pagerduty;
#[cfg(test)]
mod props;
pub mod secrets;
pub mod signature;
pub mod snapshots;

pub use config::{Config, RetryPolicy, Secret};
pub use http::{ClientError, HttpPolicy};
