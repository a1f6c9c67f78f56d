//! The PostgreSQL backend (issue 17): the same store calls as the SQLite file, on a database
//! that several `opslens serve` replicas share.
//!
//! - Client: the blocking `postgres` crate (the tokio-postgres project's synchronous API). The
//!   store is called on blocking threads only (`Db::run` in the core), so a blocking client
//!   fits without driving futures from there; its per-connection runtime is tokio, already
//!   in the tree. No TLS to the database yet (`NoTls`): a team server reaches its database
//!   on a private network or the same host.
//! - Pool: a small bounded pool ([`Pool`]): idle connections are kept, a broken one is
//!   dropped and the next call connects anew, so the server reconnects by itself after a
//!   database restart.
//! - Writes: one transaction per store call, like one savepoint of the SQLite writer's batch.
//!   Each write first takes one transaction-scoped advisory lock, so writes are serialised
//!   across replicas exactly as SQLite's single writer serialises them (the store's
//!   check-then-insert logic was written for that). The queues (outbox, analysis jobs) are
//!   taken without it, with `FOR UPDATE SKIP LOCKED`.
//! - Change feed: a write's changes are sent with `pg_notify` inside its transaction (so
//!   they leave only if it commits) and handed to this process's feed right after the
//!   commit; a listener thread (`LISTEN opslens_events`) hands the other replicas' changes
//!   to the same feed.

mod analysis;
mod api;
mod evidence;
mod incidents;
mod integrations;
mod outbox;
mod people;
mod postmortem;
mod row;
mod search;
mod similar;
mod tokens;
mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use opslens_domain::{FeedChange, FeedKind, FeedOp, TimelineKind, Timestamp};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};

use crate::backend::PgApi;
use crate::blobs::Blobs;
use crate::objects::BlobConfig;
use crate::row::{now, ts};
use crate::tx::{Committed, Fact, Hooks};
use crate::{At, Change, FeedSink, Narrator, NewOutbox, Notifier, Result, StoreError};

/// Migrations in order; index + 1 is the version kept in `opslens_schema`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations_pg/0001_init.sql")];

/// The channel every replica's changes are announced on.
const CHANNEL: &str = "opslens_events";
/// Advisory lock keys: migrations (session-scoped) and writes (transaction-scoped).
const MIGRATE_LOCK: i64 = 0x4f50_4c45_0001;
const WRITE_LOCK: i64 = 0x4f50_4c45_0002;
/// Connections one process opens at most; callers beyond wait for one to come back.
const MAX_CONNECTIONS: usize = 16;
/// Idle connections kept between calls.
const IDLE_CONNECTIONS: usize = 8;
/// How long a call waits for a free connection before it fails (503) rather than hang.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening the store waits for the change feed listener's `LISTEN`.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// `pg_notify` payloads must stay under 8000 bytes; changes are sent in chunks of this many.
const CHANGES_PER_NOTIFY: usize = 100;
/// How long a statement waits for a lock (a table another session holds, the write lock of a
/// stuck replica) before it fails with 55P03, answered 503 with a retry hint: SQLite's busy
/// timeout, on the shared database.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run before the server cancels it (57014, also 503), so no
/// request hangs past a bound whatever the database is doing.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL store of a team server.
pub(crate) struct PgStore {
    /// Where the SQLite file would be: callers use its parent to name the images' disk.
    path: PathBuf,
    /// The image files: the data dir's `blobs/`, and the shared bucket when there is one.
    pub(crate) blobs: Blobs,
    pool: Arc<Pool>,
    hooks: Hooks,
    /// Held across "write file, commit row" and "delete rows, remove files" (as on SQLite).
    pub(crate) blob_lock: Mutex<()>,
    /// This process's name on the channel, so it skips its own announcements.
    replica: String,
    /// Tells the listener thread to stop when the store goes.
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("host", &self.pool.host)
            .field("replica", &self.replica)
            .finish()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `host:port` (or the socket dir) of a connection config, for messages.
fn host_of(cfg: &Config) -> String {
    use postgres::config::Host;
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// Connections to the database, bounded, reused, and replaced when broken.
pub(crate) struct Pool {
    config: Config,
    host: String,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Client>,
    open: usize,
}

/// A connection taken from the [`Pool`]; goes back when dropped unless it broke.
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut st = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.client.take() {
            Some(c) if !c.is_closed() && st.idle.len() < IDLE_CONNECTIONS => st.idle.push(c),
            _ => st.open -= 1,
        }
        drop(st);
        self.pool.freed.notify_one();
    }
}

