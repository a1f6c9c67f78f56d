//! Fetching a model from the Hugging Face hub into the standard cache, with progress events,
//! resumption of partial files (hf-hub keeps `*.sync.part` files), SHA-256 verification of
//! pinned files and clear failures instead of hangs when the hub cannot be reached.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hf_hub::api::tokio::{ApiBuilder, Progress};
use hf_hub::{Repo, RepoType};
use serde::Serialize;

use crate::manifest::ModelEntry;
use crate::resolve::ModelSettings;
use crate::verify::sha256_file;

/// What a pull reports while it runs (the CLI draws a bar from these, the API streams them).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PullEvent {
    /// The pull began; `total_bytes` is what the manifest lists.
    Started {
        /// Model id.
        model: String,
        /// Bytes of all files.
        total_bytes: u64,
    },
    /// A file is being fetched.
    File {
        /// File name.
        name: String,
        /// Its size.
        size: u64,
    },
    /// Bytes arrived.
    Progress {
        /// File being fetched.
        name: String,
        /// Bytes of all files present so far (including files already in the cache).
        done_bytes: u64,
        /// Bytes of all files.
        total_bytes: u64,
    },
    /// The pinned digest of a file is being checked.
    Verifying {
        /// File name.
        name: String,
    },
    /// Every file is in the cache and verified.
    Done {
        /// The snapshot folder.
        dir: PathBuf,
    },
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// `HF_HUB_OFFLINE` is set.
    #[error(
        "HF_HUB_OFFLINE is set, so nothing is downloaded: copy the model into {0} or point \
         OPSLENS_MODEL_DIR / --model-dir at a folder holding it"
    )]
    Offline(PathBuf),
    /// A model that only exists locally (a test fixture).
    #[error("model {0} is not published on the hub; point OPSLENS_MODEL_DIR at its folder")]
    NotOnHub(String),
    /// No answer from the hub.
    #[error("cannot reach the Hugging Face hub at {endpoint}: {reason} (check the network or a proxy; HF_ENDPOINT selects a mirror)")]
    Unreachable {
        /// Endpoint tried.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The hub answered with an error status.
    #[error("the hub answered {status} for {url}{hint}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// URL asked.
        url: String,
        /// What to do.
        hint: String,
    },
    /// A download broke off or stalled.
    #[error("downloading {file} failed: {reason} (run the pull again: it resumes)")]
    Download {
        /// File name.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// A file arrived with other bytes than the manifest pins.
    #[error("{file} does not match its pinned SHA-256 (got {got}); the file was removed, run the pull again")]
    Corrupt {
        /// File name.
        file: String,
        /// Digest computed.
        got: String,
    },
    /// Local disk trouble.
    #[error("{0}")]
    Io(String),
    /// The user stopped the pull; what arrived is kept and the next pull resumes from it.
    #[error("the download was cancelled; what arrived is kept and the next pull resumes from it")]
    Cancelled,
}

/// How a pull fetches; the defaults suit the public hub.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Bytes per ranged request (default 10 MB, hf-hub's). A download stopped in the middle
    /// resumes from the last whole chunk, so smaller chunks lose less to a cancel but cost
    /// more requests.
    pub chunk_bytes: Option<usize>,
}

/// Receives [`PullEvent`]s; called from download tasks, so it must be cheap.
pub type OnEvent = Arc<dyn Fn(PullEvent) + Send + Sync>;

/// How long a download may go without a byte before it is abandoned.
const STALL: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Adapter {
    name: Arc<str>,
    done: Arc<AtomicU64>,
    total: u64,
    last_byte: Arc<AtomicU64>,
    started: Instant,
    on_event: OnEvent,
}

