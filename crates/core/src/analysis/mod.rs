//! Screenshot analysis: the model manager's view from the app (which model, where, pulls in
//! progress), the engine worker that drains the persistent queue one job at a time, and the
//! status report. Uploads only add a queue row; they never wait for the model.

pub mod findings;
mod prompts;
pub mod times;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use opslens_domain::{AnalysisJob, AnalysisState};
use opslens_models::{Located, Manifest, ModelEntry, ModelSettings, PullEvent};
use opslens_store::{AnalysisOutcome, FinishedAnalysis};
use opslens_vlm::{EngineHandle, GenerateParams, LoadOptions, Sampling, WeightMode};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use utoipa::ToSchema;

use crate::{CoreError, Services};

/// A job started this often and never finished is marked failed instead of retried.
const MAX_ATTEMPTS: i64 = 3;
/// How often the worker looks again when nothing woke it (a model copied into place by hand).
const IDLE_POLL: Duration = Duration::from_secs(3);

/// How screenshots are analysed; read once at start.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Manifest id of the model (`OPSLENS_MODEL`); the manifest's default when `None`.
    pub model_id: Option<String>,
    /// Where models are looked for and pulled to.
    pub models: ModelSettings,
    /// Upper bound of generated tokens per analysis (`OPSLENS_ANALYSIS_MAX_TOKENS`).
    pub max_new_tokens: usize,
    /// Weight storage (`OPSLENS_WEIGHTS`: f32, f16, q8_0, q4k); the manifest's default if unset.
    pub weights: Option<String>,
}

impl AnalysisConfig {
    /// From the environment: `OPSLENS_MODEL`, `OPSLENS_MODEL_DIR`, `OPSLENS_WEIGHTS`,
    /// `OPSLENS_ANALYSIS_MAX_TOKENS` and the Hugging Face variables.
    pub fn from_env() -> AnalysisConfig {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        AnalysisConfig {
            model_id: var("OPSLENS_MODEL"),
            models: ModelSettings::from_env(),
            max_new_tokens: var("OPSLENS_ANALYSIS_MAX_TOKENS")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(768),
            weights: var("OPSLENS_WEIGHTS"),
        }
    }

    /// Sees no model and never downloads: a cache inside `data_dir`, offline. For tests and
    /// for callers that must not pick up the user's Hugging Face cache.
    pub fn isolated(data_dir: &std::path::Path) -> AnalysisConfig {
        AnalysisConfig {
            model_id: None,
            models: ModelSettings {
                model_dir: None,
                cache_dir: data_dir.join("hf-cache"),
                offline: true,
                endpoint: opslens_models::resolve::DEFAULT_ENDPOINT.into(),
                token: None,
            },
            max_new_tokens: 768,
            weights: None,
        }
    }
}

/// Progress of a model pull, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PullProgress {
    /// `downloading`, `done` or `failed`.
    pub state: String,
    /// File being fetched.
    pub file: Option<String>,
    /// Bytes present so far.
    pub done_bytes: u64,
    /// Bytes of the whole model.
    pub total_bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A supported model and its state on this machine (`GET /models`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    /// Manifest entry: repo, pinned revision, files, licence, quantizations.
    #[schema(value_type = Object)]
    pub entry: serde_json::Value,
    /// Whether this is the model the app analyses with.
    pub active: bool,
    /// Whether all its files are present.
    pub installed: bool,
    /// Where, when installed.
    pub dir: Option<String>,
    /// `model-dir` or `hf-cache`.
    pub source: Option<String>,
    /// What is missing and how to get it, when not installed.
    pub message: Option<String>,
    /// The latest pull, if one ran since the app started.
    pub pull: Option<PullProgress>,
}

