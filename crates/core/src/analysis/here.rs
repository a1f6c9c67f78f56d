//! Analysing a screenshot on this machine for another one: the desktop app pointed at a team
//! server reads its captures with its own model before uploading them, and sends the findings
//! with the picture (see [`crate::filing::MadeElsewhere`]). Nothing is queued or stored here;
//! the engine is the one the worker loads and lends (as for summary drafts).

use std::time::{Duration, Instant};

use crate::filing::MadeElsewhere;

use super::summary::DraftError;
use super::{config, findings, prompts, AnalysisService};

/// How long a capture waits for the local model to load before it goes without findings (the
/// team's workers then analyse it).
const LOAD_WAIT: Duration = Duration::from_secs(600);

impl AnalysisService {
    /// Whether screenshots would be read by a model on this machine: the configured model's
    /// files are here and no remote backend is set (a remote backend is not "the laptop").
    pub fn local_model_present(&self) -> bool {
        self.cfg.remote.is_none() && self.locate().is_ok()
    }

    /// Who this machine is on a team server's analysis records (`laptop@<host>`, or the
    /// configured worker id).
    pub fn machine_name(&self) -> String {
        self.cfg
            .worker_id
            .clone()
            .unwrap_or_else(|| format!("laptop@{}", config::hostname()))
    }

    /// Reads `image` with the local model and returns its findings, or `None` where no local
    /// model can (none installed, a remote backend configured, the model failed to load or to
    /// run, or it did not load within ten minutes): the caller then uploads without findings.
    /// Waits for a model that is loading; asks the worker to load one that is present.
    pub async fn analyse_here(&self, image: &[u8]) -> Option<MadeElsewhere> {
        if !self.local_model_present() {
            return None;
        }
        let bytes = image.to_vec();
        let decoded =
            match tokio::task::spawn_blocking(move || image::load_from_memory(&bytes)).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "capture cannot be decoded for the local analysis");
                    return None;
                }
                Err(_) => return None,
            };
        let started = Instant::now();
        loop {
            let asked = self
                .ask_lent_engine_for(
                    vec![decoded.clone()],
                    prompts::ANALYZE.to_string(),
                    prompts::SYSTEM,
                    usize::MAX,
                    "analyse the capture",
                    true,
                )
                .await;
            match asked {
                Ok(a) => {
                    let f = findings::parse(&a.text);
                    return Some(MadeElsewhere {
                        findings: f,
                        model: a.model,
                        machine: self.machine_name(),
                        device: self.chosen_device().ok().map(|d| d.name),
                        ms: a.ms,
                    });
                }
                Err(DraftError::Unavailable { code, .. })
                    if code == "model_loading" && started.elapsed() < LOAD_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(DraftError::Unavailable { code, message }) => {
                    tracing::warn!(code, %message, "capture goes without local findings");
                    return None;
                }
                Err(DraftError::Core(e)) => {
                    tracing::warn!(error = %e, "capture goes without local findings");
                    return None;
                }
            }
        }
    }
}
