//! Starting and stopping the embedded API server; shared by `opslens serve`, the desktop app,
//! the tests and the benchmarks so they all run the same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use opslens_core::analysis::AnalysisConfig;
use opslens_core::token::{create_private_dir, ApiToken};
use opslens_core::{Services, ServicesConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{ServerFile, SERVER_FILE};

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Address bound (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The API token.
    pub token: ApiToken,
    /// The data dir.
    pub data_dir: PathBuf,
    /// The services behind the API, for in-process callers (the desktop's hotkey and tray).
    pub services: Services,
    /// Whether it serves HTTPS itself.
    pub https: bool,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// How to start a server, beyond its data dir and address.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Whether integration keys in the environment count (false in tests: see
    /// [`Server::start_with`]).
    pub secrets_from_env: bool,
    /// Screen to capture and desktop facts.
    pub extras: opslens_api::Extras,
    /// When the port is taken, take the next free one instead of failing: the desktop app
    /// must open even beside a second instance or a dev server on 8000 (it shows its address).
    pub next_free_port: bool,
    /// Which model analyses screenshots; `None`: from the environment, or (tests,
    /// `secrets_from_env: false`) no model at all, so a developer's Hugging Face cache cannot
    /// leak in either.
    pub analysis: Option<AnalysisConfig>,
    /// Where image files live (`blobs/`, or an S3-compatible bucket).
    pub blobs: opslens_store::objects::BlobConfig,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            secrets_from_env: true,
            extras: opslens_api::Extras {
                screen: Some(Arc::new(opslens_capture::XcapSource)),
                ..Default::default()
            },
            next_free_port: false,
            analysis: None,
            blobs: Default::default(),
        }
    }
}

/// Ports tried after a taken one before letting the OS pick.
const PORT_TRIES: u16 = 20;

async fn bind(addr: SocketAddr, next_free_port: bool) -> anyhow::Result<tokio::net::TcpListener> {
    let in_use = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
    let fail = |addr: SocketAddr, e: std::io::Error| {
        if in_use(&e) {
            anyhow::anyhow!(
                "{addr} is already in use (is another OpsLens running?); pass --addr 127.0.0.1:<port>"
            )
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {e}")
        }
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => return Ok(l),
        Err(e) if next_free_port && in_use(&e) && addr.port() != 0 => {
            tracing::warn!(%addr, "address already in use; trying the next ports");
        }
        Err(e) => return Err(fail(addr, e)),
    }
    let first = addr.port();
    let candidates = (1..=PORT_TRIES)
        .filter_map(|i| first.checked_add(i))
        .chain(std::iter::once(0));
    for port in candidates {
        let a = SocketAddr::new(addr.ip(), port);
        match tokio::net::TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) if in_use(&e) => continue,
            Err(e) => return Err(fail(a, e)),
        }
    }
    Err(anyhow::anyhow!("no free port near {addr}"))
}

impl Server {
    /// Opens the store, makes or reads the token, binds `addr` and starts serving.
    pub async fn start(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<Server> {
        Self::start_opts(data_dir, addr, StartOptions::default()).await
    }

    /// As [`Server::start`]; `secrets_from_env: false` reads integration keys from
    /// `DATA_DIR/secrets.env` only (tests, so the developer's environment cannot leak in).
    /// Tests get no model unless they ask for one ([`Server::start_opts`]), so a developer's
    /// Hugging Face cache cannot leak into them either.
    pub async fn start_with(
        data_dir: &Path,
        addr: SocketAddr,
        secrets_from_env: bool,
    ) -> anyhow::Result<Server> {
        let opts = StartOptions {
            secrets_from_env,
            ..StartOptions::default()
        };
        Self::start_opts(data_dir, addr, opts).await
    }

    /// As [`Server::start`], with every option.
    pub async fn start_opts(
        data_dir: &Path,
        addr: SocketAddr,
        opts: StartOptions,
    ) -> anyhow::Result<Server> {
        // Before anything is created or opened: a refused start leaves nothing behind.
        if let Some(why) = opts.extras.exposure.refusal(addr) {
            anyhow::bail!(why);
        }
        create_private_dir(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        let token = ApiToken::load_or_create(data_dir)?;
        let analysis = opts.analysis.clone().unwrap_or_else(|| {
            if opts.secrets_from_env {
                AnalysisConfig::from_env()
            } else {
                AnalysisConfig::isolated(data_dir)
            }
        });
        let services = Services::open(ServicesConfig {
            data_dir: data_dir.to_path_buf(),
            secrets_from_env: opts.secrets_from_env,
            analysis,
            blobs: opts.blobs.clone(),
        })
        .await?;
        // A laptop pointed at a team server: its spooled captures upload from now on, read
        // first by this process's model where it has one.
        if let Some(up) = &opts.extras.uplink {
            up.start(services.analysis.clone());
        }
        let listener = bind(addr, opts.next_free_port).await?;
        let addr = listener.local_addr()?;
        let https = opts.extras.exposure.tls.is_some();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(opslens_api::serve_with(
            listener,
            services.clone(),
            token.clone(),
            opts.extras,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Server {
            addr,
            token,
            data_dir: data_dir.to_path_buf(),
            services,
            https,
            stop: Some(stop),
            task,
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:8000/api/v1`.
    pub fn api_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/api/v1", self.addr)
    }

    /// Records the address for CLI commands (`DATA_DIR/server.json`). Written to a temporary
    /// file and renamed into place, so a reader that sees the file never reads half of it.
    pub fn write_server_file(&self) -> anyhow::Result<()> {
        let f = ServerFile {
            addr: self.addr,
            pid: std::process::id(),
        };
        let tmp = self
            .data_dir
            .join(format!("{SERVER_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&f)?)?;
        std::fs::rename(&tmp, self.data_dir.join(SERVER_FILE))?;
        Ok(())
    }

    /// Stops accepting, finishes in-flight requests and returns.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await??;
        // Leave the file alone when a second instance on the same data dir wrote it since.
        if ServerFile::read(&self.data_dir).is_some_and(|f| f.pid == std::process::id()) {
            let _ = std::fs::remove_file(self.data_dir.join(SERVER_FILE));
        }
        Ok(())
    }

    /// Waits until the server ends by itself (it only does on an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await??;
        Ok(())
    }
}