impl Drop for Pool {
    /// Closes the idle connections on a thread of their own: closing one blocks on the
    /// client's runtime, which panics when the store is dropped inside an async task (a
    /// worker process shutting down).
    fn drop(&mut self) {
        let idle =
            std::mem::take(&mut self.state.get_mut().unwrap_or_else(|p| p.into_inner()).idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Pool {
    fn new(config: Config) -> Self {
        Pool {
            host: host_of(&config),
            config,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A connection: an idle one, a new one while under the bound, else the next one freed.
    fn get(&self) -> Result<Pooled<'_>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(c) = st.idle.pop() {
                if !c.is_closed() {
                    return Ok(Pooled {
                        pool: self,
                        client: Some(c),
                    });
                }
                st.open -= 1;
            }
            if st.open < MAX_CONNECTIONS {
                st.open += 1;
                drop(st);
                return match self.connect() {
                    Ok(c) => Ok(Pooled {
                        pool: self,
                        client: Some(c),
                    }),
                    Err(e) => {
                        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        st.open -= 1;
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self
                .freed
                .wait_timeout(st, POOL_WAIT)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            if timeout.timed_out() && st.idle.is_empty() && st.open >= MAX_CONNECTIONS {
                return Err(StoreError::Unavailable(format!(
                    "no free connection to PostgreSQL at {} within {}s",
                    self.host,
                    POOL_WAIT.as_secs()
                )));
            }
        }
    }

    fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {}",
                self.host,
                error_text(&e)
            ))
        })
    }
}

/// A driver error as one line: the server's message when it sent one, else the cause (the
/// `postgres` crate's own text is often just "error connecting to server").
pub(crate) fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Parses and checks a database URL without touching the data dir: the first thing `opslens
/// serve --database` does, so a wrong or unreachable URL is one clear line at start.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let config = parse_config(url).map_err(|e| e.to_string())?;
    let pool = Pool::new(config);
    let mut c = pool.get().map_err(|e| e.to_string())?;
    c.simple_query("SELECT 1")
        .map_err(|e| format!("PostgreSQL at {}: {}", pool.host, error_text(&e)))?;
    Ok(())
}

/// Where a database URL points, for messages: `host:port/dbname`, never the password.
pub fn describe_url(url: &str) -> String {
    match url.parse::<Config>() {
        Ok(cfg) => format!("{}/{}", host_of(&cfg), cfg.get_dbname().unwrap_or("")),
        Err(_) => "an unparsable URL".into(),
    }
}

fn parse_config(url: &str) -> Result<Config> {
    let mut config: Config = url.parse().map_err(|e: postgres::Error| {
        StoreError::Unavailable(format!("invalid database URL: {}", error_text(&e)))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("opslens");
    }
    // Ours first: a `-c` the URL's own `options` sets again wins.
    let bounds = format!(
        "-c lock_timeout={} -c statement_timeout={}",
        LOCK_TIMEOUT.as_millis(),
        STATEMENT_TIMEOUT.as_millis()
    );
    let options = match config.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{bounds} {o}"),
        _ => bounds,
    };
    config.options(&options);
    Ok(config)
}

