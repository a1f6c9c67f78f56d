//! Screenshot analysis, a folder by job: `config` (which model, weights, device), `device`
//! (the one device chooser), `worker` (drains the persistent queue, loads the model), `job`
//! (one run: prompt, generate, parse), `status` (what the app reports), `pull` (downloads),
//! and the model's output handling (`findings`, `times`, `prompts`). Uploads only add a queue
//! row; they never wait for the model.

pub mod calibration;
pub mod compare;
mod config;
pub mod device;
pub mod engine;
pub mod findings;
mod here;
mod job;
mod progress;
mod prompts;
#[cfg(test)]
mod props;
mod pull;
pub mod remote;
mod status;
pub mod summary;
pub mod times;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use opslens_domain::AnalysisJob;
use opslens_models::{Located, Manifest, ModelEntry};
use opslens_vlm::{EngineHandle, WeightMode};
use tokio::sync::{watch, Notify};

pub use calibration::Calibration;
pub use config::AnalysisConfig;
pub use device::ChosenDevice;
pub use progress::AnalysisProgress;
pub use pull::{download_plan, download_refusal, DownloadPlan, PullProgress};
pub use remote::RemoteConfig;
pub use status::{ModelInfo, VlmStatus};
pub use worker::run_worker_process;
pub(crate) use worker::spawn_worker;

use crate::db::Db;
use crate::CoreError;

#[derive(Debug, Clone)]
enum Engine {
    Idle,
    Loading(PathBuf),
    Ready {
        dir: PathBuf,
        load_ms: f64,
    },
    Failed {
        dir: PathBuf,
        reason: String,
    },
    /// Analysis goes to an OpenAI-compatible server (no local model).
    Remote {
        url: String,
    },
}

/// The analysis use-case: the queue of screenshot analyses and questions, the engine that
/// runs them, model pulls and the status report. Shared by the worker, the pulls and the
/// routes.
#[derive(Debug)]
pub struct AnalysisService {
    db: Db,
    data_dir: PathBuf,
    cfg: AnalysisConfig,
    /// Chosen once, on first need, so a fallback is said once; replaced by the CPU when the
    /// GPU runs out of memory loading the model. An error: `OPSLENS_DEVICE` means nothing.
    device: Mutex<Option<Result<ChosenDevice, String>>>,
    manifest: Manifest,
    entry: Result<ModelEntry, String>,
    engine: Mutex<Engine>,
    pulls: Mutex<HashMap<String, watch::Sender<PullProgress>>>,
    /// Rung to stop a model's running pull (`DELETE /models/{id}/pull`).
    pull_stops: Mutex<HashMap<String, Arc<Notify>>>,
    wake: Arc<Notify>,
    /// Whether the worker has marked the queue `waiting-for-model` since it last saw the
    /// model (so it flips the queue once per disappearance, not on every wake).
    marked_waiting: AtomicBool,
    /// Text of running analyses as it is written, for the stream route.
    progress: progress::Hub,
    /// Who this process is on the shared queue (`app@host`, `worker@host:pid`).
    worker_id: String,
    /// The app's change feed, where other processes' analysis work is announced (none in an
    /// `opslens worker` process).
    feed: OnceLock<crate::feed::Feed>,
    /// The worker's loaded engine, lent to summary drafts (the worker owns it and ends it).
    shared: Mutex<Weak<EngineHandle>>,
    /// A summary draft asked for the model: the worker loads it without a queued screenshot.
    want_engine: AtomicBool,
}

impl AnalysisService {
    pub(crate) fn new(db: Db, data_dir: PathBuf, cfg: AnalysisConfig) -> AnalysisService {
        let manifest = cfg.manifest.clone().unwrap_or_else(Manifest::builtin);
        let id = cfg
            .model_id
            .clone()
            .unwrap_or_else(|| manifest.default.clone());
        let entry = manifest.get(&id).cloned();
        let cfg_worker_id = cfg
            .worker_id
            .clone()
            .unwrap_or_else(|| format!("app@{}", config::hostname()));
        let engine = match &cfg.remote {
            Some(r) => Engine::Remote { url: r.shown_url() },
            None => Engine::Idle,
        };
        AnalysisService {
            db,
            data_dir,
            cfg,
            device: Mutex::new(None),
            manifest,
            entry,
            engine: Mutex::new(engine),
            pulls: Mutex::new(HashMap::new()),
            pull_stops: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            marked_waiting: AtomicBool::new(false),
            progress: progress::Hub::default(),
            worker_id: cfg_worker_id,
            feed: OnceLock::new(),
            shared: Mutex::new(Weak::new()),
            want_engine: AtomicBool::new(false),
        }
    }

