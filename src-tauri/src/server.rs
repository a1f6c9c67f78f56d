//! Starting and stopping the embedded API server; shared by `opslens serve`, the desktop app,
//! the tests and the benchmarks so they all run the same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the store, makes or reads the token, binds `addr` and starts serving.
    pub async fn start(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<Server> {
        Self::start_with(data_dir, addr, true).await
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
        let analysis = if secrets_from_env {
            AnalysisConfig::from_env()
        } else {
            AnalysisConfig::isolated(data_dir)
        };
        Self::start_opts(data_dir, addr, secrets_from_env, analysis).await
    }

    /// As [`Server::start_with`], with the model settings given.
    pub async fn start_opts(
        data_dir: &Path,
        addr: SocketAddr,
        secrets_from_env: bool,
        analysis: AnalysisConfig,
    ) -> anyhow::Result<Server> {
        create_private_dir(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        let token = ApiToken::load_or_create(data_dir)?;
        let services = Services::open(ServicesConfig {
            data_dir: data_dir.to_path_buf(),
            secrets_from_env,
            analysis,
        })
        .await?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "{addr} is already in use (is another OpsLens running?); pass --addr 127.0.0.1:<port>"
                )
            } else {
                anyhow::anyhow!("cannot listen on {addr}: {e}")
            }
        })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(opslens_api::serve(
            listener,
            services,
            token.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Server {
            addr,
            token,
            data_dir: data_dir.to_path_buf(),
            stop: Some(stop),
            task,
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:8000/api/v1`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// Records the address for CLI commands (`DATA_DIR/server.json`).
    pub fn write_server_file(&self) -> anyhow::Result<()> {
        let f = ServerFile {
            addr: self.addr,
            pid: std::process::id(),
        };
        std::fs::write(
            self.data_dir.join(SERVER_FILE),
            serde_json::to_vec_pretty(&f)?,
        )?;
        Ok(())
    }

    /// Stops accepting, finishes in-flight requests and returns.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await??;
        let _ = std::fs::remove_file(self.data_dir.join(SERVER_FILE));
        Ok(())
    }

    /// Waits until the server ends by itself (it only does on an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await??;
        Ok(())
    }
}
