//! Backup, restore and verification of a data dir, safe while a server writes to it.
//!
//! A backup is a folder: `opslens.db` taken with SQLite's online backup API in one step (one
//! read transaction, so the copy is the database as it was at one commit, and in WAL mode the
//! server's writer is never blocked), the image files that copy names under `blobs/`, and
//! `manifest.json` with the schema version, the row count of every table and the SHA-256 of
//! every image file. These functions work on paths, not on an open [`Store`](crate::Store):
//! opening a second `Store` beside a running server would sweep the image files of uploads
//! that have not committed yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The database file in a data dir and in a backup.
pub const DB_FILE: &str = "opslens.db";
/// The folder of image files in a data dir and in a backup.
pub const BLOB_DIR: &str = "blobs";
/// What a backup says about itself, beside its database.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Why a backup or restore could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// There is no database to copy.
    #[error("no OpsLens database at {0}")]
    NoDatabase(PathBuf),
    /// The destination holds files already; a backup or restore never mixes with them.
    #[error("{0} is not empty; choose a new or empty folder")]
    NotEmpty(PathBuf),
    /// The folder to restore has no `manifest.json`.
    #[error("{0} is not an OpsLens backup (no {MANIFEST_FILE})")]
    NotABackup(PathBuf),
    /// The backup was made by a newer OpsLens.
    #[error(
        "the backup has schema v{found}, newer than this build knows (v{known}); upgrade OpsLens"
    )]
    TooNew {
        /// Version in the backup.
        found: usize,
        /// Newest version this build knows.
        known: usize,
    },
    /// An image file the copied database names was deleted while it was being copied (its
    /// incident was deleted meanwhile); a new backup will not need it.
    #[error("image file {0} vanished while the backup was made; run the backup again")]
    Vanished(String),
    /// The result (or the backup to restore) does not check out.
    #[error("{} problem(s): {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// `manifest.json` could not be read or written.
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("file system error: {0}")]
    Io(#[from] io::Error),
}

/// The contents of `manifest.json`: what the backup holds, to check a copy against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of the backup folder.
    pub format: u32,
    /// `PRAGMA user_version` of the copied database.
    pub schema_version: usize,
    /// When the copy was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The OpsLens version that made it.
    pub opslens_version: String,
    /// Row count of every table.
    pub tables: BTreeMap<String, i64>,
    /// SHA-256 (hex) of every image file, by file name.
    pub blobs: BTreeMap<String, String>,
}

/// One thing wrong in a data dir or backup, named so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// There is no database file.
    #[error("no database file {DB_FILE}")]
    NoDatabase,
    /// `PRAGMA integrity_check` found damage.
    #[error("integrity_check: {0}")]
    Integrity(String),
    /// An evidence row names an image file that is not there.
    #[error("evidence {evidence}: image file {file} is missing")]
    MissingBlob {
        /// Evidence id.
        evidence: i64,
        /// File name under `blobs/`.
        file: String,
    },
    /// An image file's content does not hash to the SHA-256 its evidence row records.
    #[error("evidence {evidence}: image file {file} does not match its SHA-256 (corrupted)")]
    HashMismatch {
        /// Evidence id.
        evidence: i64,
        /// File name under `blobs/`.
        file: String,
    },
    /// A file under `blobs/` that no evidence row names.
    #[error("orphan file blobs/{0} (no evidence names it)")]
    Orphan(String),
    /// A table's row count differs from the manifest's.
    #[error("table {table}: {found} rows, the manifest says {expected}")]
    CountMismatch {
        /// Table name.
        table: String,
        /// Count in the manifest.
        expected: i64,
        /// Count in the database.
        found: i64,
    },
    /// An image file's content differs from the manifest's hash, or the manifest and the
    /// folder list different files.
    #[error("blobs/{0} differs from the manifest")]
    ManifestBlob(String),
}

