//! The web UI: the files of `ui/dist`, embedded at build time and served at `/` without the
//! token (they hold no data; every call they make to `/api/v1` carries it), under a strict CSP.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

/// The files of `ui/dist` as (URL path, bytes), written by `build.rs`.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Content-Security-Policy of every UI response: only our own scripts, styles and API; images
/// also from `blob:` (screenshots are fetched with the token and shown as object URLs).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether `path` is a UI file anyone on this machine may fetch without the token (GET/HEAD).
/// Paths outside `/api/` hold no data either: an unknown one gets the not-found page rather
/// than a 401 a person cannot act on.
pub fn is_public_path(path: &str) -> bool {
    path == "/"
        || path == "/index.html"
        || path.starts_with("/assets/")
        || !path.starts_with("/api/")
}

/// The page a browser gets for an unknown path outside the API (the API answers JSON).
pub fn not_found_page(path: &str) -> Response {
    let escaped: String = path
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found · OpsLens</title>\
         <link rel=\"stylesheet\" href=\"/assets/styles.css\"></head><body><main class=\"not-found\">\
         <h1>Page not found</h1><p>OpsLens has no page at <code>{escaped}</code>.</p>\
         <p><a href=\"/\">Go to the incidents</a></p></main></body></html>"
    );
    let mut h = headers("x.html");
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (StatusCode::NOT_FOUND, h, body).into_response()
}

/// Routes of the UI files; `/` is the app.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*file}", get(asset))
}

fn lookup(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn headers(path: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Small local files: always revalidate so a new build shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h
}

async fn index() -> Response {
    match lookup("/index.html") {
        Some(bytes) => (headers("/index.html"), bytes).into_response(),
        None => {
            let text =
                "The OpsLens web UI is not part of this build: run `npm ci && npm run build` \
                        in ui/ and rebuild (or use the API: /docs).\n";
            let mut h = headers("/x.txt");
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            (StatusCode::SERVICE_UNAVAILABLE, h, text).into_response()
        }
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let path = format!("/assets/{file}");
    match lookup(&path) {
        Some(bytes) => (headers(&path), bytes).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no UI file {path}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_under_the_api_needs_the_token() {
        assert!(is_public_path("/"));
        assert!(is_public_path("/assets/main.js"));
        // Outside the API only files and the not-found page are served.
        assert!(is_public_path("/assetsx"));
        assert!(!is_public_path("/api/v1/incidents"));
        assert!(!is_public_path("/api/"));
        assert!(!is_public_path("/api/v1/evidence/1/image"));
        assert_eq!(
            content_type("/assets/app.js"),
            "text/javascript; charset=utf-8"
        );
    }
}
