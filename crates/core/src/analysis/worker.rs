//! The analysis worker: one task that drains the persistent queue one job at a time, loading
//! the model when work waits (and keeping it), marking screenshots `waiting-for-model` while
//! none can load, and resuming jobs a stop interrupted. The app runs one; `opslens worker`
//! processes run the same loop against the app's data dir. Each job is taken with a lease the
//! worker renews while it runs (see [`opslens_store::Store::take_analysis_job`]), so workers
//! sharing a queue never run one job twice and a dead worker's job is taken over.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use opslens_store::{Store, StoreError};
use opslens_vlm::{EngineHandle, LoadOptions};

use super::engine::{Analyzer, LocalAnalyzer};
use super::remote::RemoteAnalyzer;
use super::{AnalysisConfig, AnalysisService, Engine};
use crate::db::Db;
use crate::CoreError;

/// A job started this often and never finished is marked failed instead of retried.
const MAX_ATTEMPTS: i64 = 3;

/// Starts the worker; it holds only a weak reference, so it ends when the service is dropped.
pub(crate) fn spawn_worker(service: &Arc<AnalysisService>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(worker(Arc::downgrade(service)));
}

/// `opslens worker`: runs only the analysis loop of this process against the store in
/// `data_dir` (the data dir of a running app, shared through SQLite), as worker
/// `worker@<host>:<pid>` unless `cfg.worker_id` says otherwise, until `stop` resolves. The
/// run in progress then stops and its job goes back to the queue at once (a worker killed
/// without that leaves it to its lease).
pub async fn run_worker_process(
    data_dir: PathBuf,
    mut cfg: AnalysisConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), CoreError> {
    let dir = data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_shared(&dir))
        .await?
        .map_err(|e| match e {
            StoreError::TooNew { .. } => CoreError::Conflict(e.to_string()),
            e => CoreError::internal(
                format!("cannot open the database in {}", data_dir.display()),
                e,
            ),
        })?;
    if cfg.worker_id.is_none() {
        cfg.worker_id = Some(format!(
            "worker@{}:{}",
            super::config::hostname(),
            std::process::id()
        ));
    }
    let service = Arc::new(AnalysisService::new(Db::new(store), data_dir, cfg));
    let device = match &service.cfg.remote {
        Some(r) => r.shown_url(),
        // A worker that cannot run anything should not take a place on the queue: a
        // meaningless OPSLENS_DEVICE or OPSLENS_WEIGHTS stops it at once, named.
        None => {
            let d = service.chosen_device().map_err(CoreError::Invalid)?;
            if let Ok(e) = &service.entry {
                service.weights(e, d.is_gpu()).map_err(CoreError::Invalid)?;
            }
            d.name
        }
    };
    tracing::info!(worker = %service.worker_id, %device, lease_s = service.cfg.lease.as_secs_f64(), "analysis worker started");
    let db = service.db.clone();
    let me = service.worker_id.clone();
    let mut task = tokio::spawn(worker(Arc::downgrade(&service)));
    tokio::select! {
        () = stop => {}
        _ = &mut task => {}
    }
    task.abort();
    let _ = task.await;
    drop(service);
    let (requeued, _) = db
        .run(move |s| s.requeue_interrupted_analyses(&me, MAX_ATTEMPTS))
        .await?;
    tracing::info!(requeued, "analysis worker stopped");
    Ok(())
}

/// Sets the flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
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

/// What the loop keeps between rounds: the engine, once there is one.
#[derive(Default)]
struct Slot {
    engine: Option<Arc<dyn Analyzer>>,
    /// The model folder that failed to load, retried only once its files change.
    broken: Option<Fingerprint>,
    /// What loading the engine cost, charged to the first job after the load.
    load_ms: f64,
    /// The loaded model has no calibration for its weights and device yet: measure once the
    /// queue is idle (so it never delays a screenshot).
    calibrate: bool,
}