impl PgStore {
    /// Connects to `url`, migrates forward, and keeps images in `data_dir/blobs`.
    pub(crate) fn open(url: &str, data_dir: &Path, blobs: &BlobConfig) -> Result<Self> {
        let pool = Arc::new(Pool::new(parse_config(url)?));
        std::fs::create_dir_all(data_dir)?;
        let blobs = Blobs::open(data_dir, blobs)?;
        {
            let mut c = pool.get()?;
            migrate(&mut c)?;
        }
        tracing::info!(host = %pool.host, "PostgreSQL database opened");
        let mut id = [0u8; 8];
        getrandom_fill(&mut id);
        Ok(PgStore {
            path: data_dir.join("opslens.db"),
            blobs,
            pool,
            hooks: Hooks::default(),
            blob_lock: Mutex::new(()),
            replica: hex::encode(id),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn blob_dir(&self) -> &Path {
        self.blobs.dir()
    }

    /// Sets the feed and starts the thread that hears the other replicas' changes.
    pub(crate) fn set_feed(&mut self, sink: Arc<dyn FeedSink>) {
        self.hooks.feed = Some(sink.clone());
        let pool = self.pool.clone();
        let stop = self.stop.clone();
        let me = self.replica.clone();
        let (ready, listening) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen(&pool, &stop, &me, sink.as_ref(), ready));
        match spawned {
            // The server announces `ready` on its feed once started: from then on no other
            // replica's change may be missed, so wait (bounded) until LISTEN is in place.
            Ok(_) => {
                if listening.recv_timeout(LISTEN_WAIT).is_err() {
                    tracing::warn!("the change feed listener is not listening yet; carrying on");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the PostgreSQL listener"),
        }
    }

    pub(crate) fn set_notifier(&mut self, notifier: Arc<dyn Notifier>) {
        self.hooks.notifier = Some(notifier);
    }

    pub(crate) fn set_narrator(&mut self, narrator: Arc<dyn Narrator>) {
        self.hooks.narrator = Some(narrator);
    }

    /// Runs `f` on a pooled connection (reads; no transaction unless `f` opens one).
    pub(crate) fn read<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T> + Send,
    ) -> Result<T> {
        off_async(|| {
            let mut c = self.pool.get()?;
            f(&mut c)
        })
    }

    /// Runs `f` as one write transaction, serialised with every other write of every replica;
    /// after the commit its changes go to the feed (and, through `pg_notify` sent inside the
    /// transaction, to the other replicas) and the outbox worker is woken if it queued rows.
    pub(crate) fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T> + Send,
    ) -> Result<T> {
        off_async(|| self.write_here(f))
    }

    /// [`PgStore::write`] without the write lock: for the queues, whose rows are taken with
    /// `FOR UPDATE SKIP LOCKED` so that replicas work on different rows at once.
    pub(crate) fn write_queue<T: Send>(
        &self,
        f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T> + Send,
    ) -> Result<T> {
        off_async(|| self.write_in(false, f))
    }

    fn write_here<T>(&self, f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T>) -> Result<T> {
        self.write_in(true, f)
    }

    fn write_in<T>(
        &self,
        serialised: bool,
        f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        let mut c = self.pool.get()?;
        let mut t = c.transaction()?;
        if serialised {
            t.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        }
        let mut tx = PgTx {
            c: t,
            hooks: &self.hooks,
            changes: Vec::new(),
            queued: false,
            author: crate::tx::request_author(),
        };
        let value = f(&mut tx)?;
        let PgTx {
            c: mut t,
            changes,
            queued,
            ..
        } = tx;
        let mut seen = std::collections::HashSet::with_capacity(changes.len());
        let changes: Vec<FeedChange> = changes.into_iter().filter(|c| seen.insert(*c)).collect();
        for chunk in changes.chunks(CHANGES_PER_NOTIFY) {
            let payload = encode_changes(&self.replica, chunk);
            t.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
        }
        t.commit()?;
        self.hooks.committed(Committed {
            changes,
            queued_outbox: queued,
        });
        Ok(value)
    }
}

/// Runs `f` here when this is a blocking thread of the core ([`crate::with_author`]), else
/// on a short-lived thread of its own (with the same author): the blocking client must not
/// run inside an async task (a store call made straight from async code, as at start-up).
fn off_async<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    if crate::tx::on_blocking_call() {
        return f();
    }
    let author = crate::tx::request_author();
    std::thread::scope(|s| {
        s.spawn(move || crate::with_author(author.as_deref(), f))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Fills `buf` with random bytes (the replica's name); a clock-based fallback keeps it unique
/// enough where the OS source fails.
fn getrandom_fill(buf: &mut [u8]) {
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, buf))
        .is_err()
    {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n >> (8 * (i % 16))) as u8;
        }
    }
}

/// `{"r": replica, "c": [[kind, op, incident_id, id], …]}`.
fn encode_changes(replica: &str, changes: &[FeedChange]) -> String {
    let list: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| serde_json::json!([c.kind, c.op, c.incident_id, c.id]))
        .collect();
    serde_json::json!({"r": replica, "c": list}).to_string()
}