impl Adapter {
    fn touch(&self) {
        self.last_byte
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl Progress for Adapter {
    async fn init(&mut self, _size: usize, _filename: &str) {
        self.touch();
    }
    async fn update(&mut self, size: usize) {
        self.touch();
        let done = self.done.fetch_add(size as u64, Ordering::Relaxed) + size as u64;
        (self.on_event)(PullEvent::Progress {
            name: self.name.to_string(),
            done_bytes: done.min(self.total),
            total_bytes: self.total,
        });
    }
    async fn finish(&mut self) {}
}

async fn preflight(entry: &ModelEntry, s: &ModelSettings) -> Result<(), PullError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PullError::Io(e.to_string()))?;
    let url = format!(
        "{}/{}/resolve/{}/config.json",
        s.endpoint, entry.repo, entry.revision
    );
    let mut req = client.head(&url);
    if let Some(t) = &s.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| PullError::Unreachable {
        endpoint: s.endpoint.clone(),
        reason: if e.is_timeout() {
            "no answer within 30 s".into()
        } else if e.is_connect() {
            format!("connection failed ({})", root_cause(&e))
        } else {
            root_cause(&e)
        },
    })?;
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        return Ok(());
    }
    let hint = match status.as_u16() {
        401 | 403 => "; the repository needs a token: set HF_TOKEN".to_string(),
        404 => format!(
            "; the pinned revision {} of {} was not found there",
            entry.revision, entry.repo
        ),
        429 => "; rate limited, try again later".to_string(),
        _ => String::new(),
    };
    Err(PullError::Refused {
        status: status.as_u16(),
        url,
        hint,
    })
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Downloads every file of `entry` that the cache lacks (or holds at another size) into
/// `settings.cache_dir`, then checks pinned digests. Returns the snapshot folder.
pub async fn pull(
    entry: &ModelEntry,
    settings: &ModelSettings,
    on_event: OnEvent,
) -> Result<PathBuf, PullError> {
    pull_with(entry, settings, on_event, &PullOptions::default()).await
}

/// [`pull`] that stops when `stop` resolves (or when this future is dropped) and answers
/// [`PullError::Cancelled`]. The download runs on a runtime of its own thread, shut down on
/// stop: hf-hub spawns a task per chunk, which dropping its future would leave running, so
/// only ending their runtime really stops the transfer. The partial blob (`*.sync.part`, with
/// its count of committed bytes) stays, so the next pull resumes from the last whole chunk.
pub async fn pull_stoppable(
    entry: &ModelEntry,
    settings: &ModelSettings,
    on_event: OnEvent,
    opts: &PullOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<PathBuf, PullError> {
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (entry, settings, opts) = (entry.clone(), settings.clone(), opts.clone());
    std::thread::Builder::new()
        .name("model-pull".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = done_tx.send(Some(Err(PullError::Io(e.to_string()))));
                    return;
                }
            };
            let r = rt.block_on(async {
                tokio::select! {
                    r = pull_with(&entry, &settings, on_event, &opts) => Some(r),
                    // A stop, or the caller gone (the sender dropped).
                    _ = stop_rx => None,
                }
            });
            // Drops the chunk tasks still running (their connections close) and lets a file
            // write already handed to a blocking thread finish, so what is on disk is settled
            // when the caller hears of the stop.
            rt.shutdown_timeout(Duration::from_secs(2));
            let _ = done_tx.send(r);
        })
        .map_err(|e| PullError::Io(format!("cannot start the download thread: {e}")))?;
    tokio::pin!(stop);
    let mut stop_tx = Some(stop_tx);
    loop {
        tokio::select! {
            r = &mut done_rx => {
                return match r {
                    Ok(Some(r)) => r,
                    Ok(None) => Err(PullError::Cancelled),
                    Err(_) => Err(PullError::Io("the download thread ended unexpectedly".into())),
                }
            }
            () = &mut stop, if stop_tx.is_some() => {
                if let Some(t) = stop_tx.take() {
                    let _ = t.send(());
                }
            }
        }
    }
}

/// Bytes of `entry` already on disk in the cache: whole files of its snapshot, plus the
/// committed part of interrupted downloads (hf-hub's `blobs/<sha256>.sync.part`, which ends
/// with the count of bytes written in order), found for the files whose digest is pinned.
pub fn bytes_present(entry: &ModelEntry, settings: &ModelSettings) -> u64 {
    let snap = settings.snapshot_dir(entry);
    let blobs = settings
        .cache_dir
        .join(entry.cache_folder_name())
        .join("blobs");
    entry
        .files
        .iter()
        .map(|f| {
            if std::fs::metadata(snap.join(&f.name)).is_ok_and(|m| m.len() == f.size) {
                return f.size;
            }
            f.sha256
                .as_ref()
                .and_then(|h| {
                    committed_part(
                        &blobs.join(format!("{}.sync.part", h.to_lowercase())),
                        f.size,
                    )
                })
                .unwrap_or(0)
        })
        .sum()
}

