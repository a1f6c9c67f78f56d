//! The manifest of supported models, shipped in the binary so an offline install knows
//! exactly which files (and which bytes) to expect.

use serde::{Deserialize, Serialize};

const MANIFEST_JSON: &str = include_str!("../../../models/manifest.json");

/// All supported models.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of the manifest file.
    pub schema: u32,
    /// Id of the model used when none is chosen.
    pub default: String,
    /// The entries.
    pub models: Vec<ModelEntry>,
}

/// One supported model at one pinned revision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelEntry {
    /// Short id used on the command line and in the API (`qwen3-vl-2b-instruct`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Hugging Face repository (`Qwen/Qwen3-VL-2B-Instruct`).
    pub repo: String,
    /// Pinned commit of that repository, so every install runs the same bytes.
    pub revision: String,
    /// Whether it can be pulled from the hub (test fixtures cannot).
    pub hub: bool,
    /// SPDX licence of the weights.
    pub license: String,
    /// Architecture the engine must implement (`qwen3_vl`).
    pub architecture: String,
    /// Weight storage the engine uses by default and the ones it can use.
    pub quantization: Quantization,
    /// Which prompt set suits this model.
    pub prompt_set: String,
    /// Caveats worth showing to a user.
    #[serde(default)]
    pub notes: String,
    /// The files the engine needs, with their expected size and digest.
    pub files: Vec<ModelFile>,
}

/// Quantization choices of a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quantization {
    /// Used unless the user asks otherwise.
    pub default: String,
    /// All that work.
    pub variants: Vec<String>,
}

/// One file of a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelFile {
    /// Path inside the repository.
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 (hex), where pinned.
    pub sha256: Option<String>,
}

impl ModelEntry {
    /// Total bytes of all files (what a pull downloads at most).
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The cache folder name Python's `huggingface_hub` uses for this repository.
    pub fn cache_folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

impl Manifest {
    /// The manifest compiled into this binary.
    pub fn builtin() -> Manifest {
        // The file is part of the source tree and checked by a test, so this cannot fail in a
        // released binary.
        serde_json::from_str(MANIFEST_JSON).expect("models/manifest.json is valid")
    }

    /// The entry with this id, or an error listing the known ids.
    pub fn get(&self, id: &str) -> Result<&ModelEntry, String> {
        self.models.iter().find(|m| m.id == id).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.id.as_str()).collect();
            format!("unknown model `{id}`; known: {}", known.join(", "))
        })
    }

    /// The default entry.
    pub fn default_entry(&self) -> &ModelEntry {
        self.get(&self.default)
            .expect("the default model is in the manifest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_consistent() {
        let m = Manifest::builtin();
        assert_eq!(m.schema, 1);
        let d = m.default_entry();
        assert_eq!(d.repo, "Qwen/Qwen3-VL-2B-Instruct");
        assert_eq!(
            d.revision.len(),
            40,
            "the default model is pinned to a commit"
        );
        for e in &m.models {
            assert!(e.quantization.variants.contains(&e.quantization.default));
            for f in ["config.json", "tokenizer.json", "preprocessor_config.json"] {
                assert!(e.files.iter().any(|x| x.name == f), "{} lacks {f}", e.id);
            }
            assert!(e.files.iter().any(|x| x.name.ends_with(".safetensors")));
            for f in &e.files {
                if let Some(h) = &f.sha256 {
                    assert_eq!(h.len(), 64);
                    assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
                }
            }
        }
        assert_eq!(d.cache_folder_name(), "models--Qwen--Qwen3-VL-2B-Instruct");
        assert!(m.get("nope").unwrap_err().contains("qwen3-vl-2b-instruct"));
    }
}
