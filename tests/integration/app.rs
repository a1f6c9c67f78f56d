//! `TestApp`: a server on 127.0.0.1:0 with its own temp data dir, plus request helpers.

#![allow(dead_code)]

use std::path::PathBuf;

use opslens::server::Server;
use reqwest::{Method, Response};
use serde_json::Value;

/// With `OPSLENS_TEST_DATABASE_URL` set (a PostgreSQL server's URL, e.g. from
/// `scripts/pg-cluster start`), the test servers run on PostgreSQL: each data dir gets a fresh
/// database of its own there. Unset, they run on SQLite as always: one test list, two backends.
pub fn on_test_database(data_dir: &std::path::Path) -> Option<String> {
    let admin = std::env::var("OPSLENS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())?;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "opslens_t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    // The blocking client must not run inside the test's async task: a thread of its own.
    let admin2 = admin.clone();
    let create = name.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin2, postgres::NoTls)
            .unwrap_or_else(|e| panic!("OPSLENS_TEST_DATABASE_URL {admin2}: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    // Same server and user, the new database: swap the URL's path.
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let url = format!("{}/{name}{query}", &base[..host_end]);
    opslens_store::use_database_for(data_dir, &url);
    Some(url)
}

/// `true` (after saying so) when the suite runs on PostgreSQL and the calling test checks
/// something only the SQLite file has (its online backup): the test then returns early.
pub fn skip_on_postgres(why: &str) -> bool {
    let on = std::env::var("OPSLENS_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
    if on {
        eprintln!("skipped on PostgreSQL (OPSLENS_TEST_DATABASE_URL is set): {why}");
    }
    on
}

pub struct TestApp {
    /// The PostgreSQL database of this server (`None`: the SQLite file in the data dir).
    pub database: Option<String>,
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Drop for TestApp {
    /// Drops this server's PostgreSQL database after stopping the server (`WITH (FORCE)` ends
    /// any connection left, a worker's or a second replica's), so a suite run does not leave
    /// ~150 databases (about 1 GB) on a shared machine. A failed test keeps its database to
    /// look at, and says which.
    fn drop(&mut self) {
        let Some(url) = self.database.take() else {
            return;
        };
        let Some(admin) = std::env::var("OPSLENS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            return;
        };
        let name = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        if std::thread::panicking() {
            eprintln!("kept the failed test's database {name}");
            return;
        }
        if !name.starts_with("opslens_t") {
            return;
        }
        drop(self.server.take());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_secrets("").await
    }

    /// A server whose integration keys are `secrets` (a `secrets.env` body) and nothing from
    /// the process environment.
    pub async fn spawn_with_secrets(secrets: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if !secrets.is_empty() {
            std::fs::create_dir_all(&data).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
            }
            std::fs::write(data.join("secrets.env"), secrets).unwrap();
        }
        let database = on_test_database(&data);
        let server = Server::start_with(&data, "127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        TestApp {
            database,
            server: Some(server),
            dir,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// A server analysing screenshots with the given model settings.
    pub async fn spawn_with_analysis(
        f: impl FnOnce(&std::path::Path) -> opslens_core::analysis::AnalysisConfig,
    ) -> Self {
        Self::spawn_opts(|root| opslens::server::StartOptions {
            analysis: Some(f(root)),
            ..Self::options()
        })
        .await
    }

    /// A server whose `POST /capture` grabs `screen` (a fake: tests must not depend on the
    /// developer's display); `None` gives a server without capture.
    pub async fn spawn_with_screen(
        screen: Option<std::sync::Arc<dyn opslens_domain::ScreenSource>>,
    ) -> Self {
        Self::spawn_opts(|_| opslens::server::StartOptions {
            extras: opslens_api::Extras {
                screen,
                ..Default::default()
            },
            ..Self::options()
        })
        .await
    }

    /// A server with the given extras (thresholds, desktop facts) and nothing else changed.
    pub async fn spawn_with_extras(extras: opslens_api::Extras) -> Self {
        Self::spawn_opts(|_| opslens::server::StartOptions {
            extras,
            ..Self::options()
        })
        .await
    }

    /// What every test server starts with: no secrets from the environment, no model, no
    /// screen, exactly the port asked for.
    fn options() -> opslens::server::StartOptions {
        opslens::server::StartOptions {
            secrets_from_env: false,
            extras: opslens_api::Extras::default(),
            next_free_port: false,
            analysis: None,
            blobs: Default::default(),
        }
    }

    /// A server in a fresh temporary folder (data under `data/`), started with the options
    /// `f` makes from that folder.
    pub async fn spawn_opts(
        f: impl FnOnce(&std::path::Path) -> opslens::server::StartOptions,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = on_test_database(&dir.path().join("data"));
        let opts = f(dir.path());
        let server = Server::start_opts(
            &dir.path().join("data"),
            "127.0.0.1:0".parse().unwrap(),
            opts,
        )
        .await
        .unwrap();
        TestApp {
            database,
            server: Some(server),
            dir,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server().addr)
    }

    pub fn token(&self) -> String {
        self.server().token.expose().to_string()
    }

    /// Stops the server and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.server.take().unwrap().stop().await.unwrap();
        let s = Server::start_with(&self.data_dir(), "127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        self.server = Some(s);
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.token())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.req(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.req(Method::PATCH, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST expecting 201; returns the JSON.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let res = self.post(path, body).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{path}: {v}");
        v
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.unwrap()
    }

    pub async fn incident(&self, title: &str) -> i64 {
        let v = self
            .create(
                "/api/v1/incidents",
                &serde_json::json!({"title": title, "severity": "high"}),
            )
            .await;
        v["id"].as_i64().unwrap()
    }

    pub async fn upload(&self, incident: i64, bytes: Vec<u8>, name: &str) -> Response {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        self.req(
            Method::POST,
            &format!("/api/v1/evidence/incident/{incident}/upload-screenshot"),
        )
        .multipart(form)
        .send()
        .await
        .unwrap()
    }

    /// Row counts of every table and the number of image files: "nothing written" checks.
    pub fn snapshot(&self) -> Vec<(String, i64)> {
        let tables = [
            "incident",
            "evidence",
            "timeline_event",
            "hypothesis",
            "hypothesis_evidence",
            "action_item",
        ];
        let mut out: Vec<(String, i64)> = match &self.database {
            Some(url) => {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    tables
                        .iter()
                        .map(|t| {
                            let n: i64 = c
                                .query_one(&format!("SELECT COUNT(*) FROM {t}"), &[])
                                .unwrap()
                                .get(0);
                            (t.to_string(), n)
                        })
                        .collect()
                })
                .join()
                .unwrap()
            }
            None => {
                let c = rusqlite::Connection::open_with_flags(
                    self.data_dir().join("opslens.db"),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                tables
                    .iter()
                    .map(|t| {
                        let n: i64 = c
                            .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                            .unwrap();
                        (t.to_string(), n)
                    })
                    .collect()
            }
        };
        let files = std::fs::read_dir(self.data_dir().join("blobs"))
            .unwrap()
            .count() as i64;
        out.push(("blob files".into(), files));
        out
    }

    /// Whether this server runs on PostgreSQL (`OPSLENS_TEST_DATABASE_URL` set), for the few
    /// checks whose SQL must differ (triggers) or that only one backend can make.
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// Runs `f` on a connection of the test's own to this server's PostgreSQL database, on a
    /// thread of its own (the blocking client must not run inside the test's async task).
    fn with_pg<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
    ) -> T {
        let url = self.database.clone().expect("a PostgreSQL test server");
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            f(&mut c)
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// A connection of the test's own to this server's SQLite file, waiting out the server's
    /// writes as the server waits out ours.
    fn sqlite(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.data_dir().join("opslens.db")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c
    }

    /// Runs statements (no parameters) on this server's database behind its back, as another
    /// process or replica would: the same text on both backends unless the test picks by
    /// [`TestApp::on_postgres`].
    pub fn sql_batch(&self, sql: &str) {
        if self.on_postgres() {
            let sql = sql.to_string();
            self.with_pg(move |c| c.batch_execute(&sql))
                .unwrap_or_else(|e| panic!("{e}"));
        } else {
            self.sqlite().execute_batch(sql).unwrap();
        }
    }

    /// Runs one statement (no parameters) on this server's database behind its back; returns
    /// how many rows it changed.
    pub fn sql_exec(&self, sql: &str) -> u64 {
        if self.on_postgres() {
            let sql = sql.to_string();
            self.with_pg(move |c| c.execute(sql.as_str(), &[]))
                .unwrap_or_else(|e| panic!("{e}"))
        } else {
            self.sqlite().execute(sql, []).unwrap() as u64
        }
    }

    /// The single integer a query (no parameters) returns, e.g. a `COUNT(*)`, from this
    /// server's database on either backend.
    pub fn sql_i64(&self, sql: &str) -> i64 {
        if self.on_postgres() {
            let sql = sql.to_string();
            self.with_pg(move |c| c.query_one(sql.as_str(), &[]).map(|r| r.get::<_, i64>(0)))
                .unwrap_or_else(|e| panic!("{e}"))
        } else {
            self.sqlite().query_row(sql, [], |r| r.get(0)).unwrap()
        }
    }

    /// Whether `needle` is stored anywhere in this server's database: in the bytes of the
    /// SQLite file and its WAL (free pages included), or in the text of any row of any table
    /// on PostgreSQL. For "this secret is never stored" checks.
    pub fn database_contains(&self, needle: &str) -> bool {
        if self.on_postgres() {
            let needle = needle.to_string();
            return self.with_pg(move |c| {
                let tables: Vec<String> = c
                    .query(
                        "SELECT table_name::text FROM information_schema.tables
                         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert!(tables.iter().any(|t| t == "incident"), "{tables:?}");
                tables.iter().any(|t| {
                    c.query_one(
                        &format!(
                            "SELECT EXISTS(SELECT 1 FROM \"{t}\" x WHERE strpos(x::text, $1) > 0)"
                        ),
                        &[&needle],
                    )
                    .unwrap()
                    .get::<_, bool>(0)
                })
            });
        }
        ["opslens.db", "opslens.db-wal"].iter().any(|f| {
            let bytes = std::fs::read(self.data_dir().join(f)).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    }

    /// Sends raw bytes over a fresh connection and returns (status, head, body); for requests
    /// a normal client refuses to make (foreign Host, odd framing).
    pub async fn raw(&self, request: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.server().addr)
            .await
            .unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }
}

/// Asserts the API's error shape and returns the code.
pub async fn error_code(res: Response, status: u16) -> String {
    error_parts(res, status).await.0
}

/// Asserts the API's error shape and returns the code and the message.
pub async fn error_parts(res: Response, status: u16) -> (String, String) {
    assert_eq!(res.status(), status);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v: Value = res.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(!msg.is_empty());
    (
        v["error"]["code"].as_str().unwrap().to_string(),
        msg.to_string(),
    )
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG whose header claims `w`×`h` pixels, with a tiny IDAT: a decompression bomb's header.
pub fn png_bomb_header(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Waits until an `opslens serve` child wrote `DATA/server.json` and returns the API base URL
/// (`http://127.0.0.1:PORT/api/v1`); for tests that run the real binary.
pub fn wait_for_serve(data: &std::path::Path) -> String {
    let start = std::time::Instant::now();
    while !data.join("server.json").exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let v: Value =
        serde_json::from_slice(&std::fs::read(data.join("server.json")).unwrap()).unwrap();
    format!("http://{}/api/v1", v["addr"].as_str().unwrap())
}
