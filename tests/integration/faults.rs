//! Faults that answer clearly (issue 13): every error answer of the server, its layers and
//! hyper itself carries the JSON error body; text with control characters is refused naming
//! the field; a full disk answers 507 naming the data dir; a database locked past the busy
//! timeout answers 503 with `Retry-After`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{error_code, error_parts, png, TestApp};

/// The JSON error body of a raw answer, with its code.
fn raw_error_code(head: &str, body: &str) -> String {
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    v["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn router_layer_and_extractor_errors_carry_the_json_body() {
    let app = TestApp::spawn().await;
    let id = app.incident("db down").await;
    let code = |res, status| error_code(res, status);
    assert_eq!(code(app.get("/api/v1/nope").await, 404).await, "not_found");
    let res = app
        .req(Method::PUT, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    let allow = res.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    let (code_405, message) = error_parts(res, 405).await;
    assert_eq!(code_405, "method_not_allowed");
    // The message names the methods the path takes, as the header does.
    assert!(message.ends_with(&format!("allowed: {allow}")), "{message}");
    let res = app
        .req(Method::POST, "/api/v1/incidents")
        .header("content-type", "text/plain")
        .body(r#"{"title":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(code(res, 415).await, "unsupported_media_type");
    let res = app
        .req(Method::POST, "/api/v1/incidents")
        .header("content-type", "application/json")
        .body("{\"title\":")
        .send()
        .await
        .unwrap();
    assert_eq!(code(res, 400).await, "invalid_json");
    // serde reads a struct from an array; the API takes objects only.
    let res = app
        .post("/api/v1/incidents", &json!(["an array title"]))
        .await;
    assert_eq!(code(res, 422).await, "invalid_body");
    let res = app
        .post(&format!("/api/v1/evidence/{id}/analyze"), &json!([]))
        .await;
    assert_eq!(code(res, 422).await, "invalid_body");
    let res = app.get("/api/v1/incidents/abc").await;
    assert_eq!(code(res, 400).await, "invalid_path");
    let res = app.get("/api/v1/incidents?severity=urgent").await;
    assert_eq!(code(res, 400).await, "invalid_query");
    let big = "x".repeat(9 * 1024 * 1024);
    let res = app
        .post(
            "/api/v1/incidents",
            &json!({ "title": "t", "description": big }),
        )
        .await;
    assert_eq!(code(res, 413).await, "payload_too_large");
}

#[tokio::test]
async fn hyper_own_answers_carry_the_json_body() {
    let app = TestApp::spawn().await;
    let host = app.server().addr.to_string();
    // A 100 KB URL: hyper refuses URIs over 64 KiB before any service runs.
    let long = format!(
        "GET /api/v1/search?q={} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "a".repeat(100_000)
    );
    let (status, head, body) = app.raw(&long).await;
    assert_eq!(status, 414, "{head}");
    assert_eq!(raw_error_code(&head, &body), "uri_too_long");
    // More headers than hyper parses (100).
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let req = format!("GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n{many}\r\n");
    let (status, head, body) = app.raw(&req).await;
    assert_eq!(status, 431, "{head}");
    assert_eq!(raw_error_code(&head, &body), "headers_too_large");
    // Not HTTP at all.
    let (status, head, body) = app.raw("GARBAGE\x01 / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 400, "{head}");
    assert_eq!(raw_error_code(&head, &body), "bad_request");
    // The connection wrapper leaves ordinary answers alone.
    let (status, head, body) = app
        .raw(&format!(
            "GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("\"ok\""), "{body}");
}

#[tokio::test]
async fn control_characters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let id = app.incident("api errors").await;
    let before = app.snapshot();
    let cases = [
        (
            "/api/v1/incidents".to_string(),
            json!({ "title": "nul\u{0} here" }),
            "title",
        ),
        (
            "/api/v1/incidents".to_string(),
            json!({ "title": "ok", "description": "bell\u{7}" }),
            "description",
        ),
        (
            format!("/api/v1/evidence/incident/{id}"),
            json!({ "evidence_type": "log", "title": "t", "content": "\u{1b}[31merror" }),
            "content",
        ),
        (
            format!("/api/v1/incidents/{id}/hypotheses"),
            json!({ "statement": "pool\u{1f}" }),
            "statement",
        ),
        (
            format!("/api/v1/incidents/{id}/actions"),
            json!({ "title": "restart", "owner": "a\u{0}b" }),
            "owner",
        ),
        (
            format!("/api/v1/incidents/{id}/timeline"),
            json!({ "message": "\u{8}" }),
            "message",
        ),
    ];
    for (path, body, field) in cases {
        let res = app.post(&path, &body).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, 422, "{path} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!("{field} must not contain control characters")),
            "{msg}"
        );
    }
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({ "title": "x\u{0}" }),
        )
        .await;
    assert_eq!(error_code(res, 422).await, "invalid");
    assert_eq!(app.snapshot(), before, "nothing may be stored");
    // Tab, newline and carriage return are text.
    app.create(
        "/api/v1/incidents",
        &json!({ "title": "5xx\tspike", "description": "line 1\r\nline 2\n" }),
    )
    .await;
}

/// A lock on the database held by another session until dropped.
enum HeldLock {
    Sqlite(rusqlite::Connection),
    /// The holder thread rolls back (releasing the lock) when the sender goes.
    Postgres(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>),
}

impl HeldLock {
    /// On SQLite the write lock (`BEGIN IMMEDIATE`), as a backup tool or an `sqlite3` shell
    /// would take it; on PostgreSQL `LOCK TABLE incident IN EXCLUSIVE MODE`, as a migration
    /// or an operator's session would: it stops writes to the table but not reads.
    fn take(app: &TestApp) -> HeldLock {
        match &app.database {
            None => {
                let db = rusqlite::Connection::open(app.data_dir().join("opslens.db")).unwrap();
                db.execute_batch("BEGIN IMMEDIATE").unwrap();
                HeldLock::Sqlite(db)
            }
            Some(url) => {
                let url = url.clone();
                let (locked_tx, locked) = std::sync::mpsc::channel();
                let (release, released) = std::sync::mpsc::channel::<()>();
                let holder = std::thread::spawn(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    let mut t = c.transaction().unwrap();
                    t.batch_execute("LOCK TABLE incident IN EXCLUSIVE MODE")
                        .unwrap();
                    locked_tx.send(()).unwrap();
                    let _ = released.recv();
                    t.rollback().unwrap();
                });
                locked.recv().unwrap();
                HeldLock::Postgres(release, holder)
            }
        }
    }

    fn release(self) {
        match self {
            HeldLock::Sqlite(db) => db.execute_batch("ROLLBACK").unwrap(),
            HeldLock::Postgres(release, holder) => {
                drop(release);
                holder.join().unwrap();
            }
        }
    }
}