/// Answer of `GET /test/vlm/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VlmStatus {
    /// Manifest id of the model that analyses screenshots.
    pub model: String,
    /// Its Hugging Face repository.
    pub repo: String,
    /// Pinned revision.
    pub revision: String,
    /// `missing`, `downloading`, `loading`, `ready` or `failed`.
    pub state: String,
    /// Why it is missing or failed.
    pub reason: Option<String>,
    /// Whether the model is loaded in memory (it loads on the first job and stays).
    pub loaded: bool,
    /// Compute device.
    pub device: String,
    /// Weight storage used.
    pub weights: String,
    /// Folder the model is read from.
    pub model_dir: Option<String>,
    /// Jobs queued or running.
    pub queue_length: i64,
    /// Screenshots per pending analysis state.
    pub queue: BTreeMap<String, i64>,
    /// Timings of the most recent finished analysis.
    #[schema(value_type = Option<Object>)]
    pub last_analysis: Option<serde_json::Value>,
    /// Progress of a pull of this model, if one ran.
    pub pull: Option<PullProgress>,
    /// What is going on and what to do, in words.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Engine {
    Idle,
    Loading(PathBuf),
    Ready { dir: PathBuf, load_ms: f64 },
    Failed { dir: PathBuf, reason: String },
}

/// Analysis state shared by the worker, the pulls and the status route.
#[derive(Debug)]
pub(crate) struct Analysis {
    cfg: AnalysisConfig,
    manifest: Manifest,
    entry: Result<ModelEntry, String>,
    engine: Mutex<Engine>,
    pulls: Mutex<HashMap<String, watch::Sender<PullProgress>>>,
    pub(crate) wake: Arc<Notify>,
}

impl Analysis {
    pub(crate) fn new(cfg: AnalysisConfig) -> Analysis {
        let manifest = Manifest::builtin();
        let id = cfg
            .model_id
            .clone()
            .unwrap_or_else(|| manifest.default.clone());
        let entry = manifest.get(&id).cloned();
        Analysis {
            cfg,
            manifest,
            entry,
            engine: Mutex::new(Engine::Idle),
            pulls: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
        }
    }

