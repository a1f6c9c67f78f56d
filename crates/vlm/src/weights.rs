//! Reading a model folder in the Hugging Face layout: JSON configs and the safetensors
//! weights (one file, an index with shards, or every `*.safetensors`), memory-mapped.
//! Shared by every model family.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::error::VlmError;

/// Reads and parses one JSON file, naming the file in the error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, VlmError> {
    let s = std::fs::read_to_string(path).map_err(|source| VlmError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&s).map_err(|source| VlmError::Json {
        path: path.to_owned(),
        source,
    })
}
/// The safetensors files of a folder: the shards named by `model.safetensors.index.json`,
/// else `model.safetensors`, else every `*.safetensors` (sorted).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, VlmError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v: serde_json::Value = read_json(&index)?;
        let mut files: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| VlmError::Io {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(VlmError::Model(format!(
            "no *.safetensors in {}",
            dir.display()
        )));
    }
    Ok(files)
}

/// Memory-maps safetensors files; tensors are converted to f32 one at a time as layers load.
#[allow(unsafe_code)]
pub fn mmap_var_builder(
    files: &[PathBuf],
    device: &Device,
) -> Result<VarBuilder<'static>, VlmError> {
    // SAFETY: the files are mapped read-only and must not be modified or truncated while the
    // VarBuilder (and any tensor borrowing it) is alive. Model folders are written once when
    // downloaded and never touched by the app while loaded; every tensor we keep is copied
    // (converted/quantized) out of the mapping during load, and the map is dropped after.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, DType::F32, device)? };
    Ok(vb)
}