/// Copies the data dir `data_dir` (the server may be running) into the new or empty folder
/// `dest`, then verifies the copy. Returns the manifest written.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<Manifest, BackupError> {
    let src_db = data_dir.join(DB_FILE);
    if !src_db.is_file() {
        return Err(BackupError::NoDatabase(src_db));
    }
    let existed = claim_empty_dir(dest)?;
    undo_on_error(dest, existed, copy_out(data_dir, dest))
}

/// Indexes, in the copy, the search entries the server had not indexed yet (it indexes in
/// bulk): the copy is then whole as it stands, and a restore opens it without changing a row,
/// so the restored tables match the manifest's counts.
fn index_waiting(copy: &Connection) -> Result<(), BackupError> {
    let noted: bool = copy.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'search_pending')",
        [],
        |r| r.get(0),
    )?;
    if noted {
        let tx = copy.unchecked_transaction()?;
        crate::search::index_pending(&tx).map_err(|e| match e {
            crate::StoreError::Sqlite(e) => BackupError::Sqlite(e),
            e => BackupError::Io(io::Error::other(e.to_string())),
        })?;
        tx.commit()?;
    }
    Ok(())
}

fn copy_out(data_dir: &Path, dest: &Path) -> Result<Manifest, BackupError> {
    let src_db = data_dir.join(DB_FILE);
    let src = Connection::open_with_flags(&src_db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(crate::BUSY_TIMEOUT)?;
    let dst = copy_db(&src, &dest.join(DB_FILE))?;
    drop(src);
    index_waiting(&dst)?;
    let blobs = named_blobs(&dst)?;
    let mut hashes = BTreeMap::new();
    fs::create_dir_all(dest.join(BLOB_DIR))?;
    for file in &blobs {
        if hashes.contains_key(file) {
            continue;
        }
        let hash = match copy_hashed(
            &data_dir.join(BLOB_DIR).join(file),
            &dest.join(BLOB_DIR).join(file),
        ) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BackupError::Vanished(file.clone()))
            }
            r => r?,
        };
        hashes.insert(file.clone(), hash);
    }
    sync_dir(&dest.join(BLOB_DIR))?;
    let manifest = Manifest {
        format: 1,
        schema_version: user_version(&dst)?,
        created_at: chrono::Utc::now().to_rfc3339(),
        opslens_version: env!("CARGO_PKG_VERSION").into(),
        tables: table_counts(&dst)?,
        blobs: hashes,
    };
    drop(dst);
    write_durably(
        &dest.join(MANIFEST_FILE),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    let problems = verify(dest)?;
    if !problems.is_empty() {
        return Err(BackupError::Invalid(problems));
    }
    Ok(manifest)
}

/// Restores the backup `src` into the new or empty data dir `data_dir`. Refuses a backup from
/// a newer schema and one that does not verify; an older schema is migrated by the next start.
pub fn restore(src: &Path, data_dir: &Path) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(src)?.ok_or_else(|| BackupError::NotABackup(src.into()))?;
    let known = crate::MIGRATIONS.len();
    if manifest.schema_version > known {
        return Err(BackupError::TooNew {
            found: manifest.schema_version,
            known,
        });
    }
    let problems = verify(src)?;
    if !problems.is_empty() {
        return Err(BackupError::Invalid(problems));
    }
    let existed = claim_empty_dir(data_dir)?;
    undo_on_error(data_dir, existed, copy_in(src, data_dir, manifest))
}