    fn weights(&self, e: &ModelEntry) -> WeightMode {
        self.cfg
            .weights
            .as_deref()
            .and_then(WeightMode::parse)
            .or_else(|| WeightMode::parse(&e.quantization.default))
            .unwrap_or_default()
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

    fn pull_of(&self, id: &str) -> Option<PullProgress> {
        let pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        pulls.get(id).map(|w| w.borrow().clone())
    }
}

pub(crate) fn spawn_worker(services: &Arc<Services>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(worker(Arc::downgrade(services)));
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

async fn worker(weak: Weak<Services>) {
    if let Some(s) = weak.upgrade() {
        match s
            .db(|st| st.requeue_interrupted_analyses(MAX_ATTEMPTS))
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
    let mut engine: Option<EngineHandle> = None;
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
        let wake = s.analysis.wake.clone();
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

impl Services {
    /// One step of the worker: make sure a model is loaded when work waits, then run one job.
    /// Returns whether a job ran.
    async fn analysis_round(
        &self,
        engine: &mut Option<EngineHandle>,
        broken: &mut Option<Fingerprint>,
    ) -> Result<bool, CoreError> {
        let pending = self.db(|s| s.pending_analysis_count()).await?;
        if pending == 0 {
            return Ok(false);
        }
        if engine.is_none() {
            let (entry, located) = match self.analysis.locate() {
                Ok(x) => x,
                Err(_) => {
                    self.db(|s| s.set_analysis_waiting(true)).await?;
                    return Ok(false);
                }
            };
            let fp = (located.dir.clone(), fingerprint(&located.dir));
            if broken.as_ref() == Some(&fp) {
                return Ok(false);
            }
            self.analysis.set(Engine::Loading(located.dir.clone()));
            self.db(|s| s.set_analysis_waiting(false)).await?;
            let opts = LoadOptions {
                mode: self.analysis.weights(&entry),
                // The next start reads the quantized weights instead of quantizing (~1 min).
                cache_dir: Some(self.data_dir().join("model-cache")),
                ..LoadOptions::default()
            };
            let dir = located.dir.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                EngineHandle::spawn(dir, candle_core::Device::Cpu, opts)
            })
            .await?;
            match loaded {
                Ok(h) => {
                    tracing::info!(model = %entry.id, dir = %located.dir.display(), load_ms = h.load_ms, "model loaded");
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
                    self.analysis.set(Engine::Ready {
                        dir: located.dir.clone(),
                        load_ms: h.load_ms,
                    });
                    *broken = None;
                    *engine = Some(h);
                }
                Err(e) => {
                    let reason = format!(
                        "cannot load {} from {}: {e}",
                        entry.id,
                        located.dir.display()
                    );
                    tracing::warn!("{reason}");
                    self.analysis.set(Engine::Failed {
                        dir: located.dir.clone(),
                        reason,
                    });
                    self.db(|s| s.set_analysis_waiting(true)).await?;
                    *broken = Some(fp);
                    return Ok(false);
                }
            }
        }
        let Some(h) = engine.as_ref() else {
            return Ok(false);
        };
        let Some(job) = self.db(|s| s.claim_analysis_job()).await? else {
            return Ok(false);
        };
        let job_id = job.id;
        let done = self.run_job(h, &job).await;
        match self.db(move |s| s.finish_analysis_job(job_id, &done)).await {
            Ok(_) | Err(CoreError::NotFound(_)) => {} // deleted meanwhile: nothing to record
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    async fn run_job(&self, h: &EngineHandle, job: &AnalysisJob) -> FinishedAnalysis {
        let model = self
            .analysis
            .entry
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        let started = Instant::now();
        let failed = |error: String, timings: serde_json::Value| FinishedAnalysis {
            model: model.clone(),
            timings,
            raw_output: String::new(),
            outcome: AnalysisOutcome::Failed { error },
        };
        let eid = job.evidence_id;
        let evidence = match self.evidence(eid).await {
            Ok(e) => e,
            Err(e) => return failed(e.to_string(), serde_json::Value::Null),
        };
        let image = match self.db(move |s| s.evidence_image(eid)).await {
            Ok((path, _)) => tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                image::load_from_memory(&bytes).map_err(|e| format!("cannot decode the image: {e}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let image = match image {
            Ok(i) => i,
            Err(e) => return failed(e, serde_json::Value::Null),
        };
        let (prompt, max) = match job.question.as_deref() {
            Some(q) => (
                prompts::question(q),
                self.analysis.cfg.max_new_tokens.min(256),
            ),
            None => (
                prompts::ANALYZE.to_string(),
                self.analysis.cfg.max_new_tokens,
            ),
        };
        let params = GenerateParams {
            max_new_tokens: max,
            sampling: Sampling::Greedy,
            system: Some(prompts::SYSTEM.to_string()),
            ..GenerateParams::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let submitted = h.submit(opslens_vlm::Job {
            image: Some(image),
            prompt,
            params,
            cancel: Arc::default(),
            on_text: None,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        });
        let generation = match submitted {
            Ok(()) => rx
                .await
                .map_err(|_| "the engine stopped during the analysis".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let total_ms = started.elapsed().as_millis() as i64;
        let g = match generation {
            Ok(g) => g,
            Err(e) => return failed(e, serde_json::json!({ "total_ms": total_ms })),
        };
        let t = &g.timings;
        let decode_s = t.decode_ms / 1000.0;
        let timings = serde_json::json!({
            "total_ms": total_ms,
            "preprocess_ms": t.preprocess_ms,
            "vision_ms": t.vision_ms,
            "prefill_ms": t.prefill_ms,
            "decode_ms": t.decode_ms,
            "prompt_tokens": g.prompt_tokens,
            "image_tokens": g.image_tokens,
            "generated_tokens": g.token_ids.len(),
            "decode_tokens_per_s": if decode_s > 0.0 { g.token_ids.len() as f64 / decode_s } else { 0.0 },
            "stop_reason": g.stop_reason,
        });
        let outcome = match job.question {
            Some(_) => AnalysisOutcome::Answer {
                answer: match g.text.trim() {
                    "" => "(the model gave no answer)".to_string(),
                    a => a.to_string(),
                },
            },
            None => {
                let f = findings::parse(&g.text);
                let events = times::events(&f, evidence.created_at);
                AnalysisOutcome::Findings {
                    content: findings::render(&f),
                    findings: serde_json::to_value(&f).unwrap_or_default(),
                    ms: total_ms,
                    events,
                }
            }
        };
        FinishedAnalysis {
            model,
            timings,
            raw_output: g.text,
            outcome,
        }
    }

    /// Whether the configured model's files are present (uploads then show `queued`).
    pub(crate) fn model_present(&self) -> bool {
        matches!(self.analysis.engine(), Engine::Ready { .. }) || self.analysis.locate().is_ok()
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
            .db(move |s| s.enqueue_analysis(evidence_id, question.as_deref(), present))
            .await?;
        self.analysis.wake.notify_one();
        Ok(job)
    }

    /// Wakes the worker (a screenshot was stored).
    pub(crate) fn analysis_queued(&self) {
        self.analysis.wake.notify_one();
    }

    /// One analysis job.
    pub async fn analysis_job(&self, id: i64) -> Result<AnalysisJob, CoreError> {
        self.db(move |s| s.analysis_job(id)).await
    }

    /// The analysis jobs of a screenshot.
    pub async fn analysis_jobs_of(&self, evidence_id: i64) -> Result<Vec<AnalysisJob>, CoreError> {
        self.evidence(evidence_id).await?;
        self.db(move |s| s.analysis_jobs_of(evidence_id)).await
    }

    /// Model status: which model, where, whether loaded, the queue and the last timings.
    pub async fn vlm_status(&self) -> Result<VlmStatus, CoreError> {
        let backlog = self.analysis_backlog().await?;
        let queue: BTreeMap<String, i64> = backlog
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect();
        let queue_length = self.db(|s| s.pending_analysis_count()).await?;
        let last = self.db(|s| s.last_finished_analysis()).await?;
        let last_analysis = last.map(|j| {
            serde_json::json!({
                "job_id": j.id, "evidence_id": j.evidence_id, "finished_at": j.finished_at,
                "timings": j.timings,
            })
        });
        let a = &self.analysis;
        let (id, repo, revision, weights) = match &a.entry {
            Ok(e) => (
                e.id.clone(),
                e.repo.clone(),
                e.revision.clone(),
                a.weights(e),
            ),
            Err(_) => (
                a.cfg.model_id.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                WeightMode::default(),
            ),
        };
        let pull = a.pull_of(&id);
        let waiting = queue
            .get(AnalysisState::WaitingForModel.as_str())
            .copied()
            .unwrap_or(0);
        let (state, reason, loaded, dir, message) = match (a.engine(), &a.entry) {
            (_, Err(e)) => ("failed", Some(e.clone()), false, None, format!("OPSLENS_MODEL names no supported model: {e}")),
            (Engine::Ready { dir, load_ms }, _) => (
                "ready",
                None,
                true,
                Some(dir),
                format!("model loaded in {:.1} s; {queue_length} job(s) pending", load_ms / 1000.0),
            ),
            (Engine::Loading(dir), _) => ("loading", None, false, Some(dir), "loading the model; queued screenshots follow".into()),
            (Engine::Failed { dir, reason }, _) => (
                "failed",
                Some(reason.clone()),
                false,
                Some(dir),
                format!("{reason}; fix or replace the files (`opslens models verify`), analysis resumes by itself"),
            ),
            (Engine::Idle, _) => match a.locate() {
                Ok((_, l)) => ("ready", None, false, Some(l.dir), "model present; it loads with the first screenshot".into()),
                Err(_) if pull.as_ref().is_some_and(|p| p.state == "downloading") => (
                    "downloading",
                    None,
                    false,
                    None,
                    format!("downloading the model; {waiting} screenshot(s) wait for it"),
                ),
                Err(msg) => (
                    "missing",
                    Some(msg.clone()),
                    false,
                    None,
                    format!("{msg}. Screenshots are kept with state `waiting-for-model` ({waiting} waiting) and analysed once the model is present."),
                ),
            },
        };
        Ok(VlmStatus {
            model: id,
            repo,
            revision,
            state: state.into(),
            reason,
            loaded,
            device: "cpu".into(),
            weights: format!("{weights:?}").to_lowercase(),
            model_dir: dir.map(|d| d.display().to_string()),
            queue_length,
            queue,
            last_analysis,
            pull,
            message,
        })
    }

    /// Every supported model and its state here.
    pub fn models(&self) -> Vec<ModelInfo> {
        let a = &self.analysis;
        let active = a.entry.as_ref().map(|e| e.id.clone()).ok();
        a.manifest
            .models
            .iter()
            .map(|e| self.model_info(e, active.as_deref() == Some(e.id.as_str())))
            .collect()
    }

    fn model_info(&self, e: &ModelEntry, active: bool) -> ModelInfo {
        let found = opslens_models::resolve(e, &self.analysis.cfg.models.for_model(active));
        ModelInfo {
            entry: serde_json::to_value(e).unwrap_or_default(),
            active,
            installed: found.is_ok(),
            dir: found.as_ref().ok().map(|l| l.dir.display().to_string()),
            source: found.as_ref().ok().map(|l| l.how.to_string()),
            message: found.as_ref().err().map(|nf| nf.message.clone()),
            pull: self.analysis.pull_of(&e.id),
        }
    }

    /// One model.
    pub fn model(&self, id: &str) -> Result<ModelInfo, CoreError> {
        let e = self
            .analysis
            .manifest
            .get(id)
            .map_err(CoreError::NotFound)?;
        let active = self.analysis.entry.as_ref().is_ok_and(|a| a.id == e.id);
        Ok(self.model_info(e, active))
    }

    /// Starts pulling a model in the background (or returns the pull already running) and
    /// returns a receiver of its progress.
    pub fn pull_model(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<watch::Receiver<PullProgress>, CoreError> {
        let e = self
            .analysis
            .manifest
            .get(id)
            .map_err(CoreError::NotFound)?
            .clone();
        if !e.hub {
            return Err(CoreError::Invalid(format!(
                "model {id} is not published on the hub; point OPSLENS_MODEL_DIR at its folder"
            )));
        }
        let mut pulls = self
            .analysis
            .pulls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(w) = pulls.get(id) {
            if w.borrow().state == "downloading" {
                return Ok(w.subscribe());
            }
        }
        let (tx, rx) = watch::channel(PullProgress {
            state: "downloading".into(),
            file: None,
            done_bytes: 0,
            total_bytes: e.total_size(),
            error: None,
            started_at: Utc::now(),
            finished_at: None,
        });
        pulls.insert(id.to_string(), tx.clone());
        drop(pulls);
        let settings = self.analysis.cfg.models.clone();
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let progress = tx.clone();
            let on_event = Arc::new(move |ev: PullEvent| {
                progress.send_modify(|p| match ev {
                    PullEvent::File { name, .. } | PullEvent::Verifying { name } => {
                        p.file = Some(name)
                    }
                    PullEvent::Progress { done_bytes, .. } => p.done_bytes = done_bytes,
                    _ => {}
                })
            });
            let r = opslens_models::pull(&e, &settings, on_event).await;
            tx.send_modify(|p| {
                p.finished_at = Some(Utc::now());
                match &r {
                    Ok(_) => {
                        p.state = "done".into();
                        p.done_bytes = p.total_bytes;
                    }
                    Err(err) => {
                        p.state = "failed".into();
                        p.error = Some(err.to_string());
                    }
                }
            });
            if let Some(s) = svc.upgrade() {
                s.analysis.wake.notify_one();
            }
        });
        Ok(rx)
    }
}
