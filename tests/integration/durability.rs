//! kill -9 under load: the real `opslens serve` takes concurrent incident creates and screenshot
//! uploads from several clients, is SIGKILLed at a random moment, and is started again on the
//! same data dir. Every write it acknowledged (2xx) must be there, every acknowledged image
//! byte-equal; no image file may be left that no evidence row names; `integrity_check` is ok.
//! With `OPSLENS_TEST_DATABASE_URL` set the server runs on a PostgreSQL database of its own
//! (the replica is killed, the database lives on): the same checks but `integrity_check`.
//!
//! A few rounds run with the suite; the long run is
//! `cargo test --test integration -- --ignored durability` (`OPSLENS_DURABILITY_SEED=N` replays
//! a seed printed by a failed run).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// splitmix64: a seeded generator so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A running `opslens serve` child.
pub(crate) struct Serve {
    pub child: Child,
    pub base: String,
    pub token: String,
    log: PathBuf,
}

pub(crate) fn serve(data: &Path, full: bool, log: PathBuf) -> Serve {
    // A killed server leaves its server.json behind; wait for the new one's.
    let _ = std::fs::remove_file(data.join("server.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opslens"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", data)
        .env("OPSLENS_KEYCHAIN", "off")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", data.join("hf-cache"))
        .env_remove("OPSLENS_ADDR")
        .env_remove("OPSLENS_MODEL_DIR")
        .env_remove("PAGERDUTY_API_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if full {
        cmd.env("OPSLENS_DURABILITY", "full");
    } else {
        cmd.env_remove("OPSLENS_DURABILITY");
    }
    // The data dir's PostgreSQL database when the test made it one, else its SQLite file.
    match opslens_store::database_for(data) {
        Some(url) => cmd.env(opslens_store::DATABASE_URL_ENV, url),
        None => cmd.env_remove(opslens_store::DATABASE_URL_ENV),
    };
    let child = cmd.spawn().unwrap();
    let base = crate::app::wait_for_serve(data);
    let token = std::fs::read_to_string(data.join("api-token"))
        .unwrap()
        .trim()
        .to_string();
    Serve {
        child,
        base,
        token,
        log,
    }
}

impl Serve {
    /// Stops it the way a user does (SIGTERM), so the database is closed cleanly.
    pub fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "serve exited with {st}");
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the server acknowledged before it died.
#[derive(Default)]
pub(crate) struct Acked {
    pub incidents: Vec<(i64, String)>,
    pub uploads: Vec<(i64, Vec<u8>)>,
}

/// A small PNG no other upload has: the pixels spell out `n`.
fn distinct_png(n: u64) -> Vec<u8> {
    let b = n.to_le_bytes();
    let img = image::RgbImage::from_fn(12, 12, |x, y| {
        let i = ((x + 12 * y) as usize) % 8;
        image::Rgb([b[i], (x * 20) as u8, (y * 20) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// One client: creates incidents and uploads screenshots onto them until the server is gone.
pub(crate) async fn client(
    base: String,
    token: String,
    seed: u64,
    tag: u64,
    acked: Arc<Mutex<Acked>>,
) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rng = Rng(seed);
    let mut mine: Vec<i64> = Vec::new();
    for n in 0u64.. {
        let res = if mine.is_empty() || rng.below(3) == 0 {
            let title = format!("kill-9 {tag}-{n}");
            let r = http
                .post(format!("{base}/incidents"))
                .bearer_auth(&token)
                .json(&json!({"title": title, "severity": "high"}))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => {
                        let id = v["id"].as_i64().unwrap();
                        mine.push(id);
                        acked.lock().unwrap().incidents.push((id, title));
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            let incident = mine[rng.below(mine.len() as u64) as usize];
            let png = distinct_png((tag << 32) | n);
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(png.clone()).file_name("shot.png"),
            );
            let r = http
                .post(format!(
                    "{base}/evidence/incident/{incident}/upload-screenshot"
                ))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => {
                        let id = v["id"].as_i64().unwrap();
                        acked.lock().unwrap().uploads.push((id, png));
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
        };
        // A refused connection or a cut answer: the server is gone.
        if res.is_err() {
            return;
        }
    }
}

/// With the server stopped: `integrity_check` is ok and the files in `blobs/` are exactly the
/// ones evidence rows name. On PostgreSQL (no file to check) every named file is there and no
/// file is left unnamed but the ones younger than the start-up sweep spares there (a minute:
/// another replica may be between writing a file and committing its row).
pub(crate) fn check_files_and_integrity(data: &Path) {
    if let Some(url) = opslens_store::database_for(data) {
        let named: HashSet<String> = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query(
                "SELECT blob_path FROM evidence WHERE blob_path IS NOT NULL",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
        })
        .join()
        .unwrap();
        let mut old_orphans = Vec::new();
        let mut on_disk = HashSet::new();
        for e in std::fs::read_dir(data.join("blobs")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let age = e.metadata().unwrap().modified().unwrap().elapsed();
            if !named.contains(&name) && age.is_ok_and(|a| a > Duration::from_secs(90)) {
                old_orphans.push(name.clone());
            }
            on_disk.insert(name);
        }
        assert!(
            old_orphans.is_empty(),
            "files no evidence names, older than the sweep spares: {old_orphans:?}"
        );
        let missing: Vec<_> = named.difference(&on_disk).collect();
        assert!(
            missing.is_empty(),
            "evidence naming missing files: {missing:?}"
        );
        return;
    }
    let c = rusqlite::Connection::open_with_flags(
        data.join("opslens.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(check, ["ok"]);
    let named: HashSet<String> = c
        .prepare("SELECT blob_path FROM evidence WHERE blob_path IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let on_disk: HashSet<String> = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let orphans: Vec<_> = on_disk.difference(&named).collect();
    assert!(orphans.is_empty(), "files no evidence names: {orphans:?}");
    let missing: Vec<_> = named.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "evidence naming missing files: {missing:?}"
    );
}

/// Runs `rounds` kill -9 rounds on one data dir; every third round runs with
/// `OPSLENS_DURABILITY=full`. Returns (acked incidents, acked uploads) over all rounds.
async fn kill_rounds(rounds: u64, clients: u64) -> (usize, usize) {
    let seed = std::env::var("OPSLENS_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("durability seed {seed} (OPSLENS_DURABILITY_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A database of its own that outlives every killed server, with the variable set.
    let on_postgres = crate::app::on_test_database(&data).is_some();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut total_incidents, mut total_uploads) = (0, 0);
    for round in 0..rounds {
        let full = round % 3 == 1;
        let mut s = serve(&data, full, dir.path().join(format!("serve-{round}.log")));
        let acked = Arc::new(Mutex::new(Acked::default()));
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                tokio::spawn(client(
                    s.base.clone(),
                    s.token.clone(),
                    rng.next(),
                    round * 100 + c,
                    acked.clone(),
                ))
            })
            .collect();
        let delay = Duration::from_millis(300 + rng.below(1200));
        tokio::time::sleep(delay).await;
        s.child.kill().unwrap(); // SIGKILL on Unix
        s.child.wait().unwrap();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a client hung after the kill")
                .unwrap();
        }
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        if full && !on_postgres {
            let log = std::fs::read_to_string(&s.log).unwrap();
            // The log may be coloured: look for the field and its value apart.
            assert!(
                log.contains("synchronous") && log.contains("\"FULL\""),
                "{log}"
            );
        }

        let s = serve(&data, false, dir.path().join(format!("check-{round}.log")));
        for (id, title) in &acked.incidents {
            let res = http
                .get(format!("{}/incidents/{id}", s.base))
                .bearer_auth(&s.token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                200,
                "round {round} seed {seed}: incident {id} lost"
            );
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["title"], title.as_str(), "round {round} seed {seed}");
        }
        for (id, png) in &acked.uploads {
            let res = http
                .get(format!("{}/evidence/{id}/image", s.base))
                .bearer_auth(&s.token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                200,
                "round {round} seed {seed}: upload {id} lost"
            );
            let body = res.bytes().await.unwrap();
            assert!(
                body.as_ref() == png.as_slice(),
                "round {round} seed {seed}: image of evidence {id} differs"
            );
        }
        s.stop();
        // On PostgreSQL the rows really went there, not to a file of the data dir.
        assert_eq!(data.join("opslens.db").exists(), !on_postgres);
        check_files_and_integrity(&data);
        eprintln!(
            "round {round} ({}): killed after {delay:?}; {} incidents and {} uploads acknowledged, all there",
            if full { "FULL" } else { "NORMAL" },
            acked.incidents.len(),
            acked.uploads.len()
        );
        total_incidents += acked.incidents.len();
        total_uploads += acked.uploads.len();
    }
    (total_incidents, total_uploads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_kill_9_loses_no_acknowledged_write() {
    let (incidents, uploads) = kill_rounds(3, 4).await;
    // The load really ran: a round that acknowledged nothing proves nothing.
    assert!(incidents > 0 && uploads > 0, "{incidents} / {uploads}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: cargo test --test integration -- --ignored durability"]
async fn durability_kill_9_long_run() {
    let (incidents, uploads) = kill_rounds(30, 8).await;
    assert!(incidents > 0 && uploads > 0, "{incidents} / {uploads}");
}
