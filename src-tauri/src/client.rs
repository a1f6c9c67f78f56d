//! HTTP client the CLI uses to talk to a running server; finds address and token itself.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use opslens_core::token::ApiToken;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::config::{ServerFile, DEFAULT_ADDR};

/// A client bound to one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: ApiToken,
}

impl Client {
    /// Address from the flag/env, else the running server's `server.json`, else the default;
    /// the token from the data dir.
    pub fn new(data_dir: &Path, addr: Option<&str>) -> anyhow::Result<Self> {
        let addr = match addr {
            Some(a) => a.to_string(),
            None => ServerFile::read(data_dir)
                .map(|f| f.addr.to_string())
                .unwrap_or_else(|| DEFAULT_ADDR.to_string()),
        };
        let token = ApiToken::load(data_dir).with_context(|| {
            format!(
                "no API token in {}: start the server once (`opslens serve`) or pass --data-dir",
                data_dir.display()
            )
        })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Client {
            http,
            base: format!("http://{addr}/api/v1"),
            token,
        })
    }

    /// A request to `path` (relative to `/api/v1`) with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
    }

    /// Sends and returns the JSON answer, turning API errors into their message.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        let res = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach OpsLens at {}: is `opslens serve` running?",
                    self.base
                )
            } else {
                anyhow!(e)
            }
        })?;
        Self::json(res).await
    }

    async fn json(res: Response) -> anyhow::Result<Value> {
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let msg = body["error"]["message"].as_str().unwrap_or("no details");
        let code = body["error"]["code"].as_str().unwrap_or("error");
        bail!("{status} {code}: {msg}")
    }
}

/// How CLI commands reach the server.
#[derive(Debug, Args)]
pub struct Remote {
    /// Server address; default: the one a running `serve` recorded, else 127.0.0.1:8000.
    #[arg(long, env = "OPSLENS_ADDR")]
    pub addr: Option<String>,
    /// Print the raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn print(
    remote: &Remote,
    v: &Value,
    human: impl FnOnce(&Value) -> String,
) -> anyhow::Result<()> {
    if remote.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", human(v));
    }
    Ok(())
}
