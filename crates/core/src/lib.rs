//! Use-cases of OpsLens: what the API, the CLI and the desktop app ask for, validated and run
//! off the async runtime. Knows the store and the domain, nothing of HTTP or windows.
//!
//! One service per use-case ([`IncidentService`], [`EvidenceService`], [`WorkService`],
//! [`AnalysisService`], [`IntegrationService`]), opened together as [`Services`].

pub mod access;
pub mod analysis;
mod author;
pub mod capture;
pub mod command;
mod correlation;
mod db;
mod error;
mod event_time;
pub mod evidence;
pub mod export;
pub mod feed;
pub mod filing;
pub mod incidents;
pub mod integration_keys;
pub mod integrations;
mod narrate;
mod notify;
mod outbox;
mod people;
pub mod pm_export;
pub mod postmortem;
pub mod redact;
mod services;
pub mod similar;
mod similar_service;
pub mod snapshots;
pub mod status;
pub mod storage;
pub mod sync;
pub mod token;
mod updates;
pub mod uplink;
pub mod upload;
pub mod validate;
pub mod webhooks;
pub mod when;
pub mod work;

pub use access::AccessService;
pub use analysis::AnalysisService;
pub use author::as_author;
pub use command::CommandService;
pub use error::CoreError;
pub use evidence::EvidenceService;
pub use incidents::IncidentService;
pub use integrations::IntegrationService;
pub use services::{Services, ServicesConfig};
pub use work::WorkService;
/// Search requests and the query reader, for callers that check a query before running it.
pub mod search {
    pub use opslens_store::search::{
        parse_query, QueryError, SearchRequest, FILTER_SCAN, MAX_QUERY_CHARS, WINDOW,
    };
}
