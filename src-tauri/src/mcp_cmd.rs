//! `opslens mcp`: OpsLens for an agent (Claude Desktop, Claude Code…) over MCP on stdin/stdout.
//! With a server running on the data dir it relays to that server's `/mcp` with the user's
//! token, so one process holds the data (its UI and model see the agent's work at once);
//! without one it opens the data dir itself.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use opslens_core::token::ApiToken;
use opslens_core::{Services, ServicesConfig};

use crate::config::ServerFile;

/// Options of `opslens mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Server to relay to; default: the one a running `serve` or app recorded in the data dir.
    #[arg(long, env = "OPSLENS_ADDR")]
    pub addr: Option<String>,
    /// Open the data dir directly even when a server answers.
    #[arg(long)]
    pub direct: bool,
}

/// Runs the stdio MCP server until the client closes stdin.
pub async fn run(
    data_dir: &Path,
    args: McpArgs,
    model: &crate::models_cmd::ModelArgs,
) -> anyhow::Result<()> {
    if !args.direct {
        let addr = args
            .addr
            .clone()
            .or_else(|| ServerFile::read(data_dir).map(|f| f.addr.to_string()));
        if let Some(addr) = addr {
            if answers(&addr).await {
                let token = ApiToken::load(data_dir).with_context(|| {
                    format!(
                        "a server runs at {addr} but {} has no API token",
                        data_dir.display()
                    )
                })?;
                eprintln!("opslens mcp: relaying to the server at http://{addr}/mcp");
                return opslens_mcp::bridge_stdio(&format!("http://{addr}/mcp"), token.expose())
                    .await;
            }
            if args.addr.is_some() {
                anyhow::bail!("no OpsLens server answers at {addr}");
            }
        }
    }
    opslens_core::token::create_private_dir(data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let services = Services::open(ServicesConfig {
        data_dir: data_dir.to_path_buf(),
        secrets_from_env: true,
        analysis: model.analysis_config(),
        // Only when no server runs: the data dir's own `blobs/`.
        blobs: Default::default(),
    })
    .await?;
    eprintln!(
        "opslens mcp: no server running; serving {} directly (screen capture needs the app)",
        data_dir.display()
    );
    opslens_mcp::serve_stdio(opslens_mcp::OpsLensMcp::new(services, None)).await
}

/// Whether an OpsLens server answers `/api/v1/health` at `addr` within a second.
async fn answers(addr: &str) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
    else {
        return false;
    };
    http.get(format!("http://{addr}/api/v1/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