fn copy_in(src: &Path, data_dir: &Path, manifest: Manifest) -> Result<Manifest, BackupError> {
    let known = crate::MIGRATIONS.len();
    let from = Connection::open_with_flags(src.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let found = user_version(&from)?;
    if found > known {
        return Err(BackupError::TooNew { found, known });
    }
    drop(copy_db(&from, &data_dir.join(DB_FILE))?);
    fs::create_dir_all(data_dir.join(BLOB_DIR))?;
    for file in manifest.blobs.keys() {
        copy_hashed(
            &src.join(BLOB_DIR).join(file),
            &data_dir.join(BLOB_DIR).join(file),
        )?;
    }
    sync_dir(&data_dir.join(BLOB_DIR))?;
    sync_dir(data_dir)?;
    Ok(manifest)
}

/// Checks a data dir or a backup: `integrity_check`, every evidence row's image file present
/// and hashing to the row's SHA-256, no file that no row names, and the manifest's counts and
/// hashes when there is one. Returns every problem found (none: all good). On the data dir of
/// a running server, an upload in flight may show as an orphan for a moment.
pub fn verify(dir: &Path) -> Result<Vec<Problem>, BackupError> {
    let db = dir.join(DB_FILE);
    if !db.is_file() {
        return Ok(vec![Problem::NoDatabase]);
    }
    let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    c.busy_timeout(crate::BUSY_TIMEOUT)?;
    let mut problems = Vec::new();
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if check != ["ok"] {
        problems.extend(check.into_iter().map(Problem::Integrity));
    }
    let rows: Vec<(i64, String, String)> = c
        .prepare(
            "SELECT id, blob_path, sha256 FROM evidence WHERE blob_path IS NOT NULL
             UNION ALL SELECT id, redacted_blob, redacted_sha256 FROM evidence
                       WHERE redacted_blob IS NOT NULL ORDER BY 1",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let blob_dir = dir.join(BLOB_DIR);
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for entry in read_dir_or_empty(&blob_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        hashes.insert(name, hash_file(&entry.path())?);
    }
    let mut named = BTreeSet::new();
    for (evidence, file, sha) in rows {
        match hashes.get(&file) {
            None => problems.push(Problem::MissingBlob {
                evidence,
                file: file.clone(),
            }),
            Some(h) if *h != sha => problems.push(Problem::HashMismatch {
                evidence,
                file: file.clone(),
            }),
            Some(_) => {}
        }
        named.insert(file);
    }
    problems.extend(
        hashes
            .keys()
            .filter(|f| !named.contains(*f))
            .map(|f| Problem::Orphan(f.clone())),
    );
    if let Some(m) = read_manifest(dir)? {
        let counts = table_counts(&c)?;
        for (table, &expected) in &m.tables {
            let found = counts.get(table).copied().unwrap_or(-1);
            if found != expected {
                problems.push(Problem::CountMismatch {
                    table: table.clone(),
                    expected,
                    found,
                });
            }
        }
        let files: BTreeSet<&String> = m.blobs.keys().chain(hashes.keys()).collect();
        for f in files {
            if m.blobs.get(f) != hashes.get(f) {
                problems.push(Problem::ManifestBlob(f.clone()));
            }
        }
    }
    Ok(problems)
}

/// Reads `manifest.json` of a backup; `None` where there is none (a data dir).
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, BackupError> {
    match fs::read(dir.join(MANIFEST_FILE)) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Row count of every table (FTS shadow tables included: they are data too).
pub fn table_counts(c: &Connection) -> Result<BTreeMap<String, i64>, BackupError> {
    let names: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = BTreeMap::new();
    for name in names {
        let n = c.query_row(
            &format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        out.insert(name, n);
    }
    Ok(out)
}

/// Copies the whole database in one backup step (one consistent snapshot), as a rollback-
/// journal file so the copy is one self-contained file; returns the open copy.
fn copy_db(src: &Connection, dest: &Path) -> Result<Connection, BackupError> {
    let mut dst = Connection::open(dest)?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let b = Backup::new(src, &mut dst)?;
        // -1: every page in one step, under one read transaction. Smaller steps would restart
        // at every commit of a busy server and might never finish.
        let mut waits = 0;
        loop {
            match b.step(-1)? {
                StepResult::Done => break,
                _ if waits < 100 => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed locked for 5 s".into()),
                    )
                    .into())
                }
            }
        }
    }
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    File::open(dest)?.sync_all()?;
    Ok(dst)
}

/// Image file names the (copied) database names: originals and redacted copies.
fn named_blobs(c: &Connection) -> Result<BTreeSet<String>, BackupError> {
    Ok(c.prepare(
        "SELECT blob_path FROM evidence WHERE blob_path IS NOT NULL
             UNION SELECT redacted_blob FROM evidence WHERE redacted_blob IS NOT NULL",
    )?
    .query_map([], |r| r.get(0))?
    .collect::<rusqlite::Result<_>>()?)
}

