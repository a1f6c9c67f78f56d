//! Load benchmark of `POST /api/v1/incidents`: 32 concurrent keep-alive connections for a few
//! seconds against the real server (token, guards, SQLite WAL, timeline event per incident),
//! and, in the same run, against a bare axum + rusqlite probe doing one INSERT per request —
//! the peer figure to compare with — and against the real server again with
//! `OPSLENS_DURABILITY=full` (synchronous=FULL), the cost of that setting. Prints requests/s,
//! p50, p99, max and non-2xx counts.
//!
//! Then uploads (`POST /evidence/incident/{id}/upload-screenshot`, small distinct PNGs) onto an
//! empty incident and onto one already holding `--seed` screenshots (default 10,000), side by
//! side: an upload must cost the same whatever the incident holds.
//!
//! `cargo bench -p opslens-api --bench api_load` (add `-- --seconds 10 --connections 32 --seed
//! 10000` to change the load; `--uploads-only` skips the create comparison, `--creates-only` the
//! uploads). It lives in the API
//! crate, not the desktop package, so its release build needs no Tauri or WebKitGTK: the server
//! it drives is the same `opslens_api::serve_with` over the same services `opslens serve` runs.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cores, pct, png, Server};
use serde_json::json;

/// The load: `cargo bench -p opslens-api --bench api_load -- [OPTIONS]`.
#[derive(clap::Parser)]
struct Load {
    /// Seconds each server is driven.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Screenshots already on the incident of the second upload run.
    #[arg(long, default_value_t = 10_000)]
    seed: usize,
    /// Skip the create comparison.
    #[arg(long)]
    uploads_only: bool,
    /// Skip the uploads.
    #[arg(long)]
    creates_only: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one request of a load is.
#[derive(Clone)]
enum Request {
    /// `POST` a new incident as JSON.
    Create,
    /// `POST` a new screenshot (multipart) onto the incident of the URL.
    Upload,
}

/// Drives `url` from `load.connections` tasks and prints the figures.
async fn drive(name: &str, url: String, token: Option<String>, load: &Load) {
    drive_with(name, url, token, load, Request::Create).await
}

async fn drive_with(name: &str, url: String, token: Option<String>, load: &Load, what: Request) {
    let deadline = Instant::now() + Duration::from_secs(load.seconds);
    let mut tasks = Vec::new();
    for c in 0..load.connections {
        let url = url.clone();
        let token = token.clone();
        let what = what.clone();
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each, like wrk's -c.
            let http = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let mut req = match what {
                    Request::Create => http
                        .post(&url)
                        .json(&json!({"title": format!("load {c}-{n}"), "severity": "high"})),
                    Request::Upload => {
                        let bytes = png(((c as u64) << 40) | (n + 1_000_000));
                        let part = reqwest::multipart::Part::bytes(bytes)
                            .file_name("shot.png")
                            .mime_str("image/png")
                            .unwrap();
                        http.post(&url)
                            .multipart(reqwest::multipart::Form::new().part("file", part))
                    }
                };
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let t0 = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t0.elapsed());
                n += 1;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| pct(&all, p);
    println!(
        "{name:<34} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  requests {:>7}  non-2xx {errors}",
        all.len() as f64 / load.seconds as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
        all.len(),
    );
}

/// The peer: axum + one rusqlite connection behind a mutex, WAL + synchronous=NORMAL, one
/// INSERT per request on a blocking thread.
async fn bare_probe(dir: &std::path::Path) -> SocketAddr {
    use axum::routing::post;
    let conn = rusqlite::Connection::open(dir.join("probe.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch("CREATE TABLE incident (id INTEGER PRIMARY KEY, title TEXT, severity TEXT)")
        .unwrap();
    let conn = Arc::new(Mutex::new(conn));
    let app = axum::Router::new().route(
        "/api/v1/incidents",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let conn = conn.clone();
            async move {
                let id = tokio::task::spawn_blocking(move || {
                    let c = conn.lock().unwrap();
                    c.execute(
                        "INSERT INTO incident(title, severity) VALUES (?1, ?2)",
                        (v["title"].as_str(), v["severity"].as_str()),
                    )
                    .unwrap();
                    c.last_insert_rowid()
                })
                .await
                .unwrap();
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(json!({"id": id})),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

fn main() {
    let load = <Load as clap::Parser>::parse();
    let dir = tempfile::tempdir().unwrap();
    // Server and load generator share the 2 cores, as wrk on the same machine would.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if !load.uploads_only {
            creates(dir.path(), &load).await;
        }
        if !load.creates_only {
            uploads(dir.path(), &load).await;
        }
    });
}

/// Creates: the bare peer, then OpsLens, in the same run.
async fn creates(dir: &std::path::Path, load: &Load) {
    {
        println!(
            "POST /api/v1/incidents, {} connections, {} s each, {} cores",
            load.connections,
            load.seconds,
            cores()
        );
        let probe = bare_probe(dir).await;
        drive(
            "bare axum + rusqlite (peer)",
            format!("http://{probe}/api/v1/incidents"),
            None,
            load,
        )
        .await;

        let server = Server::start(&dir.join("data")).await;
        let token = server.token.expose().to_string();
        drive(
            "opslens (token, guards, timeline)",
            format!("{}/incidents", server.api_url()),
            Some(token),
            load,
        )
        .await;
        server.stop().await;

        // The same with synchronous=FULL (a WAL sync per commit), on a fresh database. Set
        // only here, with no server running, and read by the store when it opens connections.
        std::env::set_var("OPSLENS_DURABILITY", "full");
        let server = Server::start(&dir.join("data-full")).await;
        let token = server.token.expose().to_string();
        drive(
            "opslens, OPSLENS_DURABILITY=full",
            format!("{}/incidents", server.api_url()),
            Some(token),
            load,
        )
        .await;
        server.stop().await;
        std::env::remove_var("OPSLENS_DURABILITY");
    }
}

/// Uploads onto an empty incident of a fresh data dir, then (after seeding `load.seed`
/// screenshots into one incident) onto that incident and onto a second empty one.
async fn uploads(dir: &std::path::Path, load: &Load) {
    let server = Server::start(&dir.join("uploads")).await;
    let svc = server.services.clone();
    let new = |title: &str| opslens_domain::NewIncident {
        title: title.into(),
        description: None,
        severity: None,
        status: None,
    };
    let upload_load = Load {
        connections: load.connections.min(8),
        ..*load
    };
    let token = server.token.expose().to_string();
    let url = |id: i64| {
        format!(
            "{}/evidence/incident/{id}/upload-screenshot",
            server.api_url()
        )
    };
    println!(
        "\nuploads, {} connections, {} s each",
        upload_load.connections, load.seconds
    );
    let first = svc.incidents.create(new("first")).await.unwrap().id;
    let run = |name: &'static str, id: i64| {
        drive_with(
            name,
            url(id),
            Some(token.clone()),
            &upload_load,
            Request::Upload,
        )
    };
    run("fresh data dir, empty incident", first).await;
    let full = svc.incidents.create(new("full")).await.unwrap().id;
    let seeded = Instant::now();
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let svc = svc.clone();
        let n = load.seed;
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                svc.evidence
                    .add_screenshot(full, png(i as u64), None, "seed")
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "(seeded one incident with {} screenshots in {:.1} s; all wait for a model)",
        load.seed,
        seeded.elapsed().as_secs_f64()
    );
    // Let the seeding's wake-ups and checkpoints settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run("the seeded incident", full).await;
    let other = svc.incidents.create(new("other")).await.unwrap().id;
    run("an empty incident beside it", other).await;
    server.stop().await;
}
