//! Pulls from a local server that answers like the Hugging Face hub's `resolve` endpoint
//! (`x-repo-commit`, `x-linked-etag`, `content-range`, byte ranges), into a temp cache.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode};
use opslens_models::{
    pull, resolve, verify, Manifest, ModelEntry, ModelSettings, PullError, PullEvent,
};

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Clone, Default)]
struct Hub {
    files: Arc<HashMap<String, Vec<u8>>>,
    gets: Arc<AtomicUsize>,
}

async fn resolve_file(
    State(hub): State<Hub>,
    UrlPath((_org, _name, rev, file)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response<Body> {
    let Some(bytes) = hub.files.get(&file).filter(|_| rev == REV) else {
        return Response::builder()
            .status(404)
            .header("x-error-code", "EntryNotFound")
            .body(Body::from("Entry not found"))
            .unwrap();
    };
    hub.gets.fetch_add(1, Ordering::SeqCst);
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
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header("x-repo-commit", REV)
        .header("x-linked-etag", format!("\"{}\"", sha(bytes)))
        .header("content-range", format!("bytes {start}-{end}/{len}"))
        .body(Body::from(bytes[start..=end].to_vec()))
        .unwrap()
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-qwen3-vl")
}

/// The fixture presented as a hub model at a pinned revision.
fn entry() -> ModelEntry {
    let mut e = Manifest::builtin()
        .get("tiny-qwen3-vl-test")
        .unwrap()
        .clone();
    e.hub = true;
    e.repo = "opslens/tiny".into();
    e.revision = REV.into();
    e
}

async fn serve(files: HashMap<String, Vec<u8>>) -> (String, Hub) {
    let hub = Hub {
        files: Arc::new(files),
        gets: Arc::default(),
    };
    let app = axum::Router::new()
        .route(
            "/{org}/{name}/resolve/{rev}/{file}",
            axum::routing::get(resolve_file).head(resolve_file),
        )
        .with_state(hub.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), hub)
}

fn settings(cache: &Path, endpoint: String) -> ModelSettings {
    ModelSettings {
        model_dir: None,
        cache_dir: cache.to_path_buf(),
        offline: false,
        endpoint,
        token: None,
    }
}

fn fixture_files(e: &ModelEntry) -> HashMap<String, Vec<u8>> {
    e.files
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                std::fs::read(fixture_dir().join(&f.name)).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_into_the_hf_cache_layout_with_progress_and_only_once() {
    let e = entry();
    let (url, hub) = serve(fixture_files(&e)).await;
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), url);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let dir = pull(&e, &s, Arc::new(move |x| ev.lock().unwrap().push(x)))
        .await
        .unwrap();
    assert_eq!(
        dir,
        tmp.path().join("models--opslens--tiny/snapshots").join(REV)
    );
    // Python-compatible layout: blobs named by etag, snapshot entries pointing at them, a ref.
    assert!(
        tmp.path()
            .join("models--opslens--tiny/blobs")
            .read_dir()
            .unwrap()
            .count()
            >= e.files.len()
    );
    assert!(std::fs::symlink_metadata(dir.join("model.safetensors"))
        .unwrap()
        .file_type()
        .is_symlink());
    let located = resolve(&e, &s).unwrap();
    assert_eq!(
        (located.dir.clone(), located.how),
        (dir.clone(), "hf-cache")
    );
    assert!(verify(&e, &dir).ok);
    let events = events.lock().unwrap().clone();
    assert!(matches!(events.first(), Some(PullEvent::Started { .. })));
    assert!(matches!(events.last(), Some(PullEvent::Done { .. })));
    let last_progress = events
        .iter()
        .rev()
        .filter_map(|x| match x {
            PullEvent::Progress {
                done_bytes,
                total_bytes,
                ..
            } => Some((*done_bytes, *total_bytes)),
            _ => None,
        })
        .next()
        .unwrap();
    assert_eq!(last_progress, (e.total_size(), e.total_size()));
    // A second pull finds everything in place and fetches nothing.
    let before = hub.gets.load(Ordering::SeqCst);
    pull(&e, &s, Arc::new(|_| {})).await.unwrap();
    assert_eq!(hub.gets.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_other_bytes_is_refused_and_removed() {
    let e = entry();
    let mut files = fixture_files(&e);
    let w = files.get_mut("model.safetensors").unwrap();
    let n = w.len();
    w[n - 1] ^= 0xff;
    let (url, _hub) = serve(files).await;
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), url);
    let err = pull(&e, &s, Arc::new(|_| {})).await.unwrap_err();
    assert!(
        matches!(err, PullError::Corrupt { ref file, .. } if file == "model.safetensors"),
        "{err}"
    );
    assert!(!s.snapshot_dir(&e).join("model.safetensors").exists());
    assert!(resolve(&e, &s).is_err());
}

#[tokio::test]
async fn an_unreachable_hub_fails_fast_with_a_clear_message() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), format!("http://127.0.0.1:{port}"));
    let t = std::time::Instant::now();
    let err = pull(&entry(), &s, Arc::new(|_| {})).await.unwrap_err();
    assert!(t.elapsed().as_secs() < 15);
    let msg = err.to_string();
    assert!(msg.contains("cannot reach the Hugging Face hub"), "{msg}");
}

#[tokio::test]
async fn offline_and_unknown_revisions_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = settings(tmp.path(), "http://127.0.0.1:9".into());
    s.offline = true;
    let msg = pull(&entry(), &s, Arc::new(|_| {}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("HF_HUB_OFFLINE") && msg.contains("OPSLENS_MODEL_DIR"),
        "{msg}"
    );

    let (url, _hub) = serve(HashMap::new()).await;
    let s = settings(tmp.path(), url);
    let msg = pull(&entry(), &s, Arc::new(|_| {}))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("404") && msg.contains("revision"), "{msg}");
}
