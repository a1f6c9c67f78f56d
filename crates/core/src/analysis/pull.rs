//! Model pulls started from the app: one background download per model, its progress
//! watchable by any number of clients (`GET /models/{id}/pull`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opslens_models::PullEvent;
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::AnalysisService;
use crate::CoreError;

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

impl AnalysisService {
    /// Starts pulling a model in the background (or returns the pull already running) and
    /// returns a receiver of its progress.
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
        let settings = self.cfg.models.clone();
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
                s.wake.notify_one();
            }
        });
        Ok(rx)
    }
}
