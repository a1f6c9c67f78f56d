//! The quantized weights of a load, kept in a GGUF file so the next start of the app skips
//! quantizing: on the 2-core benchmark VM, quantizing Qwen3-VL-2B (1.7 B decoder parameters
//! to Q4K, 0.4 B vision parameters to Q8_0) is most of a ~60 s load, while reading the ~1.4 GB
//! of blocks back takes seconds. The file is named by a key over the weight files (path, size,
//! modification time) and the storage modes, so a changed model or mode never reads stale
//! blocks; a file that does not parse is ignored and rewritten.
//!
//! The layer loaders find the cache of the load in progress through [`scoped`] (a per-thread
//! slot that [`crate::quant::par_build`] hands on to its workers) rather than through every
//! loader's signature: loads on other threads (tests in parallel) never see it.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Result};

/// Bumped when the meaning of the cached blocks changes (quantization choices, names).
const FORMAT: &str = "opslens-qcache-3";
/// Cache files kept in the folder (the newest); older keys are removed on save.
const KEEP: usize = 2;

/// Quantized weights by tensor name: those read from the file and those made by this load.
#[derive(Debug, Default)]
pub struct QuantCache {
    path: Option<PathBuf>,
    saved: HashMap<String, Arc<QTensor>>,
    made: Mutex<Vec<(String, Arc<QTensor>)>>,
}

impl QuantCache {
    /// The cache file for `weights` under `dir`, read if present and valid.
    pub fn open(dir: &Path, weights: &[PathBuf], modes: &str, device: &Device) -> Self {
        let path = dir.join(format!("{:016x}.gguf", key(weights, modes)));
        let saved = read(&path, device).unwrap_or_default();
        Self {
            path: Some(path),
            saved,
            made: Mutex::new(Vec::new()),
        }
    }

    /// Where the cache lives (`None` for an in-memory one).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Number of tensors that came from the file.
    pub fn hits(&self) -> usize {
        self.saved.len()
    }

    /// Number of tensors this load quantized itself.
    pub fn made(&self) -> usize {
        self.made.lock().map_or(0, |m| m.len())
    }

    /// The saved tensor `name` if it has the expected shape and storage.
    pub fn get(&self, name: &str, dims: (usize, usize), dtype: GgmlDType) -> Option<Arc<QTensor>> {
        let q = self.saved.get(name)?;
        (q.dtype() == dtype && q.shape().dims2().ok() == Some(dims)).then(|| q.clone())
    }

    /// Remembers a tensor this load quantized, for [`Self::save`].
    pub fn record(&self, name: &str, q: Arc<QTensor>) {
        if let Ok(mut m) = self.made.lock() {
            m.push((name.to_string(), q));
        }
    }

    /// Writes every tensor (read or made) to the cache file when this load made any: through
    /// a temporary file and a rename, so a crash never leaves a half file under the real name.
    /// Older cache files beyond the newest [`KEEP`] are removed.
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let made = self
            .made
            .lock()
            .map_err(|_| candle_core::Error::Msg("quant cache lock poisoned".into()))?;
        if made.is_empty() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut all: Vec<(&str, &QTensor)> = self
            .saved
            .iter()
            .map(|(n, q)| (n.as_str(), q.as_ref()))
            .chain(made.iter().map(|(n, q)| (n.as_str(), q.as_ref())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.dedup_by(|a, b| a.0 == b.0);
        let tmp = path.with_extension("gguf.part");
        let format = gguf_file::Value::String(FORMAT.into());
        let written = (|| -> Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            gguf_file::write(&mut f, &[("opslens.format", &format)], &all)?;
            std::io::Write::flush(&mut f)?;
            f.get_ref().sync_all()?;
            Ok(())
        })();
        if let Err(e) = written {
            // A full disk must not leave 1 GB of half file behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, path)?;
        prune(dir, path);
        Ok(())
    }
}

/// How a load used the quantized-weight cache ([`crate::LoadOptions::cache_dir`]).
#[derive(Debug, Clone)]
pub struct CacheUse {
    /// The cache file.
    pub path: Option<PathBuf>,
    /// Tensors read from it instead of quantized.
    pub read: usize,
    /// Tensors this load quantized and wrote to it.
    pub written: usize,
    /// Why writing failed (the load itself still succeeded).
    pub error: Option<String>,
}

impl QuantCache {
    /// Ends a load: saves what it made ([`Self::save`]) and says what the cache did; a failed
    /// save is reported, never an error of the load.
    pub fn finish(&self) -> CacheUse {
        let saved = self.save();
        CacheUse {
            path: self.path.clone(),
            read: self.hits(),
            written: if saved.is_ok() { self.made() } else { 0 },
            error: saved.err().map(|e| e.to_string()),
        }
    }
}

fn key(weights: &[PathBuf], modes: &str) -> u64 {
    let mut h = DefaultHasher::new();
    FORMAT.hash(&mut h);
    modes.hash(&mut h);
    for w in weights {
        let canon = std::fs::canonicalize(w).unwrap_or_else(|_| w.clone());
        canon.hash(&mut h);
        if let Ok(m) = std::fs::metadata(&canon) {
            m.len().hash(&mut h);
            if let Ok(t) = m.modified() {
                t.hash(&mut h);
            }
        }
    }
    h.finish()
}

fn read(path: &Path, device: &Device) -> Option<HashMap<String, Arc<QTensor>>> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let content = gguf_file::Content::read(&mut f).ok()?;
    match content.metadata.get("opslens.format") {
        Some(gguf_file::Value::String(s)) if s == FORMAT => {}
        _ => return None,
    }
    let mut out = HashMap::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let q = content.tensor(&mut f, name, device).ok()?;
        out.insert(name.clone(), Arc::new(q));
    }
    Some(out)
}

/// Keeps the newest [`KEEP`] cache files in `dir` (and `current`), removing the rest and any
/// temporary file an interrupted save left.
fn prune(dir: &Path, current: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let paths: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "part"))
    {
        let _ = std::fs::remove_file(p);
    }
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "gguf") && p != current)
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, p) in files.into_iter().skip(KEEP.saturating_sub(1)) {
        let _ = std::fs::remove_file(p);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<QuantCache>>> = const { RefCell::new(None) };
}

/// Runs `f` (a model load) with `cache` as this thread's cache, restoring the previous one.
pub fn scoped<R>(cache: Option<Arc<QuantCache>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<QuantCache>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = before);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(cache)));
    f()
}

/// The cache of the load running on this thread, if any.
pub fn current() -> Option<Arc<QuantCache>> {
    CURRENT.with(|c| c.borrow().clone())
}
