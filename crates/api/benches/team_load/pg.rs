//! The PostgreSQL side of the team benchmark: a fresh database per setup, and what the
//! server is doing while the mix runs (its CPU, its sessions and who holds the write lock).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::DATABASE_ENV;

/// A fresh database on the server of `admin`; its URL.
pub(crate) fn create_database(admin: &str, name: &str) -> String {
    let (admin2, create) = (admin.to_string(), name.to_string());
    // The blocking client must not run inside an async task: a thread of its own.
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin2, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{DATABASE_ENV} {admin2}: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    with_database(admin, name)
}

/// `url` with its database (the path) replaced by `name`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// CPU ticks (1/100 s) used so far by this process and by the PostgreSQL cluster of `url`
/// (its postmaster and the postmaster's children). `None` for PostgreSQL where its data
/// directory cannot be read (another machine, another user).
pub(crate) fn cpu_ticks(postmaster: Option<u32>) -> (u64, Option<u64>) {
    fn stat(pid: &str) -> Option<(u32, u64)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the ")" that ends the command name: state ppid … utime(14) stime(15).
        let rest: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
        let ppid = rest.get(1)?.parse().ok()?;
        let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        Some((ppid, ticks))
    }
    let me = stat("self").map(|s| s.1).unwrap_or(0);
    let pg = postmaster.map(|pm| {
        let mut sum = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some((ppid, ticks)) = stat(&name) {
                if ppid == pm || name == pm.to_string() {
                    sum += ticks;
                }
            }
        }
        sum
    });
    (me, pg)
}

/// The postmaster's pid, from `postmaster.pid` in the cluster's data directory.
pub(crate) fn postmaster_pid(c: &mut postgres::Client) -> Option<u32> {
    let dir: String = c
        .query_one("SELECT current_setting('data_directory')", &[])
        .ok()?
        .get(0);
    std::fs::read_to_string(Path::new(&dir).join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// What `pg_stat_activity` showed of this database's sessions, sampled every 20 ms.
#[derive(Default)]
pub(crate) struct Waits {
    pub(crate) samples: u64,
    /// Samples in which some session held the write lock.
    pub(crate) lock_held: u64,
    /// Sessions seen per category, summed over the samples.
    pub(crate) by_kind: HashMap<String, u64>,
}

/// Samples the sessions of database `url` until `stop` (the store's write lock is the
/// transaction advisory lock every write takes; see crates/store/src/pg/mod.rs).
pub(crate) fn sample_waits(url: String, stop: Arc<AtomicBool>) -> Waits {
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut w = Waits::default();
    while !stop.load(Ordering::Relaxed) {
        let rows = c
            .query(
                "SELECT a.state, coalesce(a.wait_event_type, ''), coalesce(a.wait_event, ''),
                        EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid
                                AND l.locktype = 'advisory' AND l.granted)
                 FROM pg_stat_activity a
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                   AND a.backend_type = 'client backend'",
                &[],
            )
            .unwrap();
        w.samples += 1;
        let mut held = false;
        for r in rows {
            let state: Option<String> = r.get(0);
            let state = state.unwrap_or_default();
            let (wt, we): (String, String) = (r.get(1), r.get(2));
            let holds: bool = r.get(3);
            held |= holds;
            let what = if we.is_empty() {
                "running".to_string()
            } else {
                format!("{wt}:{we}")
            };
            let kind = match (holds, state.as_str()) {
                (_, "idle") => "idle (in the pool)".to_string(),
                (true, s) => format!("holding the write lock, {s}, {what}"),
                (false, "active") if wt == "Lock" && we == "advisory" => {
                    "waiting for the write lock (Lock:advisory)".to_string()
                }
                (false, s) => format!("not holding it, {s}, {what}"),
            };
            *w.by_kind.entry(kind).or_default() += 1;
        }
        w.lock_held += held as u64;
        std::thread::sleep(Duration::from_millis(20));
    }
    w
}
