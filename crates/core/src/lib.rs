//! Use-cases of OpsLens: what the API, the CLI and the desktop app ask for, validated and run
//! off the async runtime. Knows the store and the domain, nothing of HTTP or windows.

pub mod analysis;
pub mod capture;
mod correlation;
mod error;
mod event_time;
pub mod export;
pub mod feed;
pub mod integrations;
mod notify;
mod outbox;
mod people;
pub mod pm_export;
pub mod postmortem;
mod services;
pub mod snapshots;
pub mod status;
pub mod sync;
pub mod token;
mod updates;
pub mod upload;
pub mod webhooks;
pub mod when;

pub use error::CoreError;
pub use services::{Services, ServicesConfig};
