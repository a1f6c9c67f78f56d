//! Guards of the local API, in the order a request meets them:
//! 1. `Host` must be a loopback name on our port (DNS rebinding, security.md §1.1);
//! 2. an `Origin`, when sent, must be our own (no other web page may drive the API);
//! 3. `Authorization: Bearer <token>` on everything but the docs, the spec, the health route,
//!    the one-time code exchange, the web UI's static files and the webhook receivers (which
//!    verify the sender's signature instead): the install token, or a person's own token
//!    (`opslens users add`), whose holder becomes the author of what the request writes;
//! 4. a viewer's token may only read: any other method answers 403.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opslens_core::access::{self, AccessService, Identity};
use opslens_core::token::ApiToken;
use std::sync::Arc;

use crate::error::ApiError;

/// What the guards compare against.
#[derive(Debug, Clone)]
pub struct Guard {
    token: ApiToken,
    hosts: Vec<String>,
    origins: Vec<String>,
    access: Arc<AccessService>,
}

impl Guard {
    /// Guards for a server listening on `port` with `token`.
    pub fn new(token: ApiToken, port: u16, access: Arc<AccessService>) -> Self {
        let hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        let mut origins: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
        // The desktop webview's own origins (Tauri v2 on Linux/macOS and on Windows).
        origins.extend(
            [
                "tauri://localhost",
                "http://tauri.localhost",
                "https://tauri.localhost",
            ]
            .map(String::from),
        );
        Guard {
            token,
            hosts,
            origins,
            access,
        }
    }
}

/// Paths reachable without the token: nothing there reads or changes incident data, except
/// two that carry their own proof: the code exchange hands out the token only for a fresh
/// one-time code that itself needed the token, and the webhook receivers accept only
/// deliveries whose signature (or per-integration credential) checks out, and are off until
/// their secret is configured.
fn is_public(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    path == "/api/v1/health"
        || (method == Method::POST && path == "/api/v1/auth/exchange")
        || (method == Method::POST && path.starts_with("/api/v1/webhooks/"))
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/")
        || (read && crate::ui::is_public_path(path))
}

/// The middleware applying the guards.
pub async fn guard(State(g): State<Guard>, mut req: Request<Body>, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    match host {
        Some(h) if g.hosts.contains(&h) => {}
        other => {
            let shown = other.unwrap_or_else(|| "(none)".into());
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                format!(
                    "Host {shown:?} is not allowed: OpsLens answers only to {} (DNS-rebinding protection)",
                    g.hosts.join(", ")
                ),
            )
            .into_response();
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .map(|o| g.origins.iter().any(|a| a.eq_ignore_ascii_case(o)))
            .unwrap_or(false);
        if !ok {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                format!(
                    "Origin {:?} is not allowed: only the OpsLens UI itself may call this API from a browser",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            )
            .into_response();
        }
    }
    if !is_public(req.method(), req.uri().path()) {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let identity = match presented {
            Some(p) if g.token.verify(p) => Some(Identity::install()),
            Some(p) => match g.access.identify(p).await {
                Ok(found) => found,
                Err(e) => return ApiError::from(e).into_response(),
            },
            None => None,
        };
        let Some(identity) = identity else {
            let why = if presented.is_some() {
                "invalid or revoked"
            } else {
                "missing"
            };
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "{why} API token: send `Authorization: Bearer <token>`; `opslens token` prints it"
                ),
            )
            .into_response();
        };
        let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if !read && !identity.can_write() {
            let who = identity.author().unwrap_or("this token").to_string();
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_role",
                format!("{who} is a viewer: viewers can read but not change anything; an admin can change the role with `opslens users`"),
            )
            .into_response();
        }
        let author = identity.author().map(str::to_owned);
        req.extensions_mut().insert(identity);
        return access::with_author(author, next.run(req)).await;
    }
    next.run(req).await
}