    /// The model name recorded on jobs: the remote model, or the manifest id.
    fn model_name(&self) -> String {
        match &self.cfg.remote {
            Some(r) => r.model.clone(),
            None => self
                .entry
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_default(),
        }
    }

    /// Gives the loop the app's change feed, to announce other workers' progress on it.
    pub(crate) fn set_feed(&self, feed: crate::feed::Feed) {
        let _ = self.feed.set(feed);
    }

    /// Who this process is on the shared queue.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The weight storage for `e` on the chosen device (see [`device::weights_for`]).
    fn weights(&self, e: &ModelEntry, gpu: bool) -> Result<WeightMode, String> {
        device::weights_for(&e.quantization, gpu, self.cfg.weights.as_deref())
    }

    fn locate(&self) -> Result<(ModelEntry, Located), String> {
        let e = self.entry.clone()?;
        let l = opslens_models::resolve(&e, &self.cfg.models).map_err(|nf| nf.message)?;
        Ok((e, l))
    }

    fn set(&self, e: Engine) {
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    fn engine(&self) -> Engine {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The device the model runs (or will run) on; an error names a meaningless
    /// `OPSLENS_DEVICE`.
    fn chosen_device(&self) -> Result<ChosenDevice, String> {
        self.device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| device::choose(self.cfg.device.as_deref()))
            .clone()
    }

    /// Replaces the chosen device (the GPU ran out of memory: the CPU takes over).
    fn set_device(&self, d: ChosenDevice) {
        *self.device.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ok(d));
    }

    /// The device and weights the local model would load with now, or what in the
    /// configuration prevents it (`OPSLENS_DEVICE`, `OPSLENS_WEIGHTS`).
    fn placement(&self, e: &ModelEntry) -> Result<(ChosenDevice, WeightMode), String> {
        let d = self.chosen_device()?;
        let w = self.weights(e, d.is_gpu())?;
        Ok((d, w))
    }

    /// Lends the worker's freshly loaded engine to summary drafts.
    fn share_engine(&self, h: &Arc<EngineHandle>) {
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(h);
    }

    /// The loaded engine, while the worker holds it.
    fn lent_engine(&self) -> Option<Arc<EngineHandle>> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
    }

    fn pull_of(&self, id: &str) -> Option<PullProgress> {
        let pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        pulls.get(id).map(|w| w.borrow().clone())
    }
}

impl AnalysisService {
    /// Whether the configured model's files are present (uploads then show `queued`).
    pub(crate) fn model_present(&self) -> bool {
        self.cfg.remote.is_some()
            || matches!(self.engine(), Engine::Ready { .. })
            || self.locate().is_ok()
    }

    /// Queues a new run over a screenshot: the full analysis again, or a question.
    pub async fn analyze(
        &self,
        evidence_id: i64,
        question: Option<String>,
    ) -> Result<AnalysisJob, CoreError> {
        crate::validate::optional_text("question", question.as_deref())?;
        let max = crate::validate::MAX_TEXT;
        crate::validate::max_chars("question", question.as_deref().unwrap_or(""), max)?;
        let question = question
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        let present = self.model_present();
        let job = self
            .db
            .run(move |s| s.enqueue_analysis(evidence_id, question.as_deref(), present))
            .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Wakes the worker (a screenshot was stored).
    pub(crate) fn queued(&self) {
        self.wake.notify_one();
    }

    /// One analysis job.
    pub async fn job(&self, id: i64) -> Result<AnalysisJob, CoreError> {
        self.db.run(move |s| s.analysis_job(id)).await
    }

    /// The analysis jobs of a screenshot.
    pub async fn jobs_of(&self, evidence_id: i64) -> Result<Vec<AnalysisJob>, CoreError> {
        self.db.run(move |s| s.evidence(evidence_id)).await?;
        self.db.run(move |s| s.analysis_jobs_of(evidence_id)).await
    }
}
