//! A stand-in for the Hugging Face hub's `resolve` endpoint (as in
//! `crates/models/tests/pull.rs`: `x-repo-commit`, `x-linked-etag`, byte ranges answered
//! `206` with `content-range`), serving the committed tiny checkpoint, optionally slowly so a
//! pull can be watched and stopped, and counting the bytes it sent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode};
use opslens_models::{Manifest, ModelEntry};

/// The pinned revision the fake serves.
pub const REV: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Clone, Default)]
pub struct Hub {
    /// File name → (bytes, SHA-256 used as the LFS etag).
    files: Arc<HashMap<String, (Vec<u8>, String)>>,
    /// Pause between 16 KiB pieces of a body (zero: as fast as it goes).
    pub pause: Duration,
    /// Body bytes sent so far.
    pub sent: Arc<AtomicU64>,
    /// `(file, first byte asked)` of every ranged GET longer than one byte.
    pub ranges: Arc<Mutex<Vec<(String, usize)>>>,
}

async fn resolve_file(
    State(hub): State<Hub>,
    UrlPath((_org, _name, rev, file)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response<Body> {
    let Some((bytes, etag)) = hub.files.get(&file).filter(|_| rev == REV).cloned() else {
        return Response::builder()
            .status(404)
            .header("x-error-code", "EntryNotFound")
            .body(Body::from("Entry not found"))
            .unwrap();
    };
    let len = bytes.len();
    let (start, end) = headers
        .get("range")
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| {
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = b.parse().unwrap_or(len - 1);
            (a.min(len), b.min(len - 1))
        })
        .unwrap_or((0, len - 1));
    if end > start {
        hub.ranges.lock().unwrap().push((file.clone(), start));
    }
    let body = bytes[start..=end].to_vec();
    let (pause, sent) = (hub.pause, hub.sent.clone());
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let body = body.clone();
        let sent = sent.clone();
        async move {
            if at >= body.len() {
                return None;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let to = (at + 16 * 1024).min(body.len());
            sent.fetch_add((to - at) as u64, Ordering::SeqCst);
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from(body[at..to].to_vec())),
                to,
            ))
        }
    });
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header("x-repo-commit", REV)
        .header("x-linked-etag", format!("\"{etag}\""))
        .header("content-range", format!("bytes {start}-{end}/{len}"))
        .header("content-length", (end + 1 - start).to_string())
        .body(Body::from_stream(stream))
        .unwrap()
}

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

/// The tiny checkpoint presented as a published model `tiny-hub` at [`REV`].
pub fn entry() -> ModelEntry {
    let mut e = Manifest::builtin()
        .get("tiny-qwen3-vl-test")
        .unwrap()
        .clone();
    e.id = "tiny-hub".into();
    e.hub = true;
    e.repo = "opslens/tiny".into();
    e.revision = REV.into();
    e
}

/// A manifest whose default is `e`.
pub fn manifest(e: ModelEntry) -> Manifest {
    let mut m = Manifest::builtin();
    m.default = e.id.clone();
    m.models.push(e);
    m
}

/// Serves the entry's files from the fixture folder, pausing `pause` between 16 KiB pieces.
pub async fn serve(pause: Duration) -> (String, Hub) {
    let files = entry()
        .files
        .iter()
        .map(|f| {
            let path = fixture_dir().join(&f.name);
            let etag = opslens_models::verify::sha256_file(&path).unwrap();
            (f.name.clone(), (std::fs::read(&path).unwrap(), etag))
        })
        .collect();
    let hub = Hub {
        files: Arc::new(files),
        pause,
        ..Hub::default()
    };
    let app = axum::Router::new()
        .route(
            "/{org}/{name}/resolve/{rev}/{file}",
            axum::routing::get(resolve_file).head(resolve_file),
        )
        .with_state(hub.clone());
    let addr = super::serve(app).await;
    (format!("http://{addr}"), hub)
}
