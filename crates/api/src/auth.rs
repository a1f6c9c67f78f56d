//! Guards of the API, in the order a request meets them:
//! 0. behind a reverse proxy (`--behind-proxy`), only that proxy may connect; the client is
//!    who its `X-Forwarded-For` names (see [`crate::exposure`]);
//! 1. `Host` must be a loopback name on our port, or the configured public URL's host (DNS
//!    rebinding, security.md §1.1);
//! 2. an `Origin`, when sent, must be our own (no other web page may drive the API);
//! 3. `Authorization: Bearer <token>` on everything but the docs, the spec, the health route,
//!    the one-time code exchange, the web UI's static files and the webhook receivers (which
//!    verify the sender's signature instead): the install token, or a person's own token
//!    (`opslens users add`), whose holder becomes the author of what the request writes. On
//!    a server others can reach, a client (or token) with too many recent failures is answered
//!    429 before its token is even looked at;
//! 4. a viewer's token may only read: any other method answers 403.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opslens_core::access::{self, AccessService, Identity};
use opslens_core::token::ApiToken;
use std::sync::Arc;

use crate::error::ApiError;
use crate::exposure::{client_of, Exposure, LimitKey, Limiter, PeerAddr};

/// What the guards compare against.
#[derive(Debug, Clone)]
pub struct Guard {
    token: ApiToken,
    hosts: Vec<String>,
    origins: Vec<String>,
    /// The public URL's `Host` spellings, answered over HTTPS with HSTS when it is HTTPS.
    public_hosts: Vec<String>,
    public_https: bool,
    trusted_proxies: Vec<IpAddr>,
    /// Whether connections arrive over our own TLS.
    tls: bool,
    /// Failure limit; `None` on a loopback-only server.
    limiter: Option<Limiter>,
    access: Arc<AccessService>,
}

impl Guard {
    /// Guards for a loopback server listening on `port` with `token`.
    pub fn new(token: ApiToken, port: u16, access: Arc<AccessService>) -> Self {
        Self::exposed(token, port, access, &Exposure::default(), None)
    }

    /// Guards for a server bound to `bind` (when known) on `port`, configured by `exposure`.
    pub fn exposed(
        token: ApiToken,
        port: u16,
        access: Arc<AccessService>,
        exposure: &Exposure,
        bind: Option<IpAddr>,
    ) -> Self {
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        let mut origins: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
        if exposure.tls.is_some() {
            origins.extend(hosts.iter().map(|h| format!("https://{h}")));
        }
        // The desktop webview's own origins (Tauri v2 on Linux/macOS and on Windows).
        origins.extend(
            [
                "tauri://localhost",
                "http://tauri.localhost",
                "https://tauri.localhost",
            ]
            .map(String::from),
        );
        let mut public_hosts = Vec::new();
        if let Some(p) = &exposure.public_url {
            public_hosts.extend(p.hosts.iter().cloned());
            hosts.extend(p.hosts.iter().cloned());
            origins.push(p.origin.clone());
        }
        let reachable = bind.map_or(
            !exposure.trusted_proxies.is_empty() || exposure.public_url.is_some(),
            |ip| exposure.reachable(ip),
        );
        Guard {
            token,
            hosts,
            origins,
            public_hosts,
            public_https: exposure.public_url.as_ref().is_some_and(|p| p.https),
            trusted_proxies: exposure.trusted_proxies.clone(),
            tls: exposure.tls.is_some(),
            limiter: reachable.then(|| Limiter::new(exposure.auth_limit)),
            access,
        }
    }
}

/// 429 for a client or token held back by the failure limit.
fn too_many(who: &str, wait: u32) -> Response {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many failed authentications {who}: try again in {wait} s (Retry-After); \
             `opslens token` or `opslens users add` gives a valid token"
        ),
    )
    .retry_after(wait)
    .into_response()
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
pub async fn guard(State(g): State<Arc<Guard>>, req: Request<Body>, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0 .0.ip().to_canonical());
    if !g.trusted_proxies.is_empty() {
        let trusted = peer.is_some_and(|p| g.trusted_proxies.iter().any(|t| t.to_canonical() == p));
        if !trusted {
            let shown = peer.map_or_else(|| "(unknown)".to_string(), |p| p.to_string());
            tracing::warn!(peer = %shown, "refused a connection that is not the trusted proxy");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_peer",
                format!(
                    "{shown} may not connect: this server answers only its reverse proxy \
                     (--behind-proxy); use the public URL"
                ),
            )
            .into_response();
        }
    }
    let client = peer.map(|p| client_of(p, g.tls, req.headers(), &g.trusted_proxies));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    let public_host = match host {
        Some(h) if g.hosts.contains(&h) => g.public_hosts.contains(&h),
        other => {
            let shown = other.unwrap_or_else(|| "(none)".into());
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                format!(
                    "Host {shown:?} is not allowed: OpsLens answers only to {} (DNS-rebinding protection; a server reached by another name needs --public-url)",
                    g.hosts.join(", ")
                ),
            )
            .into_response();
        }
    };
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
    // Browsers that reached the public HTTPS name keep to HTTPS (never sent for loopback
    // names, where it would pin every local port of that name to HTTPS).
    let hsts = public_host && g.public_https && client.is_some_and(|c| c.https);
    let mut res = authorize(&g, client.map(|c| c.ip), req, next).await;
    if hsts {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// Guards 3 and 4: the token, its role, and the failure limit around both.
async fn authorize(
    g: &Guard,
    client: Option<IpAddr>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    // A server without a socket peer (router-only tests) counts under one unspecified key.
    let peer_key = LimitKey::peer(client.unwrap_or(IpAddr::from([0, 0, 0, 0])));
    if let Some(wait) = g.limiter.as_ref().and_then(|l| l.blocked(peer_key)) {
        let ip = client.map_or_else(|| "(unknown)".to_string(), |c| c.to_string());
        return too_many(&format!("from {ip}"), wait);
    }
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
        if let Some(l) = &g.limiter {
            l.fail(peer_key);
        }
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
    let user_key = identity.user.as_ref().map(|u| LimitKey::User(u.id));
    let who = identity.author().unwrap_or("this token").to_string();
    if let Some(wait) = user_key.and_then(|k| g.limiter.as_ref()?.blocked(k)) {
        return too_many(&format!("with {who}'s token"), wait);
    }
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !read && !identity.can_write() {
        if let (Some(l), Some(k)) = (&g.limiter, user_key) {
            l.fail(k);
        }
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_role",
            format!("{who} is a viewer: viewers can read but not change anything; an admin can change the role with `opslens users`"),
        )
        .into_response();
    }
    let author = identity.author().map(str::to_owned);
    req.extensions_mut().insert(identity);
    access::with_author(author, next.run(req)).await
}