/// The changes of another replica's announcement; `None` for this replica's own (already
/// handed on after its commit) or one that does not parse.
fn decode_changes(me: &str, payload: &str) -> Option<Vec<FeedChange>> {
    #[derive(serde::Deserialize)]
    struct Msg {
        r: String,
        c: Vec<(FeedKind, FeedOp, i64, i64)>,
    }
    let m: Msg = serde_json::from_str(payload).ok()?;
    if m.r == me {
        return None;
    }
    Some(
        m.c.into_iter()
            .map(|(kind, op, incident_id, id)| FeedChange {
                kind,
                op,
                incident_id,
                id,
            })
            .collect(),
    )
}

/// At most this many notifications are handed to the feed together (the rest wait for the
/// next turn of the listener, a moment later).
const LISTEN_BATCH: usize = 256;

/// The listener thread: `LISTEN` on a connection of its own, hands every other replica's
/// changes to `sink`, reconnects (with a pause) when the connection breaks, until `stop`.
fn listen(
    pool: &Pool,
    stop: &AtomicBool,
    me: &str,
    sink: &dyn FeedSink,
    ready: std::sync::mpsc::Sender<()>,
) {
    let mut pause = Duration::from_millis(200);
    while !stop.load(Ordering::SeqCst) {
        let mut client = match pool.connect() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "change feed listener cannot connect; retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!(error = %error_text(&e), "LISTEN failed; retrying");
            std::thread::sleep(pause);
            continue;
        }
        pause = Duration::from_millis(200);
        let _ = ready.send(());
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let mut heard = Vec::new();
            // Wait (up to 500 ms, so `stop` is seen) for one notification, take at most a
            // batch of those already here without waiting, and hand them on at once. Not
            // "collect until a quiet gap": under steady load another one always comes within
            // the wait, which held every other replica's change back until the load paused
            // (seconds; found by crates/api/benches/team_load.rs).
            let outcome = {
                let mut n = client.notifications();
                let first = n
                    .timeout_iter(Duration::from_millis(500))
                    .next()
                    .map(|note| note.map(|note| note.payload().to_string()));
                match first {
                    Ok(Some(payload)) => {
                        heard.push(payload);
                        let mut ready_now = n.iter();
                        loop {
                            if heard.len() >= LISTEN_BATCH {
                                break Ok(());
                            }
                            match ready_now.next() {
                                Ok(Some(note)) => heard.push(note.payload().to_string()),
                                Ok(None) => break Ok(()),
                                Err(e) => break Err(e),
                            }
                        }
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            for p in heard {
                if let Some(changes) = decode_changes(me, &p) {
                    if !changes.is_empty() {
                        sink.committed(changes);
                    }
                }
            }
            if let Err(e) = outcome {
                tracing::warn!(error = %error_text(&e), "change feed listener lost its connection");
                break;
            }
            if client.is_closed() {
                break;
            }
        }
    }
}

fn migrate(c: &mut Client) -> Result<()> {
    // A replica starting beside one that migrates waits for it, and a long migration runs to
    // its end: neither is a request to bound. Back to the pool's bounds afterwards.
    c.batch_execute("SET lock_timeout = 0; SET statement_timeout = 0")?;
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])?;
    let out = migrate_locked(c);
    let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]);
    let reset = c.batch_execute("RESET lock_timeout; RESET statement_timeout");
    out?;
    unlocked?;
    reset?;
    Ok(())
}

fn migrate_locked(c: &mut Client) -> Result<()> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS opslens_schema (
             one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
             version BIGINT NOT NULL
         )",
    )?;
    let found: i64 = c
        .query_opt("SELECT version FROM opslens_schema", &[])?
        .map(|r| r.get(0))
        .unwrap_or(0);
    let found = found as usize;
    if found > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let mut t = c.transaction()?;
        t.batch_execute(sql)?;
        let v = (i + 1) as i64;
        t.execute(
            "INSERT INTO opslens_schema(one, version) VALUES (TRUE, $1)
             ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
            &[&v],
        )?;
        t.commit()?;
        tracing::info!(version = i + 1, "PostgreSQL database migrated");
    }
    Ok(())
}

