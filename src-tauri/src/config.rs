//! Where the data lives and where the server listens, from flags, environment and defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Default listen address of the API, as in the seed guide.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// File in the data dir where a running server records its address for the CLI.
pub const SERVER_FILE: &str = "server.json";

/// The data dir: the flag or `OPSLENS_DATA_DIR` (clap fills both), else the platform's data dir
/// (XDG on Linux) + `opslens`.
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let base = dirs::data_dir().context("no data directory on this platform; pass --data-dir")?;
    Ok(base.join("opslens"))
}

/// Parses a listen address and refuses anything but loopback: the API is for this machine only.
pub fn listen_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = s
        .parse()
        .with_context(|| format!("{s:?} is not an address like 127.0.0.1:8000"))?;
    if !addr.ip().is_loopback() {
        bail!("refusing to listen on {addr}: OpsLens binds loopback only (127.0.0.1 or [::1])");
    }
    Ok(addr)
}

/// What `serve` writes so that CLI commands find a server started on another port.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServerFile {
    /// Address actually bound.
    pub addr: SocketAddr,
    /// Process id of the server.
    pub pid: u32,
}

impl ServerFile {
    /// Reads the file of a running server, if any.
    pub fn read(data_dir: &Path) -> Option<ServerFile> {
        let text = std::fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}
