//! The desktop app pointed at a team server (`OPSLENS_SERVER_URL` + `OPSLENS_SERVER_TOKEN`):
//! captures are still grabbed here, then filed on the team server. Every capture is first
//! written to a spool folder in the data dir and fsynced — only then is it acknowledged to the
//! user — and one uploader sends the spool in capture order, each with its own idempotency
//! key, deleting an entry only once the server has answered with its evidence. So a server
//! that is down, a lost answer or a laptop that dies mid-upload loses nothing and files
//! nothing twice (a repeat of a key returns the first row). Where the local model is present,
//! the uploader reads the capture with it first and sends the findings with the picture;
//! otherwise the team's workers analyse it. Nothing but the picture the user filed, its
//! findings and the names of this machine and model leaves the laptop.
//!
//! A spool entry is `SEQ-KEY.png` (the image), `SEQ-KEY.json` (its [`SpoolMeta`], written
//! last: the entry exists once it does) and, once analysed here, `SEQ-KEY.analysis.json`
//! (the findings, or `null` when no local model could read it). `SEQ` orders the entries.
//! Entries the server refuses for good (a 4xx other than auth, rate and a missing route) move
//! to `failed/` with the server's answer beside them, and are counted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use opslens_domain::{CaptureTarget, Evidence, ScreenSource, Shot};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use utoipa::ToSchema;

use crate::analysis::AnalysisService;
use crate::capture::CaptureFailure;
use crate::filing::MadeElsewhere;
use crate::CoreError;

/// Name of the spool folder in the data dir.
pub const SPOOL_DIR: &str = "team-spool";
/// Longest wait between two tries while the server is unreachable.
const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
/// First wait after a failed try.
const RETRY_MIN: Duration = Duration::from_millis(100);

/// Where the team server is and how to reach it.
#[derive(Clone)]
pub struct TeamConfig {
    /// Origin of the team server (`https://opslens.example.com:8443`), no trailing slash.
    pub url: String,
    /// The person's token on it.
    pub token: String,
    /// The spool folder (`DATA_DIR/team-spool`).
    pub spool_dir: PathBuf,
    /// Longest wait between tries while the server is unreachable (30 s; tests shorten it).
    pub retry_max: Duration,
}

impl std::fmt::Debug for TeamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamConfig")
            .field("url", &self.url)
            .field("token", &"***")
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}

impl TeamConfig {
    /// Checks `url` (an `http(s)://host[:port]` origin; a trailing `/` or `/api/v1` is
    /// dropped) and `token`, spooling under `data_dir`.
    pub fn new(url: &str, token: &str, data_dir: &Path) -> Result<TeamConfig, CoreError> {
        let url = normalise_url(url)?;
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CoreError::Invalid(
                "the team server token must be non-empty visible ASCII (OPSLENS_SERVER_TOKEN)"
                    .into(),
            ));
        }
        Ok(TeamConfig {
            url,
            token: token.to_string(),
            spool_dir: data_dir.join(SPOOL_DIR),
            retry_max: DEFAULT_RETRY_MAX,
        })
    }
}

/// The origin of a team server URL as given by a person: scheme, host and port only.
pub fn normalise_url(url: &str) -> Result<String, CoreError> {
    let bad = |why: &str| {
        CoreError::Invalid(format!(
            "team server URL {url:?}: {why} (e.g. https://opslens.example.com:8443)"
        ))
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("use http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("put the token in OPSLENS_SERVER_TOKEN, not in the URL"));
    }
    let path = parsed.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/api/v1") || parsed.query().is_some() {
        return Err(bad("give the server's address only"));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Where the link to the team server stands, for the tray, the window title and `GET /team`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct TeamStatus {
    /// Whether this app files its captures on a team server.
    pub configured: bool,
    /// The team server's origin.
    pub server_url: Option<String>,
    /// Captures spooled here, not yet on the team server.
    pub waiting: usize,
    /// Whether the last try reached the server (`null` before the first).
    pub reachable: Option<bool>,
    /// Why the last try failed, in the server's or the network's words.
    pub last_error: Option<String>,
    /// Captures uploaded since the app started.
    pub uploaded: u64,
    /// Captures the server refused for good, kept in the spool's `failed/` folder.
    pub failed: usize,
    /// The last capture uploaded.
    pub last: Option<UploadedCapture>,
    /// Whether captures are analysed here before they are sent (the local model is present).
    pub local_analysis: bool,
}

/// A capture that reached the team server.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UploadedCapture {
    /// Its idempotency key.
    pub capture_id: String,
    /// The evidence on the team server.
    pub evidence_id: i64,
    /// The incident it went to there.
    pub incident_id: i64,
    /// Whether findings made here went with it.
    pub with_findings: bool,
}

/// A capture accepted into the spool (the answer of `POST /capture` on a laptop pointed at a
/// team server): on disk, to be uploaded in order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueuedCapture {
    /// Its idempotency key on the team server.
    pub capture_id: String,
    /// The incident named, if any (else the team server chooses, as for a capture there).
    pub incident_id: Option<i64>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Captures waiting to be uploaded, this one included.
    pub waiting: usize,
    /// The team server it goes to.
    pub server_url: String,
}