/// One write on PostgreSQL: its transaction and the list of what it changed, the
/// counterpart of [`crate::tx::WriteTx`].
pub(crate) struct PgTx<'c, 'h> {
    pub(crate) c: postgres::Transaction<'c>,
    hooks: &'h Hooks,
    changes: Vec<FeedChange>,
    queued: bool,
    author: Option<String>,
}

impl PgTx<'_, '_> {
    /// Records that this transaction touched an object.
    pub(crate) fn touched(&mut self, kind: FeedKind, op: FeedOp, incident_id: i64, id: i64) {
        self.changes.push(FeedChange {
            kind,
            op,
            incident_id,
            id,
        });
    }

    /// Wakes the outbox sender after the commit (a row was put back in the queue).
    pub(crate) fn queued_outbox(&mut self) {
        self.queued = true;
    }

    /// Records an evidence row as updated, looking up its incident.
    pub(crate) fn evidence_updated(&mut self, evidence_id: i64) -> Result<()> {
        let incident: Option<i64> = self
            .c
            .query_opt(
                "SELECT incident_id FROM evidence WHERE id = $1",
                &[&evidence_id],
            )?
            .map(|r| r.get(0));
        if let Some(incident_id) = incident {
            self.touched(
                FeedKind::Evidence,
                FeedOp::Updated,
                incident_id,
                evidence_id,
            );
        }
        Ok(())
    }

    /// Who this write's rows are by (see [`crate::tx::WriteTx::author`]).
    pub(crate) fn author(&self) -> Option<String> {
        self.author.clone()
    }

    /// Names who the timeline entries written from now on in this write are by.
    pub(crate) fn as_author(&mut self, who: &str) {
        self.author = Some(who.to_string());
    }

    /// Adds a timeline event at `at`.
    pub(crate) fn add_event_at(
        &mut self,
        incident_id: i64,
        kind: TimelineKind,
        message: &str,
        at: At,
        evidence_id: Option<i64>,
    ) -> Result<i64> {
        let author = self.author.clone();
        let row = self.c.query_one(
            "INSERT INTO timeline_event(incident_id, kind, message, occurred_at, occurred_at_source,
                                        created_at, evidence_id, author)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &incident_id,
                &kind.as_str(),
                &message,
                &ts(&at.time),
                &at.source.as_str(),
                &ts(&now()),
                &evidence_id,
                &author,
            ],
        )?;
        let id: i64 = row.get(0);
        self.touched(FeedKind::Timeline, FeedOp::Created, incident_id, id);
        Ok(id)
    }

    /// Records a fact that happened at `at` (see [`crate::tx::WriteTx::record`]).
    pub(crate) fn record(&mut self, at: &Timestamp, fact: Fact) -> Result<()> {
        self.record_at(At::recorded(*at), fact)
    }

    /// [`PgTx::record`] at a time with its source.
    pub(crate) fn record_at(&mut self, at: At, fact: Fact) -> Result<()> {
        let Some(narrator) = self.hooks.narrator.clone() else {
            return Ok(());
        };
        let n = narrator.narrate(&fact);
        let incident_id = fact.incident_id();
        for line in &n.timeline {
            self.add_event_at(incident_id, line.kind, &line.message, at, line.evidence_id)?;
        }
        let (Some((kind, text, data)), Some(notifier)) = (n.announce, self.hooks.notifier.clone())
        else {
            return Ok(());
        };
        if !notifier.wants() {
            return Ok(());
        }
        let change = Change {
            kind,
            incident: row::incident_in(&mut self.c, incident_id)?,
            text,
            data,
        };
        let rows = notifier.rows(&change);
        let t = ts(&now());
        for r in &rows {
            self.queue_outbox(r, &t)?;
        }
        Ok(())
    }

    /// Queues one outgoing message, due at `t`; returns its id.
    pub(crate) fn queue_outbox(&mut self, n: &NewOutbox, t: &str) -> Result<i64> {
        let payload = n.payload.to_string();
        let row = self.c.query_one(
            "INSERT INTO outbox(message_id, target, event_type, incident_id, payload, status,
                                next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6) RETURNING id",
            &[
                &n.message_id,
                &n.target,
                &n.event_type,
                &n.incident_id,
                &payload,
                &t,
            ],
        )?;
        self.queued = true;
        Ok(row.get(0))
    }
}
