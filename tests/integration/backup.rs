//! `opslens backup | restore | verify` with the real binary: a backup taken while clients write
//! to a running server, restored into a fresh data dir, must equal the backup row for row and
//! file for file, serve every image its manifest lists, and `verify` must name damage.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opslens_store::backup::{read_manifest, Manifest};
use rusqlite::{types::Value as Sql, Connection, OpenFlags};
use serde_json::Value;

use crate::durability::{client, serve, Acked};

/// Runs the CLI on `data`; returns (success, stdout, stderr).
fn opslens(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(args)
        .env("OPSLENS_DATA_DIR", data)
        .env_remove("OPSLENS_ADDR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every row of every table, each table's rows sorted (some tables have no rowid to order by).
fn dump(db: &Path) -> BTreeMap<String, Vec<String>> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables = opslens_store::backup::table_counts(&c).unwrap();
    tables
        .into_keys()
        .map(|t| {
            let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = st.column_count();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, Sql>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .map(|r| format!("{:?}", r.unwrap()))
                .collect();
            rows.sort();
            (t, rows)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_to_an_identical_data_dir() {
    if crate::app::skip_on_postgres(
        "`opslens backup` copies the SQLite file; a PostgreSQL data dir is refused \
         (backup_restore_and_verify_refuse_a_postgres_data_dir_naming_pg_dump)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dest = dir.path().join("backup");
    let s = serve(&data, false, dir.path().join("serve.log"));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let tasks: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(client(
                s.base.clone(),
                s.token.clone(),
                c + 7,
                1000 + c,
                acked.clone(),
            ))
        })
        .collect();
    // Let some writes land, then back up while the clients keep writing.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = acked.lock().unwrap().incidents.clone();
    let uploads_before = acked.lock().unwrap().uploads.len();
    let (data2, dest2) = (data.clone(), dest.clone());
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || opslens(&data2, &["backup", dest2.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains("backed up"), "{out}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    {
        let a = acked.lock().unwrap();
        assert!(
            a.incidents.len() > before.len() && uploads_before > 0,
            "writes were in flight around the backup"
        );
    }
    s.stop();
    for t in tasks {
        t.await.unwrap();
    }

    let m: Manifest = read_manifest(&dest).unwrap().unwrap();
    assert!(!m.blobs.is_empty(), "{m:?}");
    let backup_rows = dump(&dest.join("opslens.db"));
    for (table, rows) in &backup_rows {
        assert_eq!(rows.len() as i64, m.tables[table], "{table}");
    }
    // Everything acknowledged before the backup began is in it.
    let c = Connection::open_with_flags(dest.join("opslens.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    for (id, title) in &before {
        let t: String = c
            .query_row("SELECT title FROM incident WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(&t, title);
    }
    let images: Vec<(i64, String)> = c
        .prepare("SELECT id, blob_path FROM evidence WHERE blob_path IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(c);
    let (ok, out, err) = opslens(&data, &["verify", dest.to_str().unwrap()]);
    assert!(ok, "{out}{err}");

    // Restore into a fresh dir: identical rows and files before any server touches it.
    let fresh = dir.path().join("fresh");
    let (ok, out, err) = opslens(&fresh, &["restore", dest.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(dump(&fresh.join("opslens.db")), backup_rows);
    for (name, sha) in &m.blobs {
        let bytes = std::fs::read(fresh.join("blobs").join(name)).unwrap();
        assert_eq!(&opslens_store::blobs::sha256_hex(&bytes), sha, "{name}");
    }
    // A restore never lands on existing data.
    let (ok, _, err) = opslens(&fresh, &["restore", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");

    // A server on the restored dir serves what the manifest lists.
    let s = serve(&fresh, false, dir.path().join("fresh.log"));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let v: Value = http
        .get(format!("{}/incidents?limit=1", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], m.tables["incident"], "{v}");
    for (id, name) in &images {
        let res = http
            .get(format!("{}/evidence/{id}/image", s.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "evidence {id}");
        let body = res.bytes().await.unwrap();
        assert_eq!(opslens_store::blobs::sha256_hex(&body), m.blobs[name]);
    }
    s.stop();
    // Starting (and stopping) a server on it changed nothing either — except the image
    // fingerprints, a derived cache the server backfills at start for screenshots whose
    // fingerprint was not yet written when the backup was taken: it may only gain rows.
    let mut after = dump(&fresh.join("opslens.db"));
    let mut expected = backup_rows.clone();
    let prints_after = after.remove("image_fingerprint").unwrap_or_default();
    let prints_before = expected.remove("image_fingerprint").unwrap_or_default();
    assert_eq!(after, expected);
    assert!(
        prints_before.iter().all(|r| prints_after.contains(r)),
        "a start may add fingerprints, never change or drop them"
    );
    let (ok, out, err) = opslens(&fresh, &["verify"]);
    assert!(ok, "{out}{err}");

    // Damage to the backup is named, file by file, and fails the command.
    let names: Vec<&String> = m.blobs.keys().collect();
    assert!(names.len() >= 2, "{names:?}");
    std::fs::remove_file(dest.join("blobs").join(names[0])).unwrap();
    std::fs::write(dest.join("blobs").join(names[1]), b"not the image").unwrap();
    let (ok, _, err) = opslens(&data, &["verify", dest.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!("image file {} is missing", names[0])),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "image file {} does not match its SHA-256",
            names[1]
        )),
        "{err}"
    );
    let (ok, _, err) = opslens(
        &dir.path().join("other"),
        &["restore", dest.to_str().unwrap()],
    );
    assert!(!ok && err.contains("problem"), "{err}");
}

/// On a data dir whose database is PostgreSQL the three commands have no file to work on: one
/// line naming the tools that do it (and the images' folder), a failure exit, nothing made.
/// No database is reached, so this runs on either backend.
#[test]
fn backup_restore_and_verify_refuse_a_postgres_data_dir_naming_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("blobs")).unwrap();
    let dest = dir.path().join("copy");
    let url = "postgres://opslens:hunter2@127.0.0.1:1/team";
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
            .args(args)
            .env("OPSLENS_DATA_DIR", &data)
            .env("OPSLENS_DATABASE_URL", url)
            .env_remove("OPSLENS_ADDR")
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dest_s = dest.to_str().unwrap();
    for (name, args) in [
        ("backup", vec!["backup", dest_s]),
        ("restore", vec!["restore", dest_s]),
        ("verify", vec!["verify"]),
    ] {
        let (status, err) = run(&args);
        assert!(!status.success(), "{name}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {err}");
        let line = lines[0];
        assert!(line.contains(&format!("opslens {name}")), "{line}");
        assert!(line.contains("PostgreSQL (127.0.0.1:1/team)"), "{line}");
        assert!(
            line.contains("pg_dump") && line.contains("pg_restore"),
            "{line}"
        );
        assert!(
            line.contains(&data.join("blobs").display().to_string()),
            "{line}"
        );
        assert!(
            !line.contains("hunter2"),
            "the password is never shown: {line}"
        );
        assert!(!dest.exists(), "{name} made {}", dest.display());
    }
    assert!(!data.join("opslens.db").exists());
    // Without the database the same data dir is an SQLite one: `verify` then checks the file
    // (and names its absence), rather than the PostgreSQL refusal.
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["verify"])
        .env("OPSLENS_DATA_DIR", &data)
        .env_remove("OPSLENS_DATABASE_URL")
        .env_remove("OPSLENS_ADDR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}