/// What a spool entry records beside its image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpoolMeta {
    key: String,
    incident_id: Option<i64>,
    captured_at: DateTime<Utc>,
    label: String,
    width: u32,
    height: u32,
}

/// One spool entry, by its file stem `SEQ-KEY`.
#[derive(Debug, Clone)]
struct Entry {
    stem: String,
}

/// How one upload ended.
enum Sent {
    /// On the server: the evidence id and its incident.
    Done { id: i64, incident_id: i64 },
    /// Try again later (unreachable, 5xx, 429, token refused): nothing is lost.
    Retry(String),
    /// The server will never take it (bad image, unknown incident): set aside.
    Refused(String),
}

/// The spool and its uploader.
pub struct Uplink {
    cfg: TeamConfig,
    http: reqwest::Client,
    wake: Arc<Notify>,
    /// Next sequence number, held across each spool write: an entry is on disk before the
    /// next one is numbered, so the uploader never sees a later capture before an earlier one.
    seq: tokio::sync::Mutex<u64>,
    status: watch::Sender<TeamStatus>,
    analysis: OnceLock<Arc<AnalysisService>>,
}

impl std::fmt::Debug for Uplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uplink").field("cfg", &self.cfg).finish()
    }
}

impl Uplink {
    /// Opens (creates) the spool and counts what waits in it. Nothing is sent before
    /// [`Uplink::start`].
    pub fn open(cfg: TeamConfig) -> Result<Arc<Uplink>, CoreError> {
        let dir = &cfg.spool_dir;
        crate::token::create_private_dir(dir).map_err(|e| {
            CoreError::internal(format!("cannot create the spool {}", dir.display()), e)
        })?;
        let entries = list(dir)?;
        sweep_orphans(dir, &entries);
        let next = entries
            .last()
            .and_then(|e| e.stem.split('-').next()?.parse::<u64>().ok())
            .map_or(1, |n| n + 1);
        let failed = std::fs::read_dir(dir.join("failed"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| is_meta(&e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0);
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| CoreError::internal("cannot build the HTTP client", e))?;
        let (status, _) = watch::channel(TeamStatus {
            configured: true,
            server_url: Some(cfg.url.clone()),
            waiting: entries.len(),
            failed,
            ..TeamStatus::default()
        });
        Ok(Arc::new(Uplink {
            cfg,
            http,
            wake: Arc::new(Notify::new()),
            seq: tokio::sync::Mutex::new(next),
            status,
            analysis: OnceLock::new(),
        }))
    }

    /// Starts the uploader; `analysis` reads captures before they go where the local model is
    /// present. It holds the uplink weakly and ends with it.
    pub fn start(self: &Arc<Self>, analysis: Arc<AnalysisService>) {
        let local = analysis.local_model_present();
        let _ = self.analysis.set(analysis);
        self.status.send_modify(|s| s.local_analysis = local);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(uploader(Arc::downgrade(self)));
        }
    }

    /// The team server's origin (the desktop window loads its UI).
    pub fn server_url(&self) -> &str {
        &self.cfg.url
    }

    /// The token on the team server (the desktop window hands it to the team's UI).
    pub fn token(&self) -> &str {
        &self.cfg.token
    }

    /// Where the link stands now.
    pub fn status(&self) -> TeamStatus {
        self.status.borrow().clone()
    }

