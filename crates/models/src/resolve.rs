//! Finding a model's files: a folder the user names (flat, a Python-style
//! `models--org--name` cache entry, or a whole cache root) or the standard Hugging Face cache.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::ModelEntry;

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where to look for and fetch models; read from the environment once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// `--model-dir` / `OPSLENS_MODEL_DIR`: the user's own folder, looked at before the cache.
    pub model_dir: Option<PathBuf>,
    /// The Hugging Face hub cache (the folder holding `models--org--name`).
    pub cache_dir: PathBuf,
    /// `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`): never touch the network.
    pub offline: bool,
    /// `HF_ENDPOINT`, for mirrors (and tests).
    pub endpoint: String,
    /// `HF_TOKEN` or the token file, for gated or private repositories.
    pub token: Option<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn truthy(name: &str) -> bool {
    env_nonempty(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl ModelSettings {
    /// Reads the same variables Python's `huggingface_hub` reads, so both share one cache:
    /// `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HF_HUB_OFFLINE`,
    /// `HF_ENDPOINT`, `HF_TOKEN`; plus `OPSLENS_MODEL_DIR`.
    pub fn from_env() -> ModelSettings {
        let hf_home = env_nonempty("HF_HOME").map(PathBuf::from);
        let cache_dir = env_nonempty("HF_HUB_CACHE")
            .or_else(|| env_nonempty("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .or_else(|| hf_home.as_ref().map(|h| h.join("hub")))
            .or_else(|| {
                env_nonempty("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("huggingface/hub"))
            })
            .or_else(|| dirs::home_dir().map(|h| h.join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        let token = env_nonempty("HF_TOKEN").or_else(|| {
            let file = env_nonempty("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .or_else(|| hf_home.map(|h| h.join("token")))
                .or_else(|| dirs::home_dir().map(|h| h.join(".cache/huggingface/token")))?;
            std::fs::read_to_string(file)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        ModelSettings {
            model_dir: env_nonempty("OPSLENS_MODEL_DIR").map(PathBuf::from),
            cache_dir,
            offline: truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE"),
            endpoint: env_nonempty("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token,
        }
    }

    /// The settings to look for one model with: the user's folder names the active model
    /// only, so other models are looked for in the cache alone.
    pub fn for_model(&self, active: bool) -> ModelSettings {
        let mut s = self.clone();
        if !active {
            s.model_dir = None;
        }
        s
    }

    /// The snapshot folder a pull of `entry` fills.
    pub fn snapshot_dir(&self, entry: &ModelEntry) -> PathBuf {
        self.cache_dir
            .join(entry.cache_folder_name())
            .join("snapshots")
            .join(&entry.revision)
    }
}

/// A model folder ready to hand to the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Located {
    /// The folder with `config.json`, `tokenizer.json`, … and the weights.
    pub dir: PathBuf,
    /// `model-dir` (the user's folder) or `hf-cache`.
    pub how: &'static str,
}

/// Why a model was not found, with what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct NotFound {
    /// A sentence for the user, naming the paths looked at.
    pub message: String,
    /// Files of the manifest that are absent or of the wrong size where the model was expected.
    pub missing: Vec<String>,
}

/// Files the engine cannot start without (the weights are checked separately).
const ESSENTIAL: &[&str] = &["config.json", "tokenizer.json", "preprocessor_config.json"];

fn has_weights(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file()
        || dir.join("model.safetensors.index.json").is_file()
        || std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.filter_map(Result::ok).any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".safetensors") || n.ends_with(".gguf")
            })
        })
}

fn is_flat_model(dir: &Path) -> bool {
    ESSENTIAL.iter().all(|f| dir.join(f).is_file()) && has_weights(dir)
}

/// The snapshot of a `models--org--name` entry: `snapshots/<revision>` if present, else the
/// one `refs/main` names, else the only snapshot.
fn snapshot_of_cache_entry(entry_dir: &Path, revision: &str) -> Option<PathBuf> {
    let snaps = entry_dir.join("snapshots");
    let pinned = snaps.join(revision);
    if is_flat_model(&pinned) {
        return Some(pinned);
    }
    if let Ok(r) = std::fs::read_to_string(entry_dir.join("refs/main")) {
        let s = snaps.join(r.trim());
        if is_flat_model(&s) {
            return Some(s);
        }
    }
    let all: Vec<PathBuf> = std::fs::read_dir(&snaps)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_flat_model(p))
        .collect();
    (all.len() == 1).then(|| all[0].clone())
}

/// Files of `entry` absent from `dir` or of another size.
pub fn missing_files(entry: &ModelEntry, dir: &Path) -> Vec<String> {
    entry
        .files
        .iter()
        .filter(|f| std::fs::metadata(dir.join(&f.name)).map_or(true, |m| m.len() != f.size))
        .map(|f| f.name.clone())
        .collect()
}

/// Finds `entry` on this machine without touching the network.
///
/// A user folder only needs the essential files and weights (it may hold a fine-tune; `verify`
/// tells whether it matches the manifest); the hub cache must hold every manifest file at its
/// pinned size, so a half-finished pull is never loaded.
pub fn resolve(entry: &ModelEntry, s: &ModelSettings) -> Result<Located, NotFound> {
    if let Some(dir) = &s.model_dir {
        let candidates = [
            Some(dir.clone()),
            snapshot_of_cache_entry(dir, &entry.revision),
            snapshot_of_cache_entry(&dir.join(entry.cache_folder_name()), &entry.revision),
        ];
        for c in candidates.into_iter().flatten() {
            if is_flat_model(&c) {
                return Ok(Located {
                    dir: c,
                    how: "model-dir",
                });
            }
        }
        return Err(NotFound {
            message: format!(
                "the model folder {} (--model-dir / OPSLENS_MODEL_DIR) holds no model: expected \
                 config.json, tokenizer.json, preprocessor_config.json and *.safetensors there, \
                 or a Hugging Face cache entry ({}/snapshots/…)",
                dir.display(),
                entry.cache_folder_name()
            ),
            missing: ESSENTIAL.iter().map(|f| f.to_string()).collect(),
        });
    }
    let snap = s.snapshot_dir(entry);
    let missing = missing_files(entry, &snap);
    if missing.is_empty() {
        return Ok(Located {
            dir: snap,
            how: "hf-cache",
        });
    }
    let how_to = if entry.hub {
        format!(
            "run `opslens models pull {}` (or POST /api/v1/models/{}/pull), or point \
             OPSLENS_MODEL_DIR / --model-dir at a folder holding it",
            entry.id, entry.id
        )
    } else {
        "this model is not on the hub: point OPSLENS_MODEL_DIR / --model-dir at its folder"
            .to_string()
    };
    Err(NotFound {
        message: format!(
            "model {} ({} @ {}) is not installed: {} missing or incomplete in {}; {how_to}",
            entry.id,
            entry.repo,
            &entry.revision[..entry.revision.len().min(12)],
            missing.join(", "),
            snap.display()
        ),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    fn settings(cache: &Path, model_dir: Option<PathBuf>) -> ModelSettings {
        ModelSettings {
            model_dir,
            cache_dir: cache.to_path_buf(),
            offline: true,
            endpoint: DEFAULT_ENDPOINT.into(),
            token: None,
        }
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-qwen3-vl")
    }

    fn copy_model(entry: &ModelEntry, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for f in &entry.files {
            std::fs::copy(fixture().join(&f.name), to.join(&f.name)).unwrap();
        }
    }

    #[test]
    fn finds_flat_folders_cache_entries_and_cache_roots() {
        let m = Manifest::builtin();
        let e = m.get("tiny-qwen3-vl-test").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // Flat folder.
        let l = resolve(e, &settings(tmp.path(), Some(fixture()))).unwrap();
        assert_eq!(l.how, "model-dir");
        assert_eq!(l.dir, fixture());
        // A Python-style cache entry, followed through refs/main.
        let entry_dir = tmp.path().join("root").join(e.cache_folder_name());
        let snap = entry_dir.join("snapshots/0123abcd");
        copy_model(e, &snap);
        std::fs::create_dir_all(entry_dir.join("refs")).unwrap();
        std::fs::write(entry_dir.join("refs/main"), "0123abcd\n").unwrap();
        let l = resolve(e, &settings(tmp.path(), Some(entry_dir.clone()))).unwrap();
        assert_eq!(l.dir, snap);
        // The cache root holding that entry.
        let l = resolve(e, &settings(tmp.path(), Some(tmp.path().join("root")))).unwrap();
        assert_eq!(l.dir, snap);
        // A folder without a model says what it expected.
        let err = resolve(e, &settings(tmp.path(), Some(tmp.path().to_path_buf()))).unwrap_err();
        assert!(err.message.contains("config.json"), "{}", err.message);
    }

    #[test]
    fn the_hub_cache_needs_every_file_at_its_size() {
        let m = Manifest::builtin();
        let e = m.get("tiny-qwen3-vl-test").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let s = settings(tmp.path(), None);
        let err = resolve(e, &s).unwrap_err();
        assert_eq!(err.missing.len(), e.files.len());
        assert!(err.message.contains("OPSLENS_MODEL_DIR"), "{}", err.message);
        copy_model(e, &s.snapshot_dir(e));
        assert_eq!(resolve(e, &s).unwrap().how, "hf-cache");
        // A truncated weight file (an interrupted copy) is not loadable.
        let w = s.snapshot_dir(e).join("model.safetensors");
        let f = std::fs::OpenOptions::new().write(true).open(&w).unwrap();
        f.set_len(100).unwrap();
        assert_eq!(
            resolve(e, &s).unwrap_err().missing,
            vec!["model.safetensors"]
        );
        let d = m.default_entry();
        assert!(resolve(d, &s)
            .unwrap_err()
            .message
            .contains("opslens models pull qwen3-vl-2b-instruct"));
    }
}