async fn worker(weak: Weak<AnalysisService>) {
    if let Some(s) = weak.upgrade() {
        let me = s.worker_id.clone();
        match s
            .db
            .run(move |st| st.requeue_interrupted_analyses(&me, MAX_ATTEMPTS))
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
    let mut slot = Slot::default();
    let mut others_since: Option<String> = None;
    if let Some(s) = weak.upgrade() {
        if s.feed.get().is_some() {
            // Start from now: what other workers did before is no news.
            others_since =
                s.db.run({
                    let me = s.worker_id.clone();
                    move |st| st.analyses_by_others_since(&me, None)
                })
                .await
                .ok()
                .and_then(|(_, newest)| newest)
                .or_else(|| Some(String::new()));
        }
        if let Some(r) = &s.cfg.remote {
            s.set(Engine::Remote { url: r.shown_url() });
            slot.engine = Some(Arc::new(RemoteAnalyzer::new(r.clone())));
        }
    }
    loop {
        let Some(s) = weak.upgrade() else { break };
        let worked = match s.analysis_round(&mut slot).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "analysis round failed");
                false
            }
        };
        if !worked {
            if let (Some(feed), Some(since)) = (s.feed.get(), others_since.as_mut()) {
                s.announce_others(feed, since).await;
            }
        }
        let wake = s.wake.clone();
        let poll = s.cfg.poll;
        drop(s);
        if !worked {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = wake.notified() => {}
            }
        }
    }
    // Dropping the local engine joins its thread: not on the runtime.
    if let Some(h) = slot.engine {
        let _ = tokio::task::spawn_blocking(move || drop(h)).await;
    }
}

impl AnalysisService {
    /// Measures what an analysis costs with the loaded local model and stores it; a failure is
    /// logged (the estimate is then missing, nothing else changes).
    async fn calibrate(&self, engine: &dyn Analyzer) {
        let Ok(entry) = self.entry.clone() else {
            return;
        };
        // Named as the status names them, so the stored figure is found for this set-up.
        let gpu = self.chosen_device().is_ok_and(|d| d.is_gpu());
        let Ok(weights) = self.weights(&entry, gpu) else {
            return;
        };
        let weights = format!("{weights:?}").to_lowercase();
        match super::calibration::measure(engine, &entry.id, &weights).await {
            Ok(c) => {
                tracing::info!(model = %c.model, device = %c.device, ttft_s = c.seconds_to_first_token, decode_tokens_per_s = ?c.decode_tokens_per_s, "calibrated: a 1280x720 screenshot");
                let dir = self.data_dir.clone();
                let stored =
                    tokio::task::spawn_blocking(move || super::calibration::store(&dir, &c)).await;
                if let Ok(Err(e)) = stored {
                    tracing::warn!(error = %e, "cannot store the calibration");
                }
            }
            Err(e) => tracing::warn!(error = %e, "calibration run failed"),
        }
    }

