//! Team-server benchmark (issue 17, "Measure"): the real server as replicas on one PostgreSQL
//! database, under a mix of creates, evidence adds and reads from 64 keep-alive connections,
//! side by side in one run with a single replica on PostgreSQL and with the single-user SQLite
//! server. Per operation and in total: requests/s, p50, p99, max, non-2xx and transport errors
//! (0 expected). An SSE client on replica A's `GET /events` measures how long after a write is
//! acknowledged on replica C its change reaches A (p50, p99, max). On PostgreSQL it also
//! samples `pg_stat_activity` during the run (who holds or waits for the store's write lock)
//! and the CPU taken by PostgreSQL and by this process, to show what limits throughput.
//!
//! `OPSLENS_BENCH_DATABASE_URL=$(scripts/pg-cluster start) cargo bench -p opslens-api --bench
//! team_load -- --seconds 30` (`--seconds` defaults to 60, `--connections` to 64, `--replicas`
//! to 3). Each setup gets a fresh database (`CREATE DATABASE opslens_bench_…`) on that server.
//!
//! The replicas run in this process (as the integration tests run theirs): each is its own
//! `Services` + `opslens_api::serve_with` on its own port and data dir, routed to the shared
//! database with `opslens_store::use_database_for`. Images: without a bucket every server keeps
//! them in `data_dir/blobs`, so replicas share images only if that folder is shared (a mount,
//! or the S3 bucket of `ServicesConfig::blobs`); here each replica's `blobs` is a symlink to one
//! folder, and the reads include fetching images uploaded through other replicas. Clients,
//! servers and PostgreSQL share this machine's cores.

#[path = "../common/mod.rs"]
mod common;
mod pg;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cores, loadavg, ms, pct, png, Server};
use opslens_domain::{NewUser, UserRole};
use pg::{cpu_ticks, create_database, postmaster_pid, sample_waits};
use serde_json::{json, Value};

/// Where the PostgreSQL server to measure is (any database on it: the bench creates its own).
const DATABASE_ENV: &str = "OPSLENS_BENCH_DATABASE_URL";

/// The load: `cargo bench -p opslens-api --bench team_load -- [OPTIONS]`.
#[derive(clap::Parser)]
struct Args {
    /// Seconds of the mixed load.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent keep-alive connections, spread over the replicas.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Server replicas sharing the PostgreSQL database.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One kind of request of the mix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    Create,
    Text,
    Upload,
    Get,
    List,
    Image,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Create,
        Op::Text,
        Op::Upload,
        Op::Get,
        Op::List,
        Op::Image,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Create => "POST /incidents",
            Op::Text => "POST /evidence (text)",
            Op::Upload => "POST upload-screenshot",
            Op::Get => "GET /incidents/{id}",
            Op::List => "GET /incidents",
            Op::Image => "GET /evidence/{id}/image",
        }
    }
}

/// The mix, one slot per tenth of a connection's requests: half writes (2 creates, 2 text
/// evidence, 1 screenshot), half reads (2 incidents, 2 lists, 1 image).
const MIX: [Op; 10] = [
    Op::Create,
    Op::Get,
    Op::Text,
    Op::List,
    Op::Create,
    Op::Upload,
    Op::Get,
    Op::Text,
    Op::List,
    Op::Image,
];

/// What the connections share: the ids they write to and read, and the writes acknowledged on
/// replica C, for the feed delay.
#[derive(Default)]
struct Shared {
    incidents: Mutex<Vec<i64>>,
    shots: Mutex<Vec<i64>>,
    /// (`incident.created` or `evidence.created`, id) → when replica C's answer was read.
    acked_on_c: Mutex<HashMap<(String, i64), Instant>>,
}

/// One operation's requests on one connection (then summed).
#[derive(Default)]
struct Tally {
    lat: Vec<Duration>,
    non_2xx: u64,
    transport: u64,
}

#[derive(Default)]
struct Tallies {
    by_op: HashMap<Op, Tally>,
    /// The first few failures, shown so a non-zero count can be told apart.
    samples: Vec<String>,
}

impl Tallies {
    fn absorb(&mut self, other: Tallies) {
        for (op, t) in other.by_op {
            let mine = self.by_op.entry(op).or_default();
            mine.lat.extend(t.lat);
            mine.non_2xx += t.non_2xx;
            mine.transport += t.transport;
        }
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }
}

/// A small xorshift: which incident or image a request names.
struct Rng(u64);

impl Rng {
    fn pick(&mut self, ids: &Mutex<Vec<i64>>) -> Option<i64> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let ids = ids.lock().unwrap();
        (!ids.is_empty()).then(|| ids[(self.0 % ids.len() as u64) as usize])
    }
}

fn client(timeout: Option<Duration>) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1);
    match timeout {
        Some(t) => b.timeout(t),
        None => b,
    }
    .build()
    .unwrap()
}