    /// Follows the status (the tray and the window title show the waiting count).
    pub fn subscribe(&self) -> watch::Receiver<TeamStatus> {
        self.status.subscribe()
    }

    /// Grabs `target` here and spools it for the team server (the laptop's `POST /capture`).
    pub async fn capture(
        &self,
        source: Arc<dyn ScreenSource>,
        incident_id: Option<i64>,
        target: CaptureTarget,
    ) -> Result<QueuedCapture, CaptureFailure> {
        let shot = tokio::task::spawn_blocking(move || source.grab(&target))
            .await
            .map_err(CoreError::from)??;
        Ok(self.spool(incident_id, shot).await?)
    }

    /// Writes a capture to the spool and fsyncs it (image, then its record, then the folder)
    /// before answering: once this returns, the capture survives a crash or a power cut.
    pub async fn spool(
        &self,
        incident_id: Option<i64>,
        shot: Shot,
    ) -> Result<QueuedCapture, CoreError> {
        let key = new_key()?;
        let meta = SpoolMeta {
            key: key.clone(),
            incident_id,
            captured_at: Utc::now(),
            label: shot.label.clone(),
            width: shot.width,
            height: shot.height,
        };
        let dir = self.cfg.spool_dir.clone();
        let mut seq = self.seq.lock().await;
        let stem = format!("{:016}-{key}", *seq);
        let png = shot.png;
        let s = stem.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            write_durably(&dir, &format!("{s}.png"), &png)?;
            write_durably(&dir, &format!("{s}.json"), &serde_json::to_vec(&meta)?)?;
            sync_dir(&dir)
        })
        .await?
        .map_err(|e| {
            CoreError::internal(
                format!(
                    "cannot write the capture to {}",
                    self.cfg.spool_dir.display()
                ),
                e,
            )
        })?;
        *seq += 1;
        drop(seq);
        let waiting = self.recount();
        tracing::info!(capture = %key, waiting, "capture spooled for the team server");
        self.wake.notify_one();
        Ok(QueuedCapture {
            capture_id: key,
            incident_id,
            width: shot.width,
            height: shot.height,
            waiting,
            server_url: self.cfg.url.clone(),
        })
    }

    /// Recounts the spool into the status; returns the count.
    fn recount(&self) -> usize {
        let n = list(&self.cfg.spool_dir).map(|l| l.len()).unwrap_or(0);
        self.status.send_modify(|s| s.waiting = n);
        n
    }

    /// Findings for an entry: read from its analysis file, else made now and kept (so a
    /// retry does not run the model again).
    async fn findings_for(&self, e: &Entry, image: &[u8]) -> Option<MadeElsewhere> {
        let path = self.cfg.spool_dir.join(format!("{}.analysis.json", e.stem));
        if let Ok(b) = tokio::fs::read(&path).await {
            return serde_json::from_slice::<Option<MadeElsewhere>>(&b)
                .ok()
                .flatten();
        }
        let analysis = self.analysis.get()?;
        let made = analysis.analyse_here(image).await;
        let dir = self.cfg.spool_dir.clone();
        let name = format!("{}.analysis.json", e.stem);
        let body = serde_json::to_vec(&made).unwrap_or_else(|_| b"null".to_vec());
        let _ = tokio::task::spawn_blocking(move || write_durably(&dir, &name, &body)).await;
        made
    }

    /// Sends one entry.
    async fn send(&self, e: &Entry) -> Result<(Sent, bool), CoreError> {
        let dir = &self.cfg.spool_dir;
        let meta: SpoolMeta = serde_json::from_slice(
            &tokio::fs::read(dir.join(format!("{}.json", e.stem)))
                .await
                .map_err(|err| CoreError::internal("cannot read a spool record", err))?,
        )
        .map_err(|err| CoreError::internal("unreadable spool record", err))?;
        let image = tokio::fs::read(dir.join(format!("{}.png", e.stem)))
            .await
            .map_err(|err| CoreError::internal("cannot read a spooled image", err))?;
        let findings = self.findings_for(e, &image).await;
        let with_findings = findings.is_some();
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(image)
                .file_name(format!("{}.png", meta.key))
                .mime_str("image/png")
                .map_err(|err| CoreError::internal("multipart", err))?,
        );
        if let Some(id) = meta.incident_id {
            form = form.text("incident_id", id.to_string());
        }
        form = form.text("captured_at", meta.captured_at.to_rfc3339());
        form = form.text("label", meta.label.clone());
        if let Some(f) = &findings {
            let json = serde_json::to_string(f).unwrap_or_default();
            form = form.part(
                "analysis",
                reqwest::multipart::Part::text(json)
                    .mime_str("application/json")
                    .map_err(|err| CoreError::internal("multipart", err))?,
            );
        }
        let res = self
            .http
            .post(format!("{}/api/v1/captures", self.cfg.url))
            .bearer_auth(&self.cfg.token)
            .header("Idempotency-Key", &meta.key)
            .multipart(form)
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            Err(err) => {
                return Ok((
                    Sent::Retry(format!("cannot reach {}: {}", self.cfg.url, chain(&err))),
                    with_findings,
                ))
            }
        };
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        let said = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        let sent = if status.is_success() {
            match serde_json::from_str::<Evidence>(&body) {
                Ok(ev) => Sent::Done {
                    id: ev.id,
                    incident_id: ev.incident_id,
                },
                Err(err) => Sent::Retry(format!(
                    "{} answered {status} with an unreadable body: {err}",
                    self.cfg.url
                )),
            }
        } else if status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 404 | 408 | 429)
        {
            // 401/403: the token was refused (fix it in Settings; captures wait meanwhile);
            // 404 without a named incident: a server without the captures route yet.
            if status.as_u16() == 404 && meta.incident_id.is_some() {
                Sent::Refused(format!("{status}: {said}"))
            } else {
                Sent::Retry(format!("{} answered {status}: {said}", self.cfg.url))
            }
        } else {
            Sent::Refused(format!("{status}: {said}"))
        };
        Ok((sent, with_findings))
    }

    /// Removes an uploaded entry: its record first (the entry is gone once it is), then the
    /// image and the findings.
    fn remove(&self, e: &Entry) -> std::io::Result<()> {
        let dir = &self.cfg.spool_dir;
        std::fs::remove_file(dir.join(format!("{}.json", e.stem)))?;
        sync_dir(dir)?;
        for ext in ["png", "analysis.json"] {
            let _ = std::fs::remove_file(dir.join(format!("{}.{ext}", e.stem)));
        }
        Ok(())
    }

    /// Sets an entry the server refused aside in `failed/`, with the server's answer.
    fn set_aside(&self, e: &Entry, why: &str) -> std::io::Result<()> {
        let dir = &self.cfg.spool_dir;
        let failed = dir.join("failed");
        std::fs::create_dir_all(&failed)?;
        write_durably(&failed, &format!("{}.error.txt", e.stem), why.as_bytes())?;
        for ext in ["png", "analysis.json"] {
            let _ = std::fs::rename(
                dir.join(format!("{}.{ext}", e.stem)),
                failed.join(format!("{}.{ext}", e.stem)),
            );
        }
        std::fs::rename(
            dir.join(format!("{}.json", e.stem)),
            failed.join(format!("{}.json", e.stem)),
        )?;
        sync_dir(&failed)?;
        sync_dir(dir)
    }
}