    /// Announces on the app's change feed the screenshots other processes' workers took or
    /// finished since `since` (the store's feed only hears this process's commits), so the
    /// UI follows their work live.
    async fn announce_others(&self, feed: &crate::feed::Feed, since: &mut String) {
        let me = self.worker_id.clone();
        let after = since.clone();
        match self
            .db
            .run(move |s| s.analyses_by_others_since(&me, Some(&after)))
            .await
        {
            Ok((changed, newest)) => {
                let mut changes = Vec::new();
                for (evidence_id, incident_id) in changed {
                    use opslens_domain::{FeedChange, FeedKind, FeedOp};
                    changes.push(FeedChange {
                        kind: FeedKind::Evidence,
                        op: FeedOp::Updated,
                        incident_id,
                        id: evidence_id,
                    });
                    // Findings add timeline events and move the incident's `updated_at`.
                    changes.push(FeedChange {
                        kind: FeedKind::Incident,
                        op: FeedOp::Updated,
                        incident_id,
                        id: incident_id,
                    });
                }
                feed.publish(changes);
                if let Some(n) = newest {
                    *since = n;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read other workers' progress"),
        }
    }

    /// One step of the worker: make sure a model is loaded when work waits, then run one job.
    /// Returns whether a job ran.
    async fn analysis_round(&self, slot: &mut Slot) -> Result<bool, CoreError> {
        if slot.calibrate {
            if let Some(e) = slot.engine.clone() {
                if !self.db.run(|s| s.has_pending_analysis()).await? {
                    slot.calibrate = false;
                    self.calibrate(e.as_ref()).await;
                    return Ok(false);
                }
            }
        }
        let Slot {
            engine,
            broken,
            load_ms,
            calibrate,
        } = slot;
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
            let (mut chosen, mut mode) = match self.placement(&entry) {
                Ok(p) => p,
                Err(reason) => {
                    // `OPSLENS_DEVICE` or `OPSLENS_WEIGHTS` means nothing: said in the log
                    // and the status until a restart with a value that does.
                    tracing::warn!("{reason}");
                    self.set(Engine::Failed {
                        dir: located.dir.clone(),
                        reason,
                    });
                    self.db.run(|s| s.set_analysis_waiting(true)).await?;
                    *broken = Some(fp);
                    return Ok(false);
                }
            };
            self.set(Engine::Loading(located.dir.clone()));
            self.db.run(|s| s.set_analysis_waiting(false)).await?;
            let load_started = Instant::now();
            let loaded = loop {
                let opts = LoadOptions {
                    mode,
                    // The next start reads the quantized weights instead of quantizing (~1 min).
                    cache_dir: Some(self.data_dir.join("model-cache")),
                    ..LoadOptions::default()
                };
                let dir = located.dir.clone();
                let device = chosen.device.clone();
                let loaded =
                    tokio::task::spawn_blocking(move || EngineHandle::spawn(dir, device, opts))
                        .await?;
                match loaded {
                    // A GPU too small for the model: the CPU takes over, said once.
                    Err(e)
                        if chosen.is_gpu() && super::device::is_out_of_memory(&e.to_string()) =>
                    {
                        let cpu = chosen.fall_back_to_cpu(&format!(
                            "ran out of memory loading {} ({e})",
                            entry.id
                        ));
                        self.set_device(cpu.clone());
                        mode = match self.weights(&entry, false) {
                            Ok(m) => m,
                            Err(_) => mode,
                        };
                        chosen = cpu;
                    }
                    other => break other,
                }
            };
            match loaded {
                Ok(h) => {
                    tracing::info!(model = %entry.id, dir = %located.dir.display(), device = %chosen.name, weights = ?mode, load_ms = h.load_ms, "model loaded");
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
                    *load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
                    let weights = format!("{mode:?}").to_lowercase();
                    *calibrate = !super::calibration::load(&self.data_dir)
                        .is_some_and(|c| c.is_for(&entry.id, &weights, &chosen.name));
                    let handle = Arc::new(h);
                    self.share_engine(&handle);
                    *engine = Some(Arc::new(LocalAnalyzer {
                        handle,
                        device: chosen.name.clone(),
                    }));
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
        let Some(engine) = engine.clone() else {
            return Ok(false);
        };
        let (me, lease) = (self.worker_id.clone(), self.cfg.lease);
        let Some(job) = self
            .db
            .run(move |s| s.take_analysis_job(&me, lease, MAX_ATTEMPTS))
            .await?
        else {
            return Ok(false);
        };
        let job_id = job.id;
        let cancel = Arc::new(AtomicBool::new(false));
        // Also stops the engine when this round is dropped (the worker process stopping).
        let _stop_engine = CancelOnDrop(cancel.clone());
        let charged = std::mem::take(load_ms);
        let run = self.run_job(engine.as_ref(), &job, charged, cancel.clone());
        tokio::pin!(run);
        // Renew every third of the lease: two renewals may fail (a busy disk) before it lapses.
        let mut renew = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        let done = loop {
            tokio::select! {
                done = &mut run => break Some(done),
                _ = renew.tick() => {
                    let me = self.worker_id.clone();
                    match self.db.run(move |s| s.renew_analysis_lease(job_id, &me, lease)).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job_id, worker = %self.worker_id, "lease lost (another worker took the job over, or it was deleted); stopping this run");
                            cancel.store(true, Ordering::Relaxed);
                            break None;
                        }
                        Err(e) => tracing::warn!(job_id, error = %e, "cannot renew the analysis lease"),
                    }
                }
            }
        };
        let Some(done) = done else {
            return Ok(true);
        };
        match self
            .db
            .run(move |s| s.finish_analysis_job(job_id, &done))
            .await
        {
            // Deleted meanwhile, or taken over by another worker: nothing to record.
            Ok(_) | Err(CoreError::NotFound(_)) => {}
            Err(CoreError::Conflict(why)) => tracing::warn!(job_id, "{why}"),
            Err(e) => return Err(e),
        }
        Ok(true)
    }
}
