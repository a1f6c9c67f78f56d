//! The analysis worker: one task that drains the persistent queue one job at a time, loading
//! the model when work waits (and keeping it), marking screenshots `waiting-for-model` while
//! none can load, and resuming jobs a stop interrupted.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use std::time::{Duration, SystemTime};

use opslens_vlm::{EngineHandle, LoadOptions};

use super::{AnalysisService, Engine};
use crate::CoreError;

/// A job started this often and never finished is marked failed instead of retried.
const MAX_ATTEMPTS: i64 = 3;
/// How often the worker looks again when nothing woke it (a model copied into place by hand).
const IDLE_POLL: Duration = Duration::from_secs(3);

/// Starts the worker; it holds only a weak reference, so it ends when the service is dropped.
pub(crate) fn spawn_worker(service: &Arc<AnalysisService>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(worker(Arc::downgrade(service)));
}

/// A quick identity of a model folder, so a model that failed to load is retried only once
/// its files change.
fn fingerprint(dir: &std::path::Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let m = std::fs::metadata(e.path()).ok()?;
                    Some((
                        e.file_name().to_string_lossy().into_owned(),
                        m.len(),
                        m.modified().ok(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

type Fingerprint = (PathBuf, Vec<(String, u64, Option<SystemTime>)>);

async fn worker(weak: Weak<AnalysisService>) {
    if let Some(s) = weak.upgrade() {
        match s
            .db
            .run(|st| st.requeue_interrupted_analyses(MAX_ATTEMPTS))
            .await
        {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::info!(
                    requeued,
                    failed,
                    "resumed analyses interrupted by the last stop"
                )
            }
            Err(e) => tracing::warn!(error = %e, "cannot recover interrupted analyses"),
        }
    }
    let mut engine: Option<Arc<EngineHandle>> = None;
    let mut broken: Option<Fingerprint> = None;
    loop {
        let Some(s) = weak.upgrade() else { break };
        let worked = match s.analysis_round(&mut engine, &mut broken).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "analysis round failed");
                false
            }
        };
        let wake = s.wake.clone();
        drop(s);
        if !worked {
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = wake.notified() => {}
            }
        }
    }
    // Dropping the handle joins the engine thread: not on the runtime.
    if let Some(h) = engine {
        let _ = tokio::task::spawn_blocking(move || drop(h)).await;
    }
}

impl AnalysisService {
    /// One step of the worker: make sure a model is loaded when work waits, then run one job.
    /// Returns whether a job ran.
    async fn analysis_round(
        &self,
        engine: &mut Option<Arc<EngineHandle>>,
        broken: &mut Option<Fingerprint>,
    ) -> Result<bool, CoreError> {
        // Every upload wakes the worker: this round must cost the same whatever the queue's
        // length (an incident with thousands of waiting screenshots keeps uploading fast).
        // A summary draft asks for the model without queueing a screenshot.
        let wanted = engine.is_none() && self.want_engine.swap(false, Ordering::Relaxed);
        if !wanted && !self.db.run(|s| s.has_pending_analysis()).await? {
            return Ok(false);
        }
        if engine.is_none() {
            let (entry, located) = match self.locate() {
                Ok(x) => {
                    self.marked_waiting.store(false, Ordering::Relaxed);
                    x
                }
                Err(_) => {
                    // Uploads made while the model is missing are stored as waiting already;
                    // flip the queue only when the model has just gone.
                    if !self.marked_waiting.swap(true, Ordering::Relaxed) {
                        self.db.run(|s| s.set_analysis_waiting(true)).await?;
                    }
                    return Ok(false);
                }
            };
            let fp = (located.dir.clone(), fingerprint(&located.dir));
            if broken.as_ref() == Some(&fp) {
                return Ok(false);
            }
            self.set(Engine::Loading(located.dir.clone()));
            self.db.run(|s| s.set_analysis_waiting(false)).await?;
            let opts = LoadOptions {
                mode: self.weights(&entry),
                // The next start reads the quantized weights instead of quantizing (~1 min).
                cache_dir: Some(self.data_dir.join("model-cache")),
                ..LoadOptions::default()
            };
            let dir = located.dir.clone();
            let chosen = self.chosen_device();
            let device = chosen.device.clone();
            let loaded =
                tokio::task::spawn_blocking(move || EngineHandle::spawn(dir, device, opts)).await?;
            match loaded {
                Ok(h) => {
                    tracing::info!(model = %entry.id, dir = %located.dir.display(), device = %chosen.name, load_ms = h.load_ms, "model loaded");
                    if let Some(c) = &h.quant_cache {
                        match &c.error {
                            None => {
                                tracing::info!(read = c.read, written = c.written, file = ?c.path, "quantized-weight cache")
                            }
                            Some(e) => {
                                tracing::warn!(error = %e, file = ?c.path, "quantized weights not cached; the next start quantizes again")
                            }
                        }
                    }
                    self.set(Engine::Ready {
                        dir: located.dir.clone(),
                        load_ms: h.load_ms,
                    });
                    *broken = None;
                    let h = Arc::new(h);
                    self.share_engine(&h);
                    *engine = Some(h);
                }
                Err(e) => {
                    let reason = format!(
                        "cannot load {} from {}: {e}",
                        entry.id,
                        located.dir.display()
                    );
                    tracing::warn!("{reason}");
                    self.set(Engine::Failed {
                        dir: located.dir.clone(),
                        reason,
                    });
                    self.db.run(|s| s.set_analysis_waiting(true)).await?;
                    *broken = Some(fp);
                    return Ok(false);
                }
            }
        }
        let Some(h) = engine.as_ref() else {
            return Ok(false);
        };
        let Some(job) = self.db.run(|s| s.claim_analysis_job()).await? else {
            return Ok(false);
        };
        let job_id = job.id;
        let done = self.run_job(h, &job).await;
        match self
            .db
            .run(move |s| s.finish_analysis_job(job_id, &done))
            .await
        {
            Ok(_) | Err(CoreError::NotFound(_)) => {} // deleted meanwhile: nothing to record
            Err(e) => return Err(e),
        }
        Ok(true)
    }
}
