//! Route handlers, one module per resource.

pub mod evidence;
pub mod incidents;
pub mod integrations;
pub mod system;
pub mod webhooks;
pub mod work;

use std::sync::Arc;

use opslens_core::Services;

/// State shared by all handlers.
pub type AppState = Arc<Services>;

/// Result of a handler.
pub type ApiResult<T> = Result<T, crate::error::ApiError>;
