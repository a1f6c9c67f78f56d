//! Checking a model folder byte for byte against the manifest (blocking: it hashes gigabytes).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::ModelEntry;

/// The outcome for one file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileCheck {
    /// File name.
    pub name: String,
    /// `ok`, `missing`, `size-mismatch`, `sha256-mismatch` or `invalid-json`.
    pub status: &'static str,
    /// Size the manifest expects.
    pub expected_size: u64,
    /// Size found (absent when missing).
    pub size: Option<u64>,
    /// Digest found, when hashed.
    pub sha256: Option<String>,
    /// Whether the manifest pins this file's digest (otherwise only size and syntax are
    /// checked).
    pub pinned: bool,
}

/// The outcome for a model folder.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    /// Model id.
    pub model: String,
    /// Folder checked.
    pub dir: PathBuf,
    /// Every file is as the manifest says.
    pub ok: bool,
    /// Per file.
    pub files: Vec<FileCheck>,
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Checks every manifest file of `entry` in `dir`: presence, size, SHA-256 where pinned, and
/// that JSON files parse.
pub fn verify(entry: &ModelEntry, dir: &Path) -> VerifyReport {
    let files: Vec<FileCheck> = entry
        .files
        .iter()
        .map(|f| {
            let path = dir.join(&f.name);
            let mut c = FileCheck {
                name: f.name.clone(),
                status: "ok",
                expected_size: f.size,
                size: None,
                sha256: None,
                pinned: f.sha256.is_some(),
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                c.status = "missing";
                return c;
            };
            c.size = Some(meta.len());
            if meta.len() != f.size {
                c.status = "size-mismatch";
                return c;
            }
            match sha256_file(&path) {
                Ok(h) => {
                    if f.sha256
                        .as_ref()
                        .is_some_and(|want| !want.eq_ignore_ascii_case(&h))
                    {
                        c.status = "sha256-mismatch";
                    }
                    c.sha256 = Some(h);
                }
                Err(_) => c.status = "missing",
            }
            if c.status == "ok" && f.name.ends_with(".json") {
                let parses = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .is_some();
                if !parses {
                    c.status = "invalid-json";
                }
            }
            c
        })
        .collect();
    VerifyReport {
        model: entry.id.clone(),
        dir: dir.to_path_buf(),
        ok: files.iter().all(|f| f.status == "ok"),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    #[test]
    fn the_fixture_verifies_and_one_changed_byte_does_not() {
        let m = Manifest::builtin();
        let e = m.get("tiny-qwen3-vl-test").unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-qwen3-vl");
        let r = verify(e, &src);
        assert!(r.ok, "{r:?}");
        let tmp = tempfile::tempdir().unwrap();
        for f in &e.files {
            std::fs::copy(src.join(&f.name), tmp.path().join(&f.name)).unwrap();
        }
        let w = tmp.path().join("model.safetensors");
        let mut bytes = std::fs::read(&w).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&w, bytes).unwrap();
        std::fs::remove_file(tmp.path().join("generation_config.json")).unwrap();
        let r = verify(e, tmp.path());
        assert!(!r.ok);
        let status = |n: &str| r.files.iter().find(|f| f.name == n).unwrap().status;
        assert_eq!(status("model.safetensors"), "sha256-mismatch");
        assert_eq!(status("generation_config.json"), "missing");
        assert_eq!(status("config.json"), "ok");
    }
}