/// The uploader: the oldest entry first, one at a time, until it is on the server or set
/// aside; waits with a doubling pause (up to `retry_max`) while the server cannot take it.
async fn uploader(weak: Weak<Uplink>) {
    let mut pause = RETRY_MIN;
    loop {
        let Some(up) = weak.upgrade() else { break };
        let first = list(&up.cfg.spool_dir)
            .ok()
            .and_then(|l| l.into_iter().next());
        let Some(entry) = first else {
            up.recount();
            let wake = up.wake.clone();
            drop(up);
            // Re-checked every few seconds: entries a previous run left, a spool edited by hand.
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
            continue;
        };
        let (sent, with_findings) = match up.send(&entry).await {
            Ok(x) => x,
            Err(e) => (Sent::Retry(e.to_string()), false),
        };
        let mut wait = None;
        match sent {
            Sent::Done { id, incident_id } => {
                let key = entry.stem.split_once('-').map(|x| x.1).unwrap_or_default();
                tracing::info!(
                    capture = key,
                    evidence = id,
                    incident = incident_id,
                    with_findings,
                    "capture uploaded to the team server"
                );
                if let Err(e) = up.remove(&entry) {
                    tracing::warn!(error = %e, "cannot remove an uploaded capture from the spool");
                }
                up.status.send_modify(|s| {
                    s.reachable = Some(true);
                    s.last_error = None;
                    s.uploaded += 1;
                    s.last = Some(UploadedCapture {
                        capture_id: key.to_string(),
                        evidence_id: id,
                        incident_id,
                        with_findings,
                    });
                });
                pause = RETRY_MIN;
            }
            Sent::Refused(why) => {
                tracing::warn!(entry = %entry.stem, %why, "the team server refused a capture; set aside");
                if let Err(e) = up.set_aside(&entry, &why) {
                    tracing::warn!(error = %e, "cannot set a refused capture aside");
                    wait = Some(pause);
                }
                up.status.send_modify(|s| {
                    s.reachable = Some(true);
                    s.failed += 1;
                    s.last_error = Some(format!("a capture was refused: {why}"));
                });
            }
            Sent::Retry(why) => {
                tracing::debug!(%why, "team server not reachable; captures wait");
                up.status.send_modify(|s| {
                    s.reachable = Some(false);
                    s.last_error = Some(why);
                });
                wait = Some(pause);
                pause = (pause * 2).min(up.cfg.retry_max);
            }
        }
        up.recount();
        if let Some(w) = wait {
            let wake = up.wake.clone();
            drop(up);
            let _ = tokio::time::timeout(w, wake.notified()).await;
        }
    }
}