/// Holds a lock on the database from another session past the server's wait for it (SQLite's
/// busy timeout; PostgreSQL's `lock_timeout` on the pool's connections): the write answers 503
/// with a retry hint rather than hang, and goes through once the lock is gone.
#[tokio::test]
async fn a_database_locked_past_the_timeout_answers_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let lock = HeldLock::take(&app);
    let started = std::time::Instant::now();
    let res = app
        .post("/api/v1/incidents", &json!({ "title": "locked" }))
        .await;
    let waited = started.elapsed();
    let retry = res.headers().get("retry-after").cloned();
    assert_eq!(error_code(res, 503).await, "busy");
    assert_eq!(retry.unwrap().to_str().unwrap(), "2");
    // It waited for the lock a while, but boundedly.
    assert!(
        waited >= std::time::Duration::from_secs(1) && waited < std::time::Duration::from_secs(20),
        "{waited:?}"
    );
    // Reads go on meanwhile (WAL; a plain SELECT past an EXCLUSIVE table lock), and writes
    // resume once the lock is gone.
    assert_eq!(app.get("/api/v1/incidents").await.status(), 200);
    lock.release();
    app.create("/api/v1/incidents", &json!({ "title": "unlocked" }))
        .await;
    let list = app.get_json("/api/v1/incidents").await;
    assert_eq!(list["total"], 1, "the refused write left nothing: {list}");
}

/// A tmpfs of a few MiB as the data dir's disk; unmounted (lazily) when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// `None` where mounting is not allowed (not root, no CAP_SYS_ADMIN): the test then says
    /// so and the mapping stays covered by the unit tests in `opslens_core::storage`.
    fn mount(mib: u32) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyDisk { dir })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk holding `dir` with one file; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // Whatever is left is smaller than a chunk: take it byte by byte.
    while f.write_all(&[7]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_answers_507_naming_the_data_dir_and_recovers() {
    let Some(disk) = TinyDisk::mount(16) else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the disk-full mapping is covered \
             by the unit tests of opslens_core::storage and opslens_store::faults"
        );
        return;
    };
    let data = disk.dir.path().join("data");
    let server = opslens::server::Server::start_opts(
        &data,
        "127.0.0.1:0".parse().unwrap(),
        opslens::server::StartOptions {
            secrets_from_env: false,
            extras: opslens_api::Extras::default(),
            next_free_port: false,
            analysis: None,
            blobs: Default::default(),
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let token = server.token.expose().to_string();
    let post = |p: &str, body: Value| http.post(url(p)).bearer_auth(&token).json(&body).send();
    let res = post("/api/v1/incidents", json!({ "title": "before" }))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let filler = fill(disk.dir.path());
    // A row bigger than anything SQLite's files have room for, and an image file.
    let big = "d".repeat(2 * 1024 * 1024);
    let res = post(
        "/api/v1/incidents",
        json!({ "title": "during", "description": big }),
    )
    .await
    .unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 507, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_storage");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&data.display().to_string()), "{msg}");
    assert!(msg.contains(" free"), "{msg}");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png(600, 400)).file_name("full.png"),
    );
    let res = http
        .post(url(&format!(
            "/api/v1/evidence/incident/{id}/upload-screenshot"
        )))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 507).await, "insufficient_storage");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    // Reads still work, and nothing was lost.
    let res = http
        .get(url("/api/v1/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["total"], 1);

    // Space again: writes work again without a restart.
    std::fs::remove_file(filler).unwrap();
    let res = post("/api/v1/incidents", json!({ "title": "after" }))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    server.stop().await.unwrap();
}