/// One keep-alive connection to `api` (one replica) running the mix until `deadline`.
async fn connection(
    c: usize,
    api: String,
    token: String,
    on_c: bool,
    shared: Arc<Shared>,
    deadline: Instant,
) -> Tallies {
    let http = client(Some(Duration::from_secs(30)));
    let mut rng = Rng((c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut out = Tallies::default();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let mut op = MIX[(n as usize + c * 3) % MIX.len()];
        let incident = rng.pick(&shared.incidents);
        let shot = rng.pick(&shared.shots);
        if incident.is_none() {
            op = Op::Create;
        }
        if op == Op::Image && shot.is_none() {
            op = Op::Get;
        }
        let incident = incident.unwrap_or_default();
        let req = match op {
            Op::Create => http
                .post(format!("{api}/incidents"))
                .json(&json!({"title": format!("team load {c}-{n}"), "severity": "high"})),
            Op::Text => http
                .post(format!("{api}/evidence/incident/{incident}"))
                .json(&json!({
                    "evidence_type": "log",
                    "title": format!("log {c}-{n}"),
                    "content": "2026-11-30T20:00:00Z checkout 502: upstream timed out after 30 s",
                })),
            Op::Upload => {
                let part = reqwest::multipart::Part::bytes(png(((c as u64) << 40) | n))
                    .file_name("shot.png")
                    .mime_str("image/png")
                    .unwrap();
                http.post(format!(
                    "{api}/evidence/incident/{incident}/upload-screenshot"
                ))
                .multipart(reqwest::multipart::Form::new().part("file", part))
            }
            Op::Get => http.get(format!("{api}/incidents/{incident}")),
            Op::List => http.get(format!("{api}/incidents")),
            Op::Image => http.get(format!("{api}/evidence/{}/image", shot.unwrap())),
        };
        let t0 = Instant::now();
        let answer = match req.bearer_auth(&token).send().await {
            Ok(r) => {
                let status = r.status();
                r.bytes().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let took = t0.elapsed();
        let acked = Instant::now();
        let tally = out.by_op.entry(op).or_default();
        tally.lat.push(took);
        match answer {
            Ok((status, body)) if status.is_success() => {
                let id = || {
                    serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_i64())
                        .expect("a created object's id")
                };
                let created = match op {
                    Op::Create => {
                        let id = id();
                        shared.incidents.lock().unwrap().push(id);
                        Some(("incident.created", id))
                    }
                    Op::Text => Some(("evidence.created", id())),
                    Op::Upload => {
                        let id = id();
                        shared.shots.lock().unwrap().push(id);
                        Some(("evidence.created", id))
                    }
                    _ => None,
                };
                if let (true, Some((kind, id))) = (on_c, created) {
                    shared
                        .acked_on_c
                        .lock()
                        .unwrap()
                        .insert((kind.to_string(), id), acked);
                }
            }
            Ok((status, body)) => {
                tally.non_2xx += 1;
                if out.samples.len() < 5 {
                    let body = String::from_utf8_lossy(&body);
                    out.samples.push(format!(
                        "{} → {status}: {}",
                        op.name(),
                        &body[..body.len().min(200)]
                    ));
                }
            }
            Err(e) => {
                tally.transport += 1;
                if out.samples.len() < 5 {
                    out.samples.push(format!("{} → transport: {e}", op.name()));
                }
            }
        }
        n += 1;
    }
    out
}

/// What the SSE client on replica A saw: (event type, id) → when it arrived.
#[derive(Default)]
struct Seen {
    at: Mutex<HashMap<(String, i64), Instant>>,
    resyncs: Mutex<u64>,
}

/// Reads replica A's change feed until `stop`; `ready` fires once it is subscribed.
async fn listen(
    url: String,
    token: String,
    seen: Arc<Seen>,
    ready: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = client(None);
    let mut r = http.get(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "GET /events: {}", r.status());
    let mut ready = Some(ready);
    let mut buf = String::new();
    loop {
        let chunk = tokio::select! {
            c = r.chunk() => c,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(Some(chunk)) = chunk else { return };
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let Ok(ev) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            match ev["type"].as_str().unwrap_or_default() {
                "ready" => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                "resync" => *seen.resyncs.lock().unwrap() += 1,
                t => {
                    if let Some(id) = ev["id"].as_i64() {
                        seen.at
                            .lock()
                            .unwrap()
                            .entry((t.to_string(), id))
                            .or_insert(now);
                    }
                }
            }
        }
    }
}

/// The figures of one setup, for the closing table.
struct Outcome {
    name: String,
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
    feed_p99: Option<Duration>,
}

/// Runs the mix against `replicas` servers on a fresh PostgreSQL database (`admin` set) or
/// against one SQLite server (`admin` unset), and prints its figures.
async fn setup(
    name: &str,
    dir: &Path,
    admin: Option<&str>,
    replicas: usize,
    args: &Args,
) -> Outcome {
    println!(
        "\n== {name}: {} connections over {replicas} server(s), {} s, {} cores, load average {}",
        args.connections,
        args.seconds,
        cores(),
        loadavg()
    );
    // The database first, then the servers on it, each with its own data dir and port.
    let database = admin.map(|admin| {
        let db = format!(
            "opslens_bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        create_database(admin, &db)
    });
    let shared_blobs = dir.join("blobs");
    std::fs::create_dir_all(&shared_blobs).unwrap();
    let mut servers = Vec::new();
    for i in 0..replicas {
        let data = dir.join(format!("replica-{i}"));
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(&shared_blobs, data.join("blobs")).unwrap();
        if let Some(url) = &database {
            opslens_store::use_database_for(&data, url);
        }
        servers.push(Server::start(&data).await);
    }
    // One person's token, stored once in the shared database, accepted by every replica; on
    // SQLite the install token (the single-user server has no other).
    let token = match database {
        Some(_) => {
            servers[0]
                .services
                .access
                .add(NewUser {
                    name: "Load Client".into(),
                    role: Some(UserRole::Member),
                })
                .await
                .unwrap()
                .token
        }
        None => servers[0].token.expose().to_string(),
    };
    let apis: Vec<String> = servers.iter().map(|s| s.api_url()).collect();
    let (a, c) = (0, replicas - 1);

    let seen = Arc::new(Seen::default());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listener = tokio::spawn(listen(
        format!("{}/events", apis[a]),
        token.clone(),
        seen.clone(),
        ready_tx,
        stop_rx,
    ));
    ready_rx.await.expect("the feed's ready event");

    let sampling = Arc::new(AtomicBool::new(false));
    let (sampler, postmaster) = match &database {
        Some(url) => {
            let url2 = url.clone();
            let pm = std::thread::spawn(move || {
                postgres::Client::connect(&url2, postgres::NoTls)
                    .ok()
                    .and_then(|mut c| postmaster_pid(&mut c))
            })
            .join()
            .unwrap();
            let (url, stop) = (url.clone(), sampling.clone());
            (
                Some(std::thread::spawn(move || sample_waits(url, stop))),
                pm,
            )
        }
        None => (None, None),
    };

    let shared = Arc::new(Shared::default());
    let cpu0 = cpu_ticks(postmaster);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            let r = i % replicas;
            tokio::spawn(connection(
                i,
                apis[r].clone(),
                token.clone(),
                r == c,
                shared.clone(),
                deadline,
            ))
        })
        .collect();
    let mut all = Tallies::default();
    for t in tasks {
        all.absorb(t.await.unwrap());
    }
    let elapsed = t0.elapsed();
    let cpu1 = cpu_ticks(postmaster);
    sampling.store(true, Ordering::Relaxed);
    let waits = sampler.map(|s| s.join().unwrap());
    let load_after = loadavg();

    // Let the feed catch up (bounded), then stop listening.
    let acked: HashMap<(String, i64), Instant> = shared.acked_on_c.lock().unwrap().clone();
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        let caught_up = {
            let at = seen.at.lock().unwrap();
            acked.keys().all(|k| at.contains_key(k))
        };
        if caught_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = listener.await;

    // Per operation, then in total.
    println!(
        "  {:<26} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>9}",
        "operation", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "non-2xx", "transport"
    );
    let secs = elapsed.as_secs_f64();
    let mut total = Tally::default();
    let row = |label: &str, t: &mut Tally| {
        t.lat.sort();
        if t.lat.is_empty() {
            return;
        }
        println!(
            "  {label:<26} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>8} {:>9}",
            t.lat.len() as f64 / secs,
            ms(pct(&t.lat, 0.50)),
            ms(pct(&t.lat, 0.99)),
            ms(*t.lat.last().unwrap()),
            t.lat.len(),
            t.non_2xx,
            t.transport
        );
    };
    for op in Op::ALL {
        if let Some(t) = all.by_op.get_mut(&op) {
            row(op.name(), t);
            total.lat.extend(&t.lat);
            total.non_2xx += t.non_2xx;
            total.transport += t.transport;
        }
    }
    row("total", &mut total);
    for s in &all.samples {
        println!("  error: {s}");
    }

    // The feed: writes acknowledged on C, as A's SSE client saw them.
    let at = seen.at.lock().unwrap().clone();
    let mut delays = Vec::new();
    let (mut early, mut missing) = (0, 0);
    for (key, ack) in &acked {
        match at.get(key) {
            Some(arrived) if arrived < ack => {
                early += 1;
                delays.push(Duration::ZERO);
            }
            Some(arrived) => delays.push(arrived.duration_since(*ack)),
            None => missing += 1,
        }
    }
    delays.sort();
    let where_ = if replicas > 1 {
        "replica C, seen by SSE on replica A"
    } else {
        "the server, seen by SSE on the same server"
    };
    let feed_p99 = (!delays.is_empty()).then(|| pct(&delays, 0.99));
    if delays.is_empty() {
        println!("  feed: no write acknowledged on {where_}");
    } else {
        println!(
            "  feed, writes acked on {where_}: {} of {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({early} before the answer was read, counted 0; {missing} never arrived; {} resync)",
            delays.len(),
            acked.len(),
            ms(pct(&delays, 0.50)),
            ms(pct(&delays, 0.99)),
            ms(*delays.last().unwrap()),
            *seen.resyncs.lock().unwrap(),
        );
    }

    let core_pct = |ticks: u64| ticks as f64 / secs; // 100 ticks a second = 100 % of a core
    match cpu1.1.zip(cpu0.1) {
        Some((p1, p0)) => println!(
            "  cpu: this process (servers + clients) {:.0} %, PostgreSQL {:.0} % (100 % = one core)",
            core_pct(cpu1.0 - cpu0.0),
            // Backends that exit during the run take their ticks with them: a lower bound.
            core_pct(p1.saturating_sub(p0))
        ),
        None => println!(
            "  cpu: this process (server + clients) {:.0} % (100 % = one core)",
            core_pct(cpu1.0 - cpu0.0)
        ),
    }
    if let Some(w) = waits {
        let n = w.samples.max(1) as f64;
        // Writes take the lock one after another: its share of the run over the number of
        // write requests is how long each held it, on average.
        let writes: usize = [Op::Create, Op::Text, Op::Upload]
            .iter()
            .filter_map(|op| all.by_op.get(op))
            .map(|t| t.lat.len())
            .sum();
        if writes > 0 {
            println!(
                "  write lock: each of the {writes} write requests held it {:.2} ms on average",
                1e3 * secs * w.lock_held as f64 / n / writes as f64
            );
        }
        println!(
            "  PostgreSQL sessions of this database, {} samples of pg_stat_activity: write lock held in {:.0} % of them; sessions on average:",
            w.samples,
            100.0 * w.lock_held as f64 / n
        );
        let mut kinds: Vec<_> = w.by_kind.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (kind, count) in kinds {
            println!("    {:>6.2}  {kind}", count as f64 / n);
        }
    }
    println!("  load average after: {load_after}");

    for s in servers {
        s.stop().await;
    }
    Outcome {
        name: name.to_string(),
        rate: total.lat.len() as f64 / secs,
        p50: pct(&total.lat, 0.50),
        p99: pct(&total.lat, 0.99),
        errors: total.non_2xx + total.transport,
        feed_p99,
    }
}

fn main() {
    let mut args = <Args as clap::Parser>::parse();
    // At least one of each, as before.
    args.connections = args.connections.max(1);
    args.replicas = args.replicas.max(1);
    let Some(admin) = std::env::var(DATABASE_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!(
            "team_load: set {DATABASE_ENV} to a PostgreSQL server's URL, e.g.\n  \
             export {DATABASE_ENV}=$(scripts/pg-cluster start)   # a throw-away local cluster\n  \
             cargo bench -p opslens-api --bench team_load -- --seconds 30\n  \
             scripts/pg-cluster stop\nNothing was started."
        );
        return;
    };
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let dir = tempfile::tempdir().unwrap();
    // Servers, clients and PostgreSQL share the machine's cores.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "team_load: mix per connection of 2 creates, 2 text evidence, 1 screenshot upload, 2 incident reads, 2 lists, 1 image read in 10"
        );
        let mut outcomes = Vec::new();
        if args.replicas > 1 {
            let name = format!("PostgreSQL, {} replicas", args.replicas);
            outcomes.push(setup(&name, &dir.path().join("pg-n"), Some(&admin), args.replicas, &args).await);
        }
        outcomes.push(setup("PostgreSQL, 1 replica", &dir.path().join("pg-1"), Some(&admin), 1, &args).await);
        outcomes.push(setup("SQLite, single-user server", &dir.path().join("sqlite"), None, 1, &args).await);
        println!(
            "\n{:<28} {:>8} {:>8} {:>8} {:>7} {:>13}",
            "setup", "req/s", "p50 ms", "p99 ms", "errors", "feed p99 ms"
        );
        for o in outcomes {
            println!(
                "{:<28} {:>8.0} {:>8.2} {:>8.2} {:>7} {:>13}",
                o.name,
                o.rate,
                ms(o.p50),
                ms(o.p99),
                o.errors,
                o.feed_p99.map(|d| format!("{:.2}", ms(d))).unwrap_or_else(|| "-".into())
            );
        }
    });
}
