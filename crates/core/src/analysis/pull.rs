//! Model pulls started from the app: one background download per model, its progress
//! watchable by any number of clients (`GET /models/{id}/pull`), refused up front when the
//! disk cannot hold it, and stoppable (`DELETE /models/{id}/pull`) keeping what arrived.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opslens_models::{ModelEntry, ModelSettings, PullError, PullEvent, PullOptions};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use utoipa::ToSchema;

use super::AnalysisService;
use crate::storage::{free_bytes, human_bytes};
use crate::CoreError;

/// Progress of a model pull, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PullProgress {
    /// `downloading`, `done`, `failed` or `cancelled` (what arrived is kept; the next pull
    /// resumes from it).
    pub state: String,
    /// File being fetched.
    pub file: Option<String>,
    /// Bytes present so far.
    pub done_bytes: u64,
    /// Bytes of the whole model.
    pub total_bytes: u64,
    /// Download speed measured over this pull (bytes fetched now, not the ones resumed),
    /// once a second of it has passed.
    pub bytes_per_s: Option<f64>,
    /// Seconds left at that speed.
    pub eta_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What getting a model would take here: the download left and whether the disk holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DownloadPlan {
    /// Bytes still to download (the manifest's sizes, less what is already on disk).
    pub download_bytes: u64,
    /// Bytes already on disk (whole files and the kept part of a stopped download).
    pub present_bytes: u64,
    /// Free bytes on the disk of the model cache; `null` where it cannot be read.
    pub free_bytes: Option<u64>,
    /// Bytes a pull leaves free (`OPSLENS_LOW_DISK_MB`, default 1 GiB), so the download does
    /// not fill the disk.
    pub reserve_bytes: u64,
    /// Whether the download fits (true when free space is unknown).
    pub fits: bool,
    /// Where the model goes (the Hugging Face cache folder).
    pub cache_dir: String,
}

/// Free space of the file system that will hold `dir` (its nearest existing ancestor).
fn free_for(dir: &Path) -> Option<u64> {
    dir.ancestors().find(|d| d.exists()).and_then(free_bytes)
}

/// What pulling `e` with `s` needs, measured now.
pub fn download_plan(e: &ModelEntry, s: &ModelSettings) -> DownloadPlan {
    let present = opslens_models::bytes_present(e, s);
    let download = e.total_size().saturating_sub(present);
    let free = free_for(&s.cache_dir);
    let reserve = crate::storage::low_disk_threshold_from_env();
    DownloadPlan {
        download_bytes: download,
        present_bytes: present,
        free_bytes: free,
        reserve_bytes: reserve,
        fits: download == 0 || free.is_none_or(|f| f >= download.saturating_add(reserve)),
        cache_dir: s.cache_dir.display().to_string(),
    }
}

/// Why a pull of `id` is refused under `p`, with the figures; `None` when it fits. The app
/// and `opslens models pull` say the same.
pub fn download_refusal(id: &str, p: &DownloadPlan) -> Option<String> {
    if p.fits {
        return None;
    }
    let free = p.free_bytes.unwrap_or(0);
    Some(format!(
        "not enough disk space for {id}: the download needs {} ({} bytes) and {} should stay \
         free, but {} has only {} ({} bytes) free; free some space or point HF_HUB_CACHE at a \
         bigger disk",
        human_bytes(p.download_bytes),
        p.download_bytes,
        human_bytes(p.reserve_bytes),
        p.cache_dir,
        human_bytes(free),
        free
    ))
}

impl AnalysisService {
    /// What getting model `id` would take on this machine.
    pub fn download_plan(&self, id: &str) -> Result<DownloadPlan, CoreError> {
        let e = self.manifest.get(id).map_err(CoreError::NotFound)?;
        Ok(download_plan(e, &self.cfg.models))
    }

