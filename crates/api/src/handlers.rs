//! Route handlers, one module per resource; each takes the one service it uses from
//! [`crate::state::AppState`].

pub mod analysis;
pub mod capture;
pub mod command;
pub mod events;
pub mod evidence;
pub mod incidents;
pub mod integrations;
pub mod postmortem;
pub mod session;
pub mod similar;
pub mod system;
pub mod team;
pub mod users;
pub mod webhooks;
pub mod work;

pub use crate::state::{AppState, ServerInfo};

/// Result of a handler.
pub type ApiResult<T> = Result<T, crate::error::ApiError>;
