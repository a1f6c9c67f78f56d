//! What the app tells about analysis: the model status (`GET /test/vlm/status`) and the
//! supported models with their install state (`GET /models`).

use std::collections::BTreeMap;

use opslens_domain::AnalysisState;
use opslens_models::ModelEntry;
use opslens_vlm::WeightMode;
use serde::Serialize;
use utoipa::ToSchema;

use super::calibration::Calibration;
use super::pull::{DownloadPlan, PullProgress};
use super::{AnalysisService, Engine};
use crate::CoreError;

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
    /// What downloading it takes here (size left, free disk, whether it fits).
    pub download: DownloadPlan,
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
    /// Compute device: the one the loaded model runs on, else the one it will load on
    /// (`cpu`, `cuda:0`, `metal:0`).
    pub device: String,
    /// Why the device asked for (`OPSLENS_DEVICE`) is not the one used, when it is not: the
    /// build lacks the feature, no driver or device answered, or the GPU ran out of memory
    /// loading the model and the CPU took over. A meaningless `OPSLENS_DEVICE` is named here.
    pub device_note: Option<String>,
    /// What the device is: the GPU's model name (`NVIDIA H200`), or the CPU's with its thread
    /// count; `null` where the platform does not say, or analysis runs remotely.
    pub device_hardware: Option<String>,
    /// The device's memory (the machine's, for the CPU), read when asked; `null` where the
    /// platform does not say, or analysis runs remotely.
    pub device_memory: Option<super::device::DeviceMemory>,
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
    /// The server screenshots are sent to when analysis runs remotely
    /// (`OPSLENS_ANALYSIS_URL`); `null` when they never leave this machine.
    pub remote_url: Option<String>,
    /// Says plainly where screenshots go when they leave this machine
    /// ("analysed by <url>: screenshots leave this machine"); `null` otherwise.
    pub privacy: Option<String>,
    /// This process on the shared queue (`app@host`); jobs record who ran them.
    pub worker: String,
    /// What downloading the model takes here, while it is missing (`null` once present or
    /// when analysis is remote).
    pub download: Option<DownloadPlan>,
    /// The measured cost of an analysis with this model, weights and device (taken once
    /// after the first load, when the queue is idle); `null` until measured.
    pub calibration: Option<Calibration>,
}

impl AnalysisService {
    /// Model status: which model, where, whether loaded, the queue and the last timings.
    pub async fn vlm_status(&self) -> Result<VlmStatus, CoreError> {
        let backlog = self.db.run(|s| s.analysis_backlog()).await?;
        let queue: BTreeMap<String, i64> = backlog
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect();
        let queue_length = self.db.run(|s| s.pending_analysis_count()).await?;
        let last = self.db.run(|s| s.last_finished_analysis()).await?;
        let last_analysis = last.map(|j| {
            serde_json::json!({
                "job_id": j.id, "evidence_id": j.evidence_id, "finished_at": j.finished_at,
                "timings": j.timings,
            })
        });
        let a = self;
        let device = a.chosen_device();
        let gpu = device.as_ref().is_ok_and(|d| d.is_gpu());
        // What in the configuration keeps the local model from loading.
        let mut misconfigured = device.as_ref().err().cloned();
        let (id, repo, revision, weights) = match &a.entry {
            Ok(e) => (
                e.id.clone(),
                e.repo.clone(),
                e.revision.clone(),
                a.weights(e, gpu).unwrap_or_else(|err| {
                    misconfigured.get_or_insert(err);
                    WeightMode::default()
                }),
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
        let remote_url = a.cfg.remote.as_ref().map(|r| r.shown_url());
        let privacy = remote_url
            .as_ref()
            .map(|u| format!("analysed by {u}: screenshots leave this machine"));
        let (state, reason, loaded, dir, message) = match (a.engine(), &a.entry) {
            (Engine::Remote { url }, _) => (
                "ready",
                None,
                true,
                None,
                format!("analysed by {url}: screenshots leave this machine; {queue_length} job(s) pending"),
            ),
            (_, Err(e)) => ("failed", Some(e.clone()), false, None, format!("OPSLENS_MODEL names no supported model: {e}")),
            (_, Ok(_)) if misconfigured.is_some() => {
                let why = misconfigured.clone().unwrap_or_default();
                ("failed", Some(why.clone()), false, None, format!("{why}; fix it and restart OpsLens"))
            }
            (Engine::Ready { dir, load_ms, .. }, _) => (
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
        let download = match (&a.entry, state, &a.cfg.remote) {
            (Ok(e), "missing" | "downloading", None) => {
                Some(super::pull::download_plan(e, &a.cfg.models))
            }
            _ => None,
        };
        let weights_name = format!("{weights:?}").to_lowercase();
        let (id, device_name, device_note, hardware) = match (&a.cfg.remote, device) {
            (Some(r), _) => (r.model.clone(), r.shown_url(), None, Default::default()),
            (None, Ok(d)) => (id, d.name.clone(), d.note.clone(), d.hardware()),
            (None, Err(e)) => (id, "none".into(), Some(e), Default::default()),
        };
        let calibration = if a.cfg.remote.is_none() {
            let dir = a.data_dir.clone();
            let (model, weights, device) = (id.clone(), weights_name.clone(), device_name.clone());
            tokio::task::spawn_blocking(move || super::calibration::load(&dir))
                .await
                .ok()
                .flatten()
                .filter(|c| c.is_for(&model, &weights, &device))
        } else {
            None
        };
        let super::device::Hardware {
            name: device_hardware,
            memory: device_memory,
        } = hardware;
        Ok(VlmStatus {
            model: id,
            repo,
            revision,
            state: state.into(),
            reason,
            loaded,
            device: device_name,
            device_note,
            device_hardware,
            device_memory,
            weights: weights_name,
            model_dir: dir.map(|d| d.display().to_string()),
            queue_length,
            queue,
            last_analysis,
            pull,
            message,
            remote_url,
            privacy,
            worker: a.worker_id.clone(),
            download,
            calibration,
        })
    }

    /// Every supported model and its state here.
    pub fn models(&self) -> Vec<ModelInfo> {
        let a = self;
        let active = a.entry.as_ref().map(|e| e.id.clone()).ok();
        a.manifest
            .models
            .iter()
            .map(|e| self.model_info(e, active.as_deref() == Some(e.id.as_str())))
            .collect()
    }

    fn model_info(&self, e: &ModelEntry, active: bool) -> ModelInfo {
        let found = opslens_models::resolve(e, &self.cfg.models.for_model(active));
        ModelInfo {
            entry: serde_json::to_value(e).unwrap_or_default(),
            active,
            installed: found.is_ok(),
            dir: found.as_ref().ok().map(|l| l.dir.display().to_string()),
            source: found.as_ref().ok().map(|l| l.how.to_string()),
            message: found.as_ref().err().map(|nf| nf.message.clone()),
            pull: self.pull_of(&e.id),
            download: super::pull::download_plan(e, &self.cfg.models),
        }
    }

    /// One model.
    pub fn model(&self, id: &str) -> Result<ModelInfo, CoreError> {
        let e = self.manifest.get(id).map_err(CoreError::NotFound)?;
        let active = self.entry.as_ref().is_ok_and(|a| a.id == e.id);
        Ok(self.model_info(e, active))
    }
}
