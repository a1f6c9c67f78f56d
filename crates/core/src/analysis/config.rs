//! How screenshots are analysed: which model, where models live, how many tokens, which
//! weights and device; read once at start.

use opslens_models::ModelSettings;

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
            device: var("OPSLENS_DEVICE"),
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
        }
    }
}