fn user_version(c: &Connection) -> Result<usize, BackupError> {
    Ok(c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize)
}

/// Creates `dir` (owner-only on Unix: it will hold the incident data) or accepts it empty;
/// says whether it existed.
fn claim_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    if dir.exists() {
        if fs::read_dir(dir)?.next().is_some() {
            return Err(BackupError::NotEmpty(dir.into()));
        }
        return Ok(true);
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)?;
    Ok(false)
}

/// A failed backup or restore leaves nothing behind that could pass for a finished one: the
/// folder it claimed is emptied again (removed if it made it).
fn undo_on_error<T>(
    dir: &Path,
    existed: bool,
    r: Result<T, BackupError>,
) -> Result<T, BackupError> {
    if r.is_err() {
        let _ = fs::remove_dir_all(dir);
        if existed {
            let _ = fs::create_dir(dir);
        }
    }
    r
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(r) => Ok(Box::new(r)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut h = Sha256::new();
    io::copy(&mut File::open(path)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Copies `from` to `to`, synced, and returns the SHA-256 of what was copied.
fn copy_hashed(from: &Path, to: &Path) -> io::Result<String> {
    let bytes = fs::read(from)?;
    write_file_synced(to, &bytes)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn write_file_synced(to: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(to)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Temp file, sync, rename, sync the folder: the manifest appears whole or not at all, and
/// last, so a folder with a manifest is a finished backup.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_file_synced(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewImageEvidence, NewIncidentRow, Store};
    use opslens_domain::AnalysisState;

    /// A data dir with two incidents, a text note and three screenshots (two share a file).
    fn sample() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let s = Store::open(&data).unwrap();
        for title in ["db-1 disk full", "checkout 5xx"] {
            s.create_incident(NewIncidentRow::test(title)).unwrap();
        }
        s.add_text_evidence(1, opslens_domain::EvidenceType::Log, "df", "100%", "cli")
            .unwrap();
        for (incident, bytes) in [
            (1, b"one".to_vec()),
            (2, b"two".to_vec()),
            (2, b"one".to_vec()),
        ] {
            let img = NewImageEvidence {
                title: "shot".into(),
                source: "upload".into(),
                bytes,
                ext: "png",
                mime: "image/png",
                width: 1,
                height: 1,
                original_name: None,
                analysis_state: AnalysisState::WaitingForModel,
            };
            s.add_image_evidence(incident, img).unwrap();
        }
        (tmp, data)
    }

    fn blob_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir.join(BLOB_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn backup_restore_round_trip_keeps_every_row_and_file() {
        let (tmp, data) = sample();
        let dest = tmp.path().join("bk");
        let m = backup(&data, &dest).unwrap();
        assert_eq!(m.schema_version, crate::MIGRATIONS.len());
        assert_eq!(m.tables["incident"], 2);
        assert_eq!(m.tables["evidence"], 4);
        assert_eq!(m.blobs.len(), 2, "{:?}", m.blobs);
        assert_eq!(read_manifest(&dest).unwrap().unwrap(), m);
        assert_eq!(verify(&data).unwrap(), []);

        let restored = tmp.path().join("restored");
        restore(&dest, &restored).unwrap();
        assert_eq!(verify(&restored).unwrap(), []);
        assert_eq!(blob_names(&restored), blob_names(&data));
        let s = Store::open(&restored).unwrap();
        assert_eq!(s.incident(2).unwrap().title, "checkout 5xx");
        let c = Connection::open(restored.join(DB_FILE)).unwrap();
        assert_eq!(table_counts(&c).unwrap(), m.tables);
    }

    #[test]
    fn a_redacted_copy_is_backed_up_verified_and_restored() {
        let (tmp, data) = sample();
        {
            let s = Store::open(&data).unwrap();
            let b = opslens_domain::RedactionBox {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
            };
            s.set_redaction(2, b"redacted", &[b]).unwrap();
        }
        assert_eq!(
            verify(&data).unwrap(),
            [],
            "the redacted file is not an orphan"
        );
        let dest = tmp.path().join("bk");
        let m = backup(&data, &dest).unwrap();
        assert_eq!(m.blobs.len(), 3, "{:?}", m.blobs);
        let restored = tmp.path().join("restored");
        restore(&dest, &restored).unwrap();
        assert_eq!(verify(&restored).unwrap(), []);
        assert_eq!(blob_names(&restored), blob_names(&data));
        let s = Store::open(&restored).unwrap();
        assert!(s.redacted_image(2).unwrap().unwrap().exists());
        assert!(s.evidence(2).unwrap().redaction.is_some());
    }

    #[test]
    fn restore_refuses_a_non_empty_target_a_newer_schema_and_a_damaged_backup() {
        let (tmp, data) = sample();
        let dest = tmp.path().join("bk");
        backup(&data, &dest).unwrap();
        assert!(matches!(
            backup(&data, &dest),
            Err(BackupError::NotEmpty(_))
        ));
        assert!(matches!(
            restore(&dest, &data),
            Err(BackupError::NotEmpty(_))
        ));
        assert!(matches!(
            restore(&data, &tmp.path().join("x")),
            Err(BackupError::NotABackup(_))
        ));

        let mut m = read_manifest(&dest).unwrap().unwrap();
        m.schema_version = 99;
        fs::write(dest.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
        let err = restore(&dest, &tmp.path().join("new")).unwrap_err();
        assert!(
            matches!(err, BackupError::TooNew { found: 99, .. }),
            "{err}"
        );
        assert!(
            !tmp.path().join("new").exists(),
            "nothing created on refusal"
        );
    }

    #[test]
    fn a_backup_missing_an_image_fails_and_leaves_nothing() {
        let (tmp, data) = sample();
        let first = blob_names(&data).remove(0);
        fs::remove_file(data.join(BLOB_DIR).join(&first)).unwrap();
        let dest = tmp.path().join("bk");
        let err = backup(&data, &dest).unwrap_err();
        assert!(
            matches!(&err, BackupError::Vanished(f) if *f == first),
            "{err}"
        );
        assert!(!dest.exists());
        fs::create_dir(&dest).unwrap();
        backup(&data, &dest).unwrap_err();
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 0, "emptied, kept");
    }

    #[test]
    fn verify_names_a_deleted_a_corrupted_and_an_orphan_file() {
        let (tmp, data) = sample();
        let dest = tmp.path().join("bk");
        let m = backup(&data, &dest).unwrap();
        let names: Vec<&String> = m.blobs.keys().collect();
        fs::remove_file(dest.join(BLOB_DIR).join(names[0])).unwrap();
        fs::write(dest.join(BLOB_DIR).join(names[1]), b"tampered").unwrap();
        fs::write(dest.join(BLOB_DIR).join("stray.png"), b"x").unwrap();
        let problems = verify(&dest).unwrap();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::MissingBlob { file, .. } if file == names[0])),
            "{text:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::HashMismatch { file, .. } if file == names[1])),
            "{text:?}"
        );
        assert!(
            problems.contains(&Problem::Orphan("stray.png".into())),
            "{text:?}"
        );
        assert!(
            problems.contains(&Problem::ManifestBlob(names[0].clone())),
            "{text:?}"
        );
        let err = restore(&dest, &tmp.path().join("new")).unwrap_err();
        assert!(matches!(err, BackupError::Invalid(_)), "{err}");

        // A count that differs from the manifest is named too.
        let c = Connection::open(dest.join(DB_FILE)).unwrap();
        c.execute("DELETE FROM evidence WHERE id = 1", []).unwrap();
        drop(c);
        assert!(verify(&dest)
            .unwrap()
            .iter()
            .any(|p| matches!(p, Problem::CountMismatch { table, .. } if table == "evidence")));
    }
}