/// The entries in the spool, oldest first.
fn list(dir: &Path) -> Result<Vec<Entry>, CoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CoreError::internal("cannot read the capture spool", e)),
    };
    let mut out: Vec<Entry> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            is_meta(&name).then(|| Entry {
                stem: name.trim_end_matches(".json").to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(out)
}

/// Removes what a write cut short left behind: temporary files, and images or findings
/// whose record never landed (the capture was never acknowledged).
fn sweep_orphans(dir: &Path, entries: &[Entry]) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let stem = name
            .strip_suffix(".analysis.json")
            .or_else(|| name.strip_suffix(".png"));
        let orphan = name.ends_with(".tmp")
            || stem.is_some_and(|st| !entries.iter().any(|en| en.stem == st));
        if orphan && e.path().is_file() {
            tracing::info!(file = %name, "removing an unacknowledged spool file");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether a spool file name is an entry's record (`SEQ-KEY.json`).
fn is_meta(name: &str) -> bool {
    name.ends_with(".json")
        && !name.ends_with(".analysis.json")
        && !name.starts_with('.')
        && name
            .split('-')
            .next()
            .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A fresh capture key: 128 random bits in hex.
fn new_key() -> Result<String, CoreError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| CoreError::internal("no randomness", e))?;
    Ok(hex::encode(raw))
}

/// Writes `name` in `dir` through a temporary file, fsynced, renamed into place.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// An error with its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Where the settings screen stored the team server's address and token.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TeamSettingsSaved {
    /// The origin stored (`OPSLENS_SERVER_URL`).
    pub server_url: String,
    /// Where: `the OS keychain` or the data dir's `secrets.env` (mode 0600).
    pub stored_in: String,
    /// The app reads them at start: it must be restarted to use them.
    pub restart_needed: bool,
}

