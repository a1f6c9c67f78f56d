//! Content-addressed image files beside the database.
//!
//! A file is named `<sha256>.<ext>`, written to a temporary name, synced, renamed into place and
//! the directory synced, all before the row naming it commits. The same image uploaded twice is
//! stored once. Files no row refers to (a crash between the rename and the commit, a deleted
//! incident) are removed at start-up by [`crate::Store::sweep_orphan_blobs`].
//!
//! With a bucket configured ([`crate::objects`]), each file is also stored there before its
//! row commits, `blobs/` is a read-through cache ([`Blobs::file`]), and the sweep removes
//! objects no row names once they are older than the grace period. Both database backends
//! keep their images through one [`Blobs`], so the rules above hold on either.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::objects::{BlobConfig, ObjectBlobs};
use crate::{Result, SqliteStore};

/// Whether `name` is one of ours: `<sha256>.<ext>`.
pub(crate) fn is_blob_name(name: &str) -> bool {
    name.split_once('.').is_some_and(|(hash, ext)| {
        hash.len() == 64
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !ext.is_empty()
            && ext.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where one install's image files live: `blobs/` in the data dir, and the shared bucket when
/// one is configured (the folder is then its cache).
pub(crate) struct Blobs {
    dir: PathBuf,
    objects: Option<ObjectBlobs>,
}

impl Blobs {
    /// Connects the bucket (checked reachable first) and makes `data_dir/blobs`.
    pub(crate) fn open(data_dir: &Path, config: &BlobConfig) -> Result<Self> {
        let objects = match config {
            BlobConfig::Local => None,
            BlobConfig::S3(c) => Some(ObjectBlobs::connect(c)?),
        };
        let dir = data_dir.join("blobs");
        fs::create_dir_all(&dir)?;
        Ok(Blobs { dir, objects })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` durably as `<sha256>.<ext>` unless already present; returns the name.
    pub(crate) fn put(&self, sha256: &str, ext: &str, bytes: &[u8]) -> Result<String> {
        debug_assert!(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        debug_assert!(ext.bytes().all(|b| b.is_ascii_alphanumeric()));
        let name = format!("{sha256}.{ext}");
        // The shared copy first: a row must never name an object other servers cannot read.
        if let Some(o) = &self.objects {
            o.put(&name, bytes)?;
        }
        self.write_local(&name, bytes)?;
        Ok(name)
    }

    /// The local file of blob `name`: from `blobs/`, or fetched from the bucket into it first.
    pub(crate) fn file(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if path.exists() {
            return Ok(path);
        }
        if let Some(o) = &self.objects {
            if let Some(bytes) = o.get(name)? {
                if sha256_hex(&bytes) == name.split('.').next().unwrap_or_default() {
                    self.write_local(name, &bytes)?;
                } else {
                    tracing::warn!(
                        name,
                        "the bucket's copy does not match its name; not cached"
                    );
                }
            }
        }
        // Absent everywhere: the reader says so, with the path it looked for.
        Ok(path)
    }

    /// Writes `bytes` durably as `blobs/<name>` unless already there.
    fn write_local(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.dir.join(name);
        if dest.exists() {
            return Ok(());
        }
        let sha256 = name.split('.').next().unwrap_or_default();
        // Unique per call: two requests storing the same new image at once must not write
        // (and rename away) one another's temporary file.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".tmp-{sha256}-{}-{n}", std::process::id()));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            // A full disk leaves a partial file: give its space back now, not at the next start.
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        fs::rename(&tmp, &dest)?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Removes the files and objects `referenced` does not name; returns how many. Local
    /// files younger than `local_grace` stay: with several servers on one database, another
    /// may be between writing a file and committing its row.
    pub(crate) fn sweep(
        &self,
        referenced: &HashSet<String>,
        local_grace: Duration,
    ) -> Result<usize> {
        let mut removed = 0;
        if let Some(o) = &self.objects {
            for (name, age) in o.list()? {
                if !referenced.contains(&name) && age >= o.orphan_grace {
                    o.delete(&name)?;
                    removed += 1;
                }
            }
        }
        let cutoff = SystemTime::now() - local_grace;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if referenced.contains(&name) || !entry.file_type()?.is_file() {
                continue;
            }
            let young = !local_grace.is_zero()
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|m| m > cutoff)
                    .unwrap_or(true);
            if !young {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the local copy of `name`; one already gone is fine. The bucket's copy stays
    /// until the sweep: another server sharing the bucket may be storing the same image right
    /// now, for a row of its own (see `objects`).
    pub(crate) fn remove_local(&self, name: &str) -> Result<()> {
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl SqliteStore {
    /// Writes `bytes` durably as `<sha256>.<ext>` unless already present; returns the file name.
    pub(crate) fn put_blob(&self, sha256: &str, ext: &str, bytes: &[u8]) -> Result<String> {
        self.blobs.put(sha256, ext, bytes)
    }

    /// The local file of blob `name` (fetched from the bucket first when shared).
    pub(crate) fn blob_file(&self, name: &str) -> Result<PathBuf> {
        self.blobs.file(name)
    }

    /// Removes image files that no evidence row names, and leftover temporary files.
    /// Returns how many files were removed.
    pub fn sweep_orphan_blobs(&self) -> Result<usize> {
        // No upload is between its file and its row while the sweep looks (it also runs on a
        // live server, periodically).
        let _uploads = self.blob_lock.lock().unwrap_or_else(|p| p.into_inner());
        let referenced: HashSet<String> = self.read(|c| {
            let mut st = c.prepare(
                "SELECT blob_path FROM evidence WHERE blob_path IS NOT NULL
                 UNION SELECT redacted_blob FROM evidence WHERE redacted_blob IS NOT NULL",
            )?;
            let names = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(names)
        })?;
        self.blobs.sweep(&referenced, Duration::ZERO)
    }

    /// Deletes the given blob files if no evidence row names them any more.
    pub(crate) fn remove_unreferenced(&self, names: &[String]) -> Result<()> {
        for name in names {
            let still_used: bool = self.read(|c| {
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM evidence WHERE blob_path = ?1 OR redacted_blob = ?1)",
                    [name],
                    |r| r.get(0),
                )?)
            })?;
            if !still_used {
                self.blobs.remove_local(name)?;
            }
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
