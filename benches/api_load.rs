//! Load benchmark of `POST /api/v1/incidents`: 32 concurrent keep-alive connections for a few
//! seconds against the real server (token, guards, SQLite WAL, timeline event per incident),
//! and, in the same run, against a bare axum + rusqlite probe doing one INSERT per request —
//! the peer figure to compare with — and against the real server again with
//! `OPSLENS_DURABILITY=full` (synchronous=FULL), the cost of that setting. Prints requests/s,
//! p50, p99, max and non-2xx counts.
//!
//! `cargo bench --bench api_load` (add `-- --seconds 10 --connections 32` to change the load).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

struct Load {
    seconds: u64,
    connections: usize,
}

fn parse_args() -> Load {
    let mut load = Load {
        seconds: 5,
        connections: 32,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                load.seconds = args[i + 1].parse().expect("--seconds N");
                i += 1;
            }
            "--connections" => {
                load.connections = args[i + 1].parse().expect("--connections N");
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    load
}

/// Drives `url` from `load.connections` tasks and prints the figures.
async fn drive(name: &str, url: String, token: Option<String>, load: &Load) {
    let deadline = Instant::now() + Duration::from_secs(load.seconds);
    let mut tasks = Vec::new();
    for c in 0..load.connections {
        let url = url.clone();
        let token = token.clone();
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
                let body = json!({"title": format!("load {c}-{n}"), "severity": "high"});
                let mut req = http.post(&url).json(&body);
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
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
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
    let load = parse_args();
    let dir = tempfile::tempdir().unwrap();
    // Server and load generator share the 2 cores, as wrk on the same machine would.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "POST /api/v1/incidents, {} connections, {} s each, {} cores",
            load.connections,
            load.seconds,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
        let probe = bare_probe(dir.path()).await;
        drive(
            "bare axum + rusqlite (peer)",
            format!("http://{probe}/api/v1/incidents"),
            None,
            &load,
        )
        .await;

        let server = opslens::server::Server::start(
            &dir.path().join("data"),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let token = server.token.expose().to_string();
        drive(
            "opslens (token, guards, timeline)",
            format!("{}/incidents", server.api_url()),
            Some(token),
            &load,
        )
        .await;
        server.stop().await.unwrap();

        // The same with synchronous=FULL (a WAL sync per commit), on a fresh database. Set
        // only here, with no server running, and read by the store when it opens connections.
        std::env::set_var("OPSLENS_DURABILITY", "full");
        let server = opslens::server::Server::start(
            &dir.path().join("data-full"),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let token = server.token.expose().to_string();
        drive(
            "opslens, OPSLENS_DURABILITY=full",
            format!("{}/incidents", server.api_url()),
            Some(token),
            &load,
        )
        .await;
        server.stop().await.unwrap();
    });
}