/// Stores the team server's address and token the way `opslens secrets set` does: in the OS
/// keychain where `keychain` is true and one answers (the desktop app), else in the data
/// dir's `secrets.env`. Checked first ([`TeamConfig::new`]); blocking (keychain calls).
pub fn save_settings(
    data_dir: &Path,
    keychain: bool,
    url: &str,
    token: &str,
) -> Result<TeamSettingsSaved, CoreError> {
    use opslens_integrations::secrets::{self, KeyStore, OsKeychain};
    let cfg = TeamConfig::new(url, token, data_dir)?;
    let kc = if keychain {
        OsKeychain::from_env()
    } else {
        None
    };
    let pairs = [
        ("OPSLENS_SERVER_URL", cfg.url.as_str()),
        ("OPSLENS_SERVER_TOKEN", cfg.token.as_str()),
    ];
    let in_keychain = kc.is_some_and(|kc| pairs.iter().all(|(k, v)| kc.set(k, v).is_ok()));
    let stored_in = if in_keychain {
        // Older values in secrets.env would only confuse `opslens secrets list`.
        for (k, _) in pairs {
            let _ = secrets::write_file_key(data_dir, k, None);
        }
        "the OS keychain".to_string()
    } else {
        crate::token::create_private_dir(data_dir)
            .map_err(|e| CoreError::internal("cannot create the data dir", e))?;
        for (k, v) in pairs {
            secrets::write_file_key(data_dir, k, Some(v))
                .map_err(|e| CoreError::internal(format!("cannot write {k} to secrets.env"), e))?;
        }
        format!(
            "{} (mode 0600)",
            data_dir.join(secrets::SECRETS_FILE).display()
        )
    };
    Ok(TeamSettingsSaved {
        server_url: cfg.url,
        stored_in,
        restart_needed: true,
    })
}

/// Removes the team server's address and token from the keychain and `secrets.env` (the
/// environment, if it sets them, still wins). Blocking.
pub fn forget_settings(data_dir: &Path, keychain: bool) -> Result<(), CoreError> {
    use opslens_integrations::secrets::{self, KeyStore, OsKeychain};
    for k in ["OPSLENS_SERVER_URL", "OPSLENS_SERVER_TOKEN"] {
        if let Some(kc) = keychain.then(OsKeychain::from_env).flatten() {
            let _ = kc.delete(k);
        }
        secrets::write_file_key(data_dir, k, None)
            .map_err(|e| CoreError::internal(format!("cannot remove {k} from secrets.env"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_reduced_to_their_origin() {
        assert_eq!(
            normalise_url("https://ops.example.com:8443/").unwrap(),
            "https://ops.example.com:8443"
        );
        assert_eq!(
            normalise_url("http://10.0.0.5:8000/api/v1").unwrap(),
            "http://10.0.0.5:8000"
        );
        assert!(normalise_url("ftp://x").is_err());
        assert!(normalise_url("https://u:p@x").is_err());
        assert!(normalise_url("https://x/other").is_err());
        assert!(normalise_url("not a url").is_err());
    }

    #[test]
    fn spool_names_sort_by_sequence() {
        assert!(is_meta("0000000000000001-abc.json"));
        assert!(!is_meta("0000000000000001-abc.analysis.json"));
        assert!(!is_meta(".0000000000000001-abc.json.tmp"));
        assert!(!is_meta("notes.json"));
    }

    #[tokio::test]
    async fn spooled_captures_are_on_disk_in_order_before_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TeamConfig::new("http://127.0.0.1:9", "t", dir.path()).unwrap();
        let up = Uplink::open(cfg.clone()).unwrap();
        let shot = |n: u8| Shot {
            png: vec![n; 10],
            width: 1,
            height: 1,
            label: "monitor".into(),
        };
        let a = up.spool(None, shot(1)).await.unwrap();
        let b = up.spool(Some(4), shot(2)).await.unwrap();
        assert_eq!((a.waiting, b.waiting), (1, 2));
        let l = list(&cfg.spool_dir).unwrap();
        assert!(l[0].stem.ends_with(&a.capture_id) && l[1].stem.ends_with(&b.capture_id));
        // A new uplink on the same folder continues the sequence and sees both; what a cut
        // write left (an image without its record, a temporary file) is swept.
        drop(up);
        let stray = cfg.spool_dir.join("0000000000000009-dead.png");
        let tmp = cfg.spool_dir.join(".0000000000000009-dead.json.tmp");
        std::fs::write(&stray, b"x").unwrap();
        std::fs::write(&tmp, b"x").unwrap();
        let up = Uplink::open(cfg.clone()).unwrap();
        assert_eq!(up.status().waiting, 2);
        assert!(!stray.exists() && !tmp.exists());
        assert!(cfg.spool_dir.join(format!("{}.png", l[0].stem)).exists());
        let c = up.spool(None, shot(3)).await.unwrap();
        assert!(list(&cfg.spool_dir).unwrap()[2]
            .stem
            .ends_with(&c.capture_id));
    }
}
