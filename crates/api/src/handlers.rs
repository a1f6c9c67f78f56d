//! Route handlers, one module per resource.

pub mod analysis;
pub mod capture;
pub mod command;
pub mod events;
pub mod evidence;
pub mod incidents;
pub mod integrations;
pub mod postmortem;
pub mod session;
pub mod system;
pub mod webhooks;
pub mod work;

use std::sync::Arc;

use opslens_core::Services;

/// State shared by all handlers.
pub type AppState = Arc<Services>;

/// Result of a handler.
pub type ApiResult<T> = Result<T, crate::error::ApiError>;

/// Facts about the running server that only the router knows (for the UI's settings screen).
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo {
    /// Port the server listens on.
    pub port: u16,
}
