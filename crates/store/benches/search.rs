//! Search benchmark: seeds incidents and evidence (plus hypotheses, actions, notes, status
//! updates) into a real store and times a fixed mix of queries through `Store::search`.
//!
//! ```sh
//! cargo bench -p opslens-store --bench search -- --incidents 100000 --evidence 500000
//! cargo test --profile dev -p opslens-store --bench search -- --incidents 20000 --evidence 100000
//! # the same on PostgreSQL: an empty database (created by the caller), seeded the same way
//! cargo bench -p opslens-store --bench search -- --database postgres://…/searchbench
//! ```
//!
//! Seeding writes the rows with plain INSERTs on a second connection, in large transactions,
//! so the index is filled by the same triggers every store write fires (the path under test);
//! it skips the store's writer only to batch 10,000 rows per commit. `--db DIR` keeps the data
//! dir between runs (seeded once, reused when it already holds the asked-for counts).

use std::time::Instant;

use opslens_store::search::SearchRequest;
use opslens_store::Store;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible without a dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    /// Zipf-like pick: low indexes much more often.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

const SERVICES: &[&str] = &[
    "checkout-api",
    "payments",
    "search-svc",
    "cart",
    "auth",
    "inventory",
    "gateway",
    "db-1.prod.internal",
    "cache-2.prod.internal",
    "10.0.3.7",
    "10.0.4.12:6379",
];
const PHRASES: &[&str] = &[
    "connection pool exhausted",
    "HTTP 503 from upstream",
    "p99 latency spike after deploy",
    "timeout waiting for lock",
    "disk full on volume",
    "OOMKilled container restarted",
    "certificate expired",
    "rollback to previous version",
    "error rate above threshold",
    "queue backlog growing",
];

fn word(rng: &mut Rng) -> String {
    // A vocabulary of 30,000 made-up words, Zipf-distributed: a few common, most rare.
    let i = rng.zipf(30_000);
    format!("w{i}")
}

fn text(rng: &mut Rng, words: usize) -> String {
    let mut out = Vec::with_capacity(words + 8);
    let mut n = 0;
    while n < words {
        let r = rng.below(100);
        if r < 8 {
            out.push(PHRASES[rng.below(PHRASES.len())].to_string());
            n += 4;
        } else if r < 14 {
            out.push(SERVICES[rng.below(SERVICES.len())].to_string());
            n += 1;
        } else if r < 16 {
            out.push(format!("v2.{}.{}", rng.below(60), rng.below(10)));
            n += 1;
        } else if r < 18 {
            out.push(format!(
                "{:02}:{:02}:{:02}",
                rng.below(24),
                rng.below(60),
                rng.below(60)
            ));
            n += 1;
        } else if r < 20 {
            out.push("error:".into());
            n += 1;
        } else {
            out.push(word(rng));
            n += 1;
        }
    }
    out.join(" ")
}

