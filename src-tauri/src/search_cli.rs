//! `opslens search "rollback"`: the same search as the UI's box, through a running server,
//! printed by incident (or the raw answer with `--json`).

use std::path::Path;

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, Remote};

/// Options of `opslens search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find (all must match): `"quoted phrase"`, `prefix*`; `v2.41.0`,
    /// `checkout-api` or `10.0.3.7` are single words.
    pub query: String,
    /// Only these kinds, comma separated: incident, evidence, finding, hypothesis, action,
    /// note, status_update, postmortem.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only incidents with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only incidents with this severity.
    #[arg(long)]
    pub severity: Option<String>,
    /// Only incidents opened at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Only incidents opened before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Most hits, 1 to 200.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub remote: Remote,
}

/// Runs the search and prints it.
pub async fn run(data_dir: &Path, args: SearchArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let mut q: Vec<(&str, String)> =
        vec![("q", args.query.clone()), ("limit", args.limit.to_string())];
    for (k, v) in [
        ("kind", &args.kind),
        ("status", &args.status),
        ("severity", &args.severity),
        ("from", &args.from),
        ("to", &args.to),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    let v = c.send(c.request(Method::GET, "/search").query(&q)).await?;
    crate::client::print(&args.remote, &v, human)
}

/// Groups by incident, one line per hit: kind, title, snippet with the matches in `[` `]`.
fn human(v: &Value) -> String {
    let groups = v["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if groups.is_empty() {
        return "no matches".into();
    }
    let mut out = Vec::new();
    for g in groups {
        out.push(format!(
            "#{} {}  [{}, {}]",
            g["incident_id"],
            g["title"].as_str().unwrap_or(""),
            g["status"].as_str().unwrap_or(""),
            g["severity"].as_str().unwrap_or("")
        ));
        for h in g["hits"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(format!(
                "  {:<13} {}: {}",
                h["kind"].as_str().unwrap_or(""),
                h["title"].as_str().unwrap_or(""),
                h["snippet"].as_str().unwrap_or("")
            ));
        }
    }
    if v["complete"] == false {
        out.push(format!(
            "(more entries matched: the best of the newest {} are shown)",
            v["ranked"]
        ));
    }
    out.join("\n")
}
