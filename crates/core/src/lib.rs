//! Use-cases of OpsLens: what the API, the CLI and the desktop app ask for, validated and run
//! off the async runtime. Knows the store and the domain, nothing of HTTP or windows.

pub mod analysis;
pub mod capture;
mod correlation;
mod error;
pub mod export;
pub mod feed;
pub mod integrations;
mod notify;
mod outbox;
mod services;
pub mod snapshots;
pub mod status;
pub mod storage;
pub mod sync;
pub mod token;
pub mod upload;
pub mod validate;
pub mod webhooks;

pub use error::CoreError;
pub use services::{Services, ServicesConfig};
