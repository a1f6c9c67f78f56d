//! How screenshots are analysed: which model, where models live, how many tokens, which
//! weights and device; read once at start.

use std::time::Duration;

use opslens_models::ModelSettings;

use super::remote::RemoteConfig;

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
    /// Compute device (`OPSLENS_DEVICE`: auto, cpu, cuda[:N], metal); auto when unset.
    pub device: Option<String>,
    /// The OpenAI-compatible server that analyses instead of the local model
    /// (`OPSLENS_ANALYSIS_URL`); `None`, the default, keeps screenshots on this machine.
    pub remote: Option<RemoteConfig>,
    /// How long a taken job stays this process's without renewal (`OPSLENS_ANALYSIS_LEASE_S`,
    /// default 60 s); a worker renews every third of it while it runs.
    pub lease: Duration,
    /// How often an idle worker looks at the queue when nothing woke it
    /// (`OPSLENS_ANALYSIS_POLL_MS`, default 3000): other processes' uploads wake nobody here.
    pub poll: Duration,
    /// Who this process is on the queue; `app@<host>` when unset.
    pub worker_id: Option<String>,
    /// The supported models, when not the manifest built into the binary
    /// (`OPSLENS_MODELS_MANIFEST`, a file in the same format: a mirror's own pins, tests).
    pub manifest: Option<opslens_models::Manifest>,
    /// Bytes per ranged request of a pull (default 10 MB): what a cancel may lose at most.
    pub pull_chunk_bytes: Option<usize>,
}

/// Reads `OPSLENS_MODELS_MANIFEST`; a file that cannot be read or parsed is said in the log and
/// the built-in manifest is used, so a typo never stops the app.
fn manifest_from_env(path: Option<String>) -> Option<opslens_models::Manifest> {
    let path = path?;
    match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            serde_json::from_str::<opslens_models::Manifest>(&t).map_err(|e| e.to_string())
        }) {
        Ok(m) if m.get(&m.default).is_ok() => Some(m),
        Ok(_) => {
            tracing::warn!(%path, "OPSLENS_MODELS_MANIFEST: its `default` names no model in it; using the built-in manifest");
            None
        }
        Err(e) => {
            tracing::warn!(%path, error = %e, "OPSLENS_MODELS_MANIFEST cannot be read; using the built-in manifest");
            None
        }
    }
}

/// This machine's name, for worker ids.
pub(crate) fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl AnalysisConfig {
    /// From the environment: `OPSLENS_MODEL`, `OPSLENS_MODEL_DIR`, `OPSLENS_WEIGHTS`,
    /// `OPSLENS_DEVICE`, `OPSLENS_ANALYSIS_MAX_TOKENS`, the remote backend's
    /// `OPSLENS_ANALYSIS_*`, the queue's lease and poll, and the Hugging Face variables.
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
            device: var("OPSLENS_DEVICE"),
            remote: RemoteConfig::from_env(),
            lease: Duration::from_secs(
                var("OPSLENS_ANALYSIS_LEASE_S")
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(60),
            ),
            poll: Duration::from_millis(
                var("OPSLENS_ANALYSIS_POLL_MS")
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(3000),
            ),
            worker_id: None,
            manifest: manifest_from_env(var("OPSLENS_MODELS_MANIFEST")),
            pull_chunk_bytes: None,
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
            device: None,
            remote: None,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(3),
            worker_id: None,
            manifest: None,
            pull_chunk_bytes: None,
        }
    }
}