/// The committed byte count hf-hub keeps at the end of a partial file of `size` bytes.
fn committed_part(path: &std::path::Path, size: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    if f.metadata().ok()?.len() != size + 8 {
        return None;
    }
    f.seek(SeekFrom::Start(size)).ok()?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b).min(size))
}

/// Bytes a pull of `entry` still has to download.
pub fn bytes_to_fetch(entry: &ModelEntry, settings: &ModelSettings) -> u64 {
    entry
        .total_size()
        .saturating_sub(bytes_present(entry, settings))
}

/// Downloads like [`pull`], with `opts`.
pub async fn pull_with(
    entry: &ModelEntry,
    settings: &ModelSettings,
    on_event: OnEvent,
    opts: &PullOptions,
) -> Result<PathBuf, PullError> {
    let snap = settings.snapshot_dir(entry);
    if !entry.hub {
        return Err(PullError::NotOnHub(entry.id.clone()));
    }
    let total = entry.total_size();
    on_event(PullEvent::Started {
        model: entry.id.clone(),
        total_bytes: total,
    });
    if crate::resolve::missing_files(entry, &snap).is_empty() {
        // Already complete: no network at all (also when offline).
        on_event(PullEvent::Done { dir: snap.clone() });
        return Ok(snap);
    }
    if settings.offline {
        return Err(PullError::Offline(snap));
    }
    preflight(entry, settings).await?;
    let api = ApiBuilder::new()
        .with_cache_dir(settings.cache_dir.clone())
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.clone())
        .with_progress(false)
        .with_chunk_size(Some(opts.chunk_bytes.unwrap_or(10_000_000).max(1)))
        .build()
        .map_err(|e| PullError::Io(e.to_string()))?;
    let repo = api.repo(Repo::with_revision(
        entry.repo.clone(),
        RepoType::Model,
        entry.revision.clone(),
    ));
    let done = Arc::new(AtomicU64::new(0));
    for f in &entry.files {
        let have = std::fs::metadata(snap.join(&f.name)).is_ok_and(|m| m.len() == f.size);
        if have {
            done.fetch_add(f.size, Ordering::Relaxed);
            continue;
        }
        on_event(PullEvent::File {
            name: f.name.clone(),
            size: f.size,
        });
        let adapter = Adapter {
            name: f.name.as_str().into(),
            done: done.clone(),
            total,
            last_byte: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            on_event: on_event.clone(),
        };
        let watch = adapter.clone();
        let download = repo.download_with_progress(&f.name, adapter);
        tokio::pin!(download);
        let path = loop {
            tokio::select! {
                r = &mut download => break r.map_err(|e| PullError::Download {
                    file: f.name.clone(),
                    reason: root_cause(&e),
                })?,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    let idle = watch.started.elapsed().as_millis() as u64
                        - watch.last_byte.load(Ordering::Relaxed);
                    if idle > STALL.as_millis() as u64 {
                        return Err(PullError::Download {
                            file: f.name.clone(),
                            reason: format!("no data for {} s", STALL.as_secs()),
                        });
                    }
                }
            }
        };
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size != f.size {
            return Err(PullError::Download {
                file: f.name.clone(),
                reason: format!("got {size} bytes, the manifest says {}", f.size),
            });
        }
        if let Some(want) = &f.sha256 {
            on_event(PullEvent::Verifying {
                name: f.name.clone(),
            });
            let p = path.clone();
            let got = tokio::task::spawn_blocking(move || sha256_file(&p))
                .await
                .map_err(|e| PullError::Io(e.to_string()))?
                .map_err(|e| PullError::Io(e.to_string()))?;
            if !got.eq_ignore_ascii_case(want) {
                // Remove the snapshot link and the blob behind it so a retry fetches it anew.
                if let Ok(blob) = std::fs::canonicalize(&path) {
                    let _ = std::fs::remove_file(blob);
                }
                let _ = std::fs::remove_file(&path);
                return Err(PullError::Corrupt {
                    file: f.name.clone(),
                    got,
                });
            }
        }
        if path.parent() != Some(snap.as_path()) {
            return Err(PullError::Io(format!(
                "the hub stored {} under another revision than the pinned {}",
                f.name, entry.revision
            )));
        }
    }
    on_event(PullEvent::Done { dir: snap.clone() });
    Ok(snap)
}
