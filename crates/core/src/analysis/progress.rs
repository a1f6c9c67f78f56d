//! The text of running analyses as the model writes it, for
//! `GET /evidence/{id}/analysis/stream`: the findings panel fills while the model writes
//! instead of after it. Each event carries the whole text so far (a client that missed some
//! loses nothing), at most every [`THROTTLE`], so a fast model cannot flood the clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use super::AnalysisService;
use crate::CoreError;

/// Shortest gap between two progress events of one job.
pub const THROTTLE: Duration = Duration::from_millis(150);

/// One event of `GET /evidence/{id}/analysis/stream` (the `data:` line, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalysisProgress {
    /// The screenshot.
    pub evidence_id: i64,
    /// The running job; `null` in the single event of a stream opened while nothing runs or
    /// waits for this screenshot.
    pub job_id: Option<i64>,
    /// The question the job answers; `null` for the full analysis.
    pub question: Option<String>,
    /// Everything the model has written so far (raw, before parsing).
    pub text: String,
    /// `running` while it writes, then `done` or `failed` (the last event of the stream; the
    /// parsed findings are then on the evidence), or `idle` when nothing runs or waits.
    pub state: String,
    /// Where it runs: the device, or the URL of the server the screenshot was sent to.
    pub device: Option<String>,
}

/// Who hears about progress, and the latest text of each running job.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    live: Arc<Mutex<HashMap<i64, AnalysisProgress>>>,
    tx: broadcast::Sender<AnalysisProgress>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            live: Arc::default(),
            tx: broadcast::channel(256).0,
        }
    }
}

impl Hub {
    /// Publishes `p`; the last event of a job (not `running`) also forgets its text.
    pub(crate) fn publish(&self, p: AnalysisProgress) {
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if p.state == "running" {
                live.insert(p.evidence_id, p.clone());
            } else {
                live.remove(&p.evidence_id);
            }
        }
        let _ = self.tx.send(p);
    }

    /// A text sink for one job that publishes at most every [`THROTTLE`].
    pub(crate) fn sink(&self, base: AnalysisProgress) -> super::engine::OnText {
        let hub = self.clone();
        let mut text = String::new();
        let mut last: Option<Instant> = None;
        Box::new(move |piece: &str| {
            text.push_str(piece);
            if last.is_none_or(|t| t.elapsed() >= THROTTLE) {
                last = Some(Instant::now());
                hub.publish(AnalysisProgress {
                    text: text.clone(),
                    ..base.clone()
                });
            }
        })
    }
}

impl AnalysisService {
    /// What a stream for `evidence_id` starts from: the text so far of its running job (or an
    /// `idle` event when nothing runs or waits for it, so the stream ends at once), and the
    /// receiver of what follows. Subscribes before looking, so nothing in between is missed.
    pub async fn progress_of(
        &self,
        evidence_id: i64,
    ) -> Result<(AnalysisProgress, broadcast::Receiver<AnalysisProgress>), CoreError> {
        let rx = self.progress.tx.subscribe();
        self.db.run(move |s| s.evidence(evidence_id)).await?;
        let live = self
            .progress
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&evidence_id)
            .cloned();
        if let Some(p) = live {
            return Ok((p, rx));
        }
        let jobs = self
            .db
            .run(move |s| s.analysis_jobs_of(evidence_id))
            .await?;
        let pending = jobs.iter().rev().find(|j| {
            matches!(
                j.state,
                opslens_domain::AnalysisState::Queued | opslens_domain::AnalysisState::Running
            )
        });
        let first = AnalysisProgress {
            evidence_id,
            job_id: pending.map(|j| j.id),
            question: pending.and_then(|j| j.question.clone()),
            text: String::new(),
            state: match pending {
                Some(j) => j.state.as_str().to_string(),
                None => "idle".into(),
            },
            device: None,
        };
        Ok((first, rx))
    }
}
