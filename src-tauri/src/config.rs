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

/// Parses the address `serve` listens on: any address, since [`exposure`] and the server's
/// start refuse a non-loopback one without TLS or a proxy.
pub fn serve_addr(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse()
        .with_context(|| format!("{s:?} is not an address like 127.0.0.1:8000 or 0.0.0.0:8443"))
}

/// What `serve`'s flags say about being reached from elsewhere: the TLS certificate read and
/// checked, the public URL parsed; each problem is one line naming the flag or file.
pub fn exposure(args: &crate::cli::ServeArgs) -> anyhow::Result<opslens_api::exposure::Exposure> {
    use opslens_api::exposure::{AuthLimit, Exposure, PublicUrl};
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(opslens_api::tls::load(cert, key).map_err(anyhow::Error::msg)?)
        }
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let public_url = args
        .public_url
        .as_deref()
        .map(PublicUrl::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(Exposure {
        public_url,
        trusted_proxies: args.behind_proxy.clone(),
        tls,
        auth_limit: AuthLimit {
            failures: args.auth_failure_limit,
            ..AuthLimit::default()
        },
    })
}

/// Where `serve` keeps image files: the bucket of `--blob-bucket`, with the standard AWS
/// credential variables, else `blobs/` in the data dir.
pub fn blobs(args: &crate::cli::ServeArgs) -> opslens_store::objects::BlobConfig {
    use opslens_store::objects::{BlobConfig, S3Config};
    let Some(bucket) = args.blob_bucket.clone() else {
        return BlobConfig::Local;
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    BlobConfig::S3(S3Config {
        bucket,
        prefix: args.blob_prefix.clone(),
        endpoint: args.blob_endpoint.clone(),
        region: args.blob_region.clone().or_else(|| env("AWS_REGION")),
        access_key_id: env("AWS_ACCESS_KEY_ID"),
        secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
        orphan_grace: None,
    })
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