    /// Starts pulling a model in the background (or returns the pull already running) and
    /// returns a receiver of its progress. Refused with 507 naming the figures when the disk
    /// cannot hold what is left to download (plus the reserve).
    pub fn pull_model(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<watch::Receiver<PullProgress>, CoreError> {
        let e = self.manifest.get(id).map_err(CoreError::NotFound)?.clone();
        if !e.hub {
            return Err(CoreError::Invalid(format!(
                "model {id} is not published on the hub; point OPSLENS_MODEL_DIR at its folder"
            )));
        }
        let mut pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = pulls.get(id) {
            if w.borrow().state == "downloading" {
                return Ok(w.subscribe());
            }
        }
        let p = download_plan(&e, &self.cfg.models);
        if let Some(why) = download_refusal(id, &p) {
            return Err(CoreError::InsufficientStorage(why));
        }
        let (tx, rx) = watch::channel(PullProgress {
            state: "downloading".into(),
            file: None,
            done_bytes: p.present_bytes,
            total_bytes: e.total_size(),
            bytes_per_s: None,
            eta_s: None,
            error: None,
            started_at: Utc::now(),
            finished_at: None,
        });
        pulls.insert(id.to_string(), tx.clone());
        drop(pulls);
        let stop = Arc::new(Notify::new());
        self.pull_stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), stop.clone());
        let settings = self.cfg.models.clone();
        let opts = PullOptions {
            chunk_bytes: self.cfg.pull_chunk_bytes,
        };
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let progress = tx.clone();
            // The speed counts bytes from the first progress event on: resumed bytes arrive
            // at once and would overstate it.
            let base: std::sync::Mutex<Option<(Instant, u64)>> = std::sync::Mutex::new(None);
            let on_event = Arc::new(move |ev: PullEvent| {
                progress.send_modify(|p| match ev {
                    PullEvent::File { name, .. } | PullEvent::Verifying { name } => {
                        p.file = Some(name)
                    }
                    PullEvent::Progress { done_bytes, .. } => {
                        p.done_bytes = done_bytes;
                        let mut b = base.lock().unwrap_or_else(|e| e.into_inner());
                        let (t0, d0) = *b.get_or_insert((Instant::now(), done_bytes));
                        let secs = t0.elapsed().as_secs_f64();
                        if secs >= 1.0 && done_bytes > d0 {
                            let rate = (done_bytes - d0) as f64 / secs;
                            p.bytes_per_s = Some(rate);
                            p.eta_s = Some(p.total_bytes.saturating_sub(done_bytes) as f64 / rate);
                        }
                    }
                    _ => {}
                })
            });
            let r = opslens_models::pull_stoppable(&e, &settings, on_event, &opts, async move {
                stop.notified().await
            })
            .await;
            let present = opslens_models::bytes_present(&e, &settings);
            tx.send_modify(|p| {
                p.finished_at = Some(Utc::now());
                p.eta_s = None;
                match &r {
                    Ok(_) => {
                        p.state = "done".into();
                        p.done_bytes = p.total_bytes;
                    }
                    Err(PullError::Cancelled) => {
                        p.state = "cancelled".into();
                        p.done_bytes = present;
                        p.error = Some(PullError::Cancelled.to_string());
                    }
                    Err(err) => {
                        p.state = "failed".into();
                        p.error = Some(err.to_string());
                    }
                }
            });
            if let Some(s) = svc.upgrade() {
                s.wake.notify_one();
            }
        });
        Ok(rx)
    }

    /// Stops the running pull of `id` and waits (up to 10 s) until it has stopped; the bytes
    /// that arrived stay on disk for the next pull. 409 when none runs.
    pub async fn cancel_pull(&self, id: &str) -> Result<PullProgress, CoreError> {
        self.manifest.get(id).map_err(CoreError::NotFound)?;
        let rx = {
            let pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
            match pulls.get(id) {
                Some(w) if w.borrow().state == "downloading" => w.subscribe(),
                _ => {
                    return Err(CoreError::Conflict(format!(
                        "no download of {id} is running"
                    )))
                }
            }
        };
        let stop = self
            .pull_stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some(s) = stop {
            s.notify_one();
        }
        let mut rx = rx;
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|p| p.state != "downloading"),
        )
        .await;
        let now = rx.borrow().clone();
        Ok(now)
    }
}