fn ts(secs: i64) -> String {
    let t = chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn seed(dir: &std::path::Path, incidents: usize, evidence: usize) {
    let store = Store::open(dir).expect("open store");
    drop(store);
    let mut c = rusqlite::Connection::open(dir.join("opslens.db")).expect("open db");
    c.pragma_update(None, "synchronous", "OFF").ok();
    let have: i64 = c
        .query_row("SELECT count(*) FROM incident", [], |r| r.get(0))
        .unwrap_or(0);
    let have_ev: i64 = c
        .query_row("SELECT count(*) FROM evidence", [], |r| r.get(0))
        .unwrap_or(0);
    if have as usize == incidents && have_ev as usize == evidence {
        eprintln!(
            "reusing {incidents} incidents, {evidence} evidence in {}",
            dir.display()
        );
        return;
    }
    assert!(
        have == 0,
        "{} holds other data; give an empty --db",
        dir.display()
    );
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let per = evidence.div_ceil(incidents.max(1));
    let statuses = [
        "triggered",
        "acknowledged",
        "mitigated",
        "resolved",
        "resolved",
        "closed",
    ];
    let severities = ["critical", "high", "medium", "low"];
    let mut ev_left = evidence;
    let batch = 2_000;
    for chunk in 0..incidents.div_ceil(batch) {
        let tx = c.transaction().expect("tx");
        {
            let mut inc = tx
                .prepare_cached(
                    "INSERT INTO incident(title, description, severity, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )
                .expect("prepare");
            let mut ev = tx
                .prepare_cached(
                    "INSERT INTO evidence(incident_id, evidence_type, title, content, sha256, created_at, updated_at)
                     VALUES (?1, 'log', ?2, ?3, 'x', ?4, ?4)",
                )
                .expect("prepare");
            let mut hyp = tx
                .prepare_cached(
                    "INSERT INTO hypothesis(incident_id, statement, status, origin, created_at, updated_at)
                     VALUES (?1, ?2, 'proposed', 'manual', ?3, ?3)",
                )
                .expect("prepare");
            let mut note = tx
                .prepare_cached(
                    "INSERT INTO timeline_event(incident_id, kind, message, occurred_at, created_at)
                     VALUES (?1, 'note', ?2, ?3, ?3)",
                )
                .expect("prepare");
            for i in chunk * batch..((chunk + 1) * batch).min(incidents) {
                let at = (i as i64) * 600;
                inc.execute(rusqlite::params![
                    text(&mut rng, 6),
                    text(&mut rng, 25),
                    severities[rng.below(4)],
                    statuses[rng.below(statuses.len())],
                    ts(at)
                ])
                .expect("incident");
                let id = tx.last_insert_rowid();
                let n = per.min(ev_left);
                ev_left -= n;
                for k in 0..n {
                    ev.execute(rusqlite::params![
                        id,
                        text(&mut rng, 4),
                        text(&mut rng, 40),
                        ts(at + 10 + k as i64)
                    ])
                    .expect("evidence");
                }
                if rng.chance(0.3) {
                    hyp.execute(rusqlite::params![id, text(&mut rng, 10), ts(at + 60)])
                        .expect("hypothesis");
                }
                if rng.chance(0.3) {
                    note.execute(rusqlite::params![id, text(&mut rng, 15), ts(at + 90)])
                        .expect("note");
                }
            }
        }
        tx.commit().expect("commit");
        if chunk % 10 == 0 {
            eprintln!(
                "seeded {} incidents in {:.0?}",
                ((chunk + 1) * batch).min(incidents),
                started.elapsed()
            );
        }
    }
    // What a long-running install has after its automatic merges.
    c.execute_batch("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
        .expect("optimize");
    eprintln!("seeded in {:.1?}", started.elapsed());
}

/// [`seed`] on PostgreSQL: the same rows from the same generator, by plain INSERTs in
/// 2,000-incident transactions, so the search triggers index them as every write does.
fn seed_pg(url: &str, incidents: usize, evidence: usize) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let have: i64 = c
        .query_one("SELECT count(*) FROM incident", &[])
        .map(|r| r.get(0))
        .unwrap_or(0);
    let have_ev: i64 = c
        .query_one("SELECT count(*) FROM evidence", &[])
        .map(|r| r.get(0))
        .unwrap_or(0);
    if have as usize == incidents && have_ev as usize == evidence {
        eprintln!("reusing {incidents} incidents, {evidence} evidence in {url}");
        return;
    }
    assert!(have == 0, "{url} holds other data; give an empty database");
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let per = evidence.div_ceil(incidents.max(1));
    let statuses = [
        "triggered",
        "acknowledged",
        "mitigated",
        "resolved",
        "resolved",
        "closed",
    ];
    let severities = ["critical", "high", "medium", "low"];
    let mut ev_left = evidence;
    let batch = 2_000;
    for chunk in 0..incidents.div_ceil(batch) {
        let mut tx = c.transaction().expect("tx");
        tx.batch_execute("SET LOCAL synchronous_commit = off").ok();
        let inc = tx
            .prepare(
                "INSERT INTO incident(title, description, severity, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .expect("prepare");
        let ev = tx
            .prepare(
                "INSERT INTO evidence(incident_id, evidence_type, title, content, sha256, created_at, updated_at)
                 VALUES ($1, 'log', $2, $3, 'x', $4, $4)",
            )
            .expect("prepare");
        let hyp = tx
            .prepare(
                "INSERT INTO hypothesis(incident_id, statement, status, origin, created_at, updated_at)
                 VALUES ($1, $2, 'proposed', 'manual', $3, $3)",
            )
            .expect("prepare");
        let note = tx
            .prepare(
                "INSERT INTO timeline_event(incident_id, kind, message, occurred_at, created_at)
                 VALUES ($1, 'note', $2, $3, $3)",
            )
            .expect("prepare");
        for i in chunk * batch..((chunk + 1) * batch).min(incidents) {
            let at = (i as i64) * 600;
            let id: i64 = tx
                .query_one(
                    &inc,
                    &[
                        &text(&mut rng, 6),
                        &text(&mut rng, 25),
                        &severities[rng.below(4)],
                        &statuses[rng.below(statuses.len())],
                        &ts(at),
                    ],
                )
                .expect("incident")
                .get(0);
            let n = per.min(ev_left);
            ev_left -= n;
            for k in 0..n {
                tx.execute(
                    &ev,
                    &[
                        &id,
                        &text(&mut rng, 4),
                        &text(&mut rng, 40),
                        &ts(at + 10 + k as i64),
                    ],
                )
                .expect("evidence");
            }
            if rng.chance(0.3) {
                tx.execute(&hyp, &[&id, &text(&mut rng, 10), &ts(at + 60)])
                    .expect("hypothesis");
            }
            if rng.chance(0.3) {
                tx.execute(&note, &[&id, &text(&mut rng, 15), &ts(at + 90)])
                    .expect("note");
            }
        }
        tx.commit().expect("commit");
        if chunk % 10 == 0 {
            eprintln!(
                "seeded {} incidents in {:.0?}",
                ((chunk + 1) * batch).min(incidents),
                started.elapsed()
            );
        }
    }
    c.batch_execute("VACUUM ANALYZE").expect("vacuum");
    eprintln!("seeded in {:.1?}", started.elapsed());
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut incidents = 100_000usize;
    let mut evidence = 500_000usize;
    let mut rounds = 30usize;
    let mut db: Option<std::path::PathBuf> = None;
    let mut database: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--incidents" => {
                incidents = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(incidents)
            }
            "--evidence" => evidence = args.next().and_then(|v| v.parse().ok()).unwrap_or(evidence),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--db" => db = args.next().map(Into::into),
            "--database" => database = args.next(),
            _ => {} // `--bench` and libtest flags cargo passes
        }
    }
    let tmp;
    let dir = match db {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let (store, docs) = match &database {
        Some(url) => {
            opslens_store::use_database_for(&dir, url);
            // Opening the store creates the schema.
            drop(Store::open(&dir).expect("open store"));
            seed_pg(url, incidents, evidence);
            let store = Store::open(&dir).expect("open store");
            let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
            let docs: i64 = c
                .query_one("SELECT count(*) FROM search_doc", &[])
                .map(|r| r.get(0))
                .unwrap_or(0);
            (store, docs)
        }
        None => {
            seed(&dir, incidents, evidence);
            let store = Store::open(&dir).expect("open store");
            let c = rusqlite::Connection::open(dir.join("opslens.db")).expect("db");
            let docs: i64 = c
                .query_row("SELECT count(*) FROM search_doc", [], |r| r.get(0))
                .unwrap_or(0);
            (store, docs)
        }
    };
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("search benchmark ({backend}): {incidents} incidents, {evidence} evidence, {docs} indexed entries, {rounds} rounds per query");

    type Mk = fn(usize) -> SearchRequest;
    let mix: Vec<(&str, Mk)> = vec![
        ("rare word", |i| SearchRequest {
            q: format!("w{}", 20_000 + i * 37),
            limit: 50,
            ..Default::default()
        }),
        ("common word (error)", |_| SearchRequest {
            q: "error".into(),
            limit: 50,
            ..Default::default()
        }),
        ("two common words", |i| SearchRequest {
            q: ["error timeout", "connection pool", "latency deploy"][i % 3].into(),
            limit: 50,
            ..Default::default()
        }),
        ("prefix", |i| SearchRequest {
            q: ["w1*", "time*", "check*", "w2*", "exhaust*"][i % 5].into(),
            limit: 50,
            ..Default::default()
        }),
        ("short prefix (many words)", |i| SearchRequest {
            q: ["che*", "chec*", "err*", "ti*", "conn*", "w12*"][i % 6].into(),
            limit: 50,
            ..Default::default()
        }),
        ("phrase", |i| SearchRequest {
            q: [
                "\"HTTP 503\"",
                "\"connection pool exhausted\"",
                "\"rollback to previous\"",
            ][i % 3]
                .into(),
            limit: 50,
            ..Default::default()
        }),
        ("token (version, host)", |i| SearchRequest {
            q: [
                format!("v2.{}.{}", i % 60, i % 10),
                "db-1.prod.internal".into(),
                "10.0.3.7".into(),
            ][i % 3]
                .clone(),
            limit: 50,
            ..Default::default()
        }),
        ("filtered (status, severity)", |i| SearchRequest {
            q: ["error", "w7", "checkout-api"][i % 3].into(),
            status: Some(["resolved", "triggered", "closed"][i % 3].parse().unwrap()),
            severity: Some(["critical", "low"][i % 2].parse().unwrap()),
            limit: 50,
            ..Default::default()
        }),
        ("filtered (kind)", |i| SearchRequest {
            q: ["error", "w3", "latency"][i % 3].into(),
            kinds: vec![["hypothesis", "note", "incident"][i % 3].parse().unwrap()],
            limit: 50,
            ..Default::default()
        }),
    ];
    println!("| query | p50 ms | p95 ms | p99 ms | max ms | hits (last) | ranked (last) |");
    println!("|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for (name, make) in &mix {
        // One warm-up round, as a running server has its pages cached.
        let _ = store.search(&make(0));
        let mut times = Vec::with_capacity(rounds);
        let mut last = (0, 0);
        for i in 0..rounds {
            let r = make(i);
            let t = Instant::now();
            let res = store.search(&r).expect("search");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            last = (res.hits.len(), res.ranked);
        }
        all.extend_from_slice(&times);
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            pct(&times, 0.5),
            pct(&times, 0.95),
            pct(&times, 0.99),
            times.last().copied().unwrap_or(0.0),
            last.0,
            last.1
        );
    }
    all.sort_by(f64::total_cmp);
    println!(
        "| **all** | {:.2} | {:.2} | {:.2} | {:.2} | | |",
        pct(&all, 0.5),
        pct(&all, 0.95),
        pct(&all, 0.99),
        all.last().copied().unwrap_or(0.0)
    );
}
