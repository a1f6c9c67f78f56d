//! Use-cases of OpsLens: what the API, the CLI and the desktop app ask for, validated and run
//! off the async runtime. Knows the store and the domain, nothing of HTTP or windows.
//!
//! One service per use-case ([`IncidentService`], [`EvidenceService`], [`WorkService`],
//! [`AnalysisService`], [`IntegrationService`]), opened together as [`Services`].

pub mod analysis;
pub mod capture;
mod correlation;
mod db;
mod error;
pub mod evidence;
pub mod export;
pub mod feed;
pub mod incidents;
pub mod integrations;
mod narrate;
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
pub mod work;

pub use analysis::AnalysisService;
pub use error::CoreError;
pub use evidence::EvidenceService;
pub use incidents::IncidentService;
pub use integrations::IntegrationService;
pub use services::{Services, ServicesConfig};
pub use work::WorkService;
