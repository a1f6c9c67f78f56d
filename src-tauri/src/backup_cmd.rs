//! `opslens backup | restore | verify`: the CLI side of `opslens_store::backup`. They work on
//! files, not through the server, so a backup can be taken while `serve` runs and a restore
//! needs no server at all.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use opslens_store::backup::{self, Manifest};

/// Backup subcommands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Copy the data dir into DEST (new or empty), safe while the server runs.
    ///
    /// DEST gets the database (SQLite's online backup), the image files it names and
    /// manifest.json (schema version, row counts, SHA-256 of each image); the copy is verified.
    Backup {
        /// Folder to create (or an empty one).
        dest: PathBuf,
    },
    /// Restore the backup SRC into the data dir, which must be new or empty.
    Restore {
        /// A folder made by `opslens backup`.
        src: PathBuf,
    },
    /// Check a data dir (default: this one) or a backup; exits 1 naming each problem.
    ///
    /// Checks integrity_check, every image present and matching its SHA-256, no orphan
    /// files, and a backup's manifest counts and hashes.
    Verify {
        /// Data dir or backup folder.
        dir: Option<PathBuf>,
    },
}

/// Runs one of the backup subcommands on `data_dir`.
pub fn run(data_dir: &Path, cmd: BackupCmd) -> anyhow::Result<()> {
    refuse_on_postgres(data_dir, &cmd)?;
    match cmd {
        BackupCmd::Backup { dest } => {
            let m = backup::backup(data_dir, &dest)?;
            println!(
                "backed up {} to {}: {}",
                data_dir.display(),
                dest.display(),
                summary(&m)
            );
        }
        BackupCmd::Restore { src } => {
            let m = backup::restore(&src, data_dir)?;
            println!(
                "restored {} into {}: {}",
                src.display(),
                data_dir.display(),
                summary(&m)
            );
            println!("a new API token is made at the first start (the backup holds none)");
        }
        BackupCmd::Verify { dir } => {
            let dir = dir.as_deref().unwrap_or(data_dir);
            let problems = backup::verify(dir)?;
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{}: {p}", dir.display());
                }
                anyhow::bail!("{} problem(s) in {}", problems.len(), dir.display());
            }
            println!("{}: ok", dir.display());
        }
    }
    Ok(())
}

/// These commands copy and check an SQLite file; a data dir whose database is PostgreSQL
/// (`OPSLENS_DATABASE_URL`) has none, and a restored file there would be ignored by the server.
/// Say which tools do it instead, in one line, rather than fail on a missing file or leave a
/// half-made copy. `verify` of a backup folder (not the data dir) still works.
fn refuse_on_postgres(data_dir: &Path, cmd: &BackupCmd) -> anyhow::Result<()> {
    let Some(url) = opslens_store::database_for(data_dir) else {
        return Ok(());
    };
    let name = match cmd {
        BackupCmd::Backup { .. } => "backup",
        BackupCmd::Restore { .. } => "restore",
        BackupCmd::Verify { dir: Some(d) } if d != data_dir => return Ok(()),
        BackupCmd::Verify { .. } => "verify",
    };
    anyhow::bail!(
        "opslens {name} works on an SQLite data dir, and the database of {} is PostgreSQL ({}): \
         use pg_dump and pg_restore for the database; the images are in {} (or the blob bucket)",
        data_dir.display(),
        opslens_store::describe_database_url(&url),
        data_dir.join("blobs").display()
    )
}

fn summary(m: &Manifest) -> String {
    let n = |t: &str| m.tables.get(t).copied().unwrap_or(0);
    format!(
        "schema v{}, {} incidents, {} evidence, {} image files",
        m.schema_version,
        n("incident"),
        n("evidence"),
        m.blobs.len()
    )
}
