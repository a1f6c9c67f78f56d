//! The incident commander's commands: `opslens note "…" [--at 07:13] [--incident N]`. Text is
//! positional, the incident defaults to the active one (the open incident changed most
//! recently, as for captures), times print as people read them unless `--json`.

use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::client::Remote;

/// Where a command writes: an incident (default: the active one) at a time (default: now).
#[derive(Debug, Args)]
pub struct Target {
    /// Incident id; default: the open incident changed most recently.
    #[arg(long, short)]
    pub incident: Option<i64>,
    /// When it happened: `07:13` (UTC), `07:13:42Z`, `2026-11-30T08:13:42+01:00`; default now.
    #[arg(long)]
    pub at: Option<String>,
}

/// Options of `opslens note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// What happened.
    pub text: String,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub remote: Remote,
}

/// The incident a command without `--incident` writes to: the open one changed most recently.
pub async fn active_incident(c: &Client, given: Option<i64>) -> anyhow::Result<i64> {
    if let Some(id) = given {
        return Ok(id);
    }
    let page = c
        .send(
            c.request(Method::GET, "/incidents")
                .query(&[("limit", "200")]),
        )
        .await?;
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| !matches!(i["status"].as_str(), Some("resolved" | "closed")))
        .max_by_key(|i| i["updated_at"].as_str().unwrap_or("").to_string())
        .and_then(|i| i["id"].as_i64())
        .context("no open incident: pass --incident N or create one (`opslens incident create \"title\"`)")
}

/// `07:13:42Z` today, `2026-11-29 07:13:42Z` another day (UTC, to the second).
pub fn human_time(iso: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(iso) else {
        return iso.to_string();
    };
    let t = t.with_timezone(&chrono::Utc);
    if t.date_naive() == chrono::Utc::now().date_naive() {
        t.format("%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%SZ").to_string()
    }
}

/// The time of a written entry, marked when it was derived or taken in an assumed zone.
pub fn time_note(v: &Value) -> String {
    let mut out = human_time(v["occurred_at"].as_str().unwrap_or(""));
    if v["occurred_at_source"] == "derived" {
        out.push_str(" (read from the content)");
    }
    if let Some(z) = v["assumed_zone"].as_str() {
        out.push_str(&format!(" (no zone given: taken as {z})"));
    }
    out
}

/// `opslens note`.
pub async fn note(data_dir: &Path, args: NoteArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.target.incident).await?;
    if args.text.trim().is_empty() {
        bail!("the note is empty");
    }
    let body = json!({ "message": args.text, "occurred_at": args.target.at });
    let v = c
        .send(
            c.request(Method::POST, &format!("/incidents/{id}/timeline"))
                .json(&body),
        )
        .await?;
    crate::client::print(&args.remote, &v, |v| {
        format!("note on incident #{id} at {}", time_note(v))
    })
}

/// Options of `opslens role`.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// commander, communications, scribe or participant.
    pub role: String,
    /// Who: a person's id, @handle or name (someone new: --add).
    pub person: String,
    /// Take the role away instead of giving it.
    #[arg(long, conflicts_with = "add")]
    pub remove: bool,
    /// PERSON is someone new: add them to the people (PERSON is their name), then give the
    /// role.
    #[arg(long)]
    pub add: bool,
    /// With --add: their handle (letters, digits, `.`, `_`, `-`).
    #[arg(long, requires = "add")]
    pub handle: Option<String>,
    /// With --add: their email.
    #[arg(long, requires = "add")]
    pub email: Option<String>,
    /// Incident id; default: the open incident changed most recently.
    #[arg(long, short)]
    pub incident: Option<i64>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `opslens config …`: settings kept by the server.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCmd {
    /// Set a setting: `name` (your name, the author of what you write), `handle`, `email`.
    Set {
        /// name, handle or email.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show the settings.
    Get {
        #[command(flatten)]
        remote: Remote,
    },
}

fn roles_line(v: &Value) -> String {
    let name = |p: &Value| p["name"].as_str().unwrap_or("—").to_string();
    let parts: Vec<String> = v["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(name)
        .collect();
    format!(
        "commander: {}  communications: {}  scribe: {}  participants: {}",
        name(&v["commander"]),
        name(&v["communications"]),
        name(&v["scribe"]),
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(", ")
        }
    )
}

/// `opslens role`.
pub async fn role(data_dir: &Path, args: RoleArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.incident).await?;
    let v = if args.remove {
        let people = c.send(c.request(Method::GET, "/people")).await?;
        let who = args.person.trim_start_matches('@');
        let person = people
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                (p["id"].is_i64() && who.parse::<i64>().ok() == p["id"].as_i64())
                    || p["handle"].as_str() == Some(who)
                    || p["name"].as_str() == Some(args.person.as_str())
            })
            .and_then(|p| p["id"].as_i64())
            .with_context(|| format!("nobody called {:?}", args.person))?;
        c.send(c.request(
            Method::DELETE,
            &format!("/incidents/{id}/roles/{}/{person}", args.role),
        ))
        .await?
    } else {
        let person = if args.add {
            let p = c
                .send(c.request(Method::POST, "/people").json(&json!({
                    "name": args.person, "handle": args.handle, "email": args.email,
                })))
                .await?;
            p["id"].to_string()
        } else {
            args.person.clone()
        };
        c.send(
            c.request(Method::PUT, &format!("/incidents/{id}/roles/{}", args.role))
                .json(&json!({ "person": person })),
        )
        .await?
    };
    crate::client::print(&args.remote, &v, |v| {
        format!("incident #{id}: {}", roles_line(v))
    })
}

/// `opslens config`.
pub async fn config(data_dir: &Path, cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Set { key, value, remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let me = c
                .send(c.request(Method::GET, "/me"))
                .await
                .unwrap_or(Value::Null);
            let mut body = json!({
                "name": me["name"].as_str().unwrap_or(""),
                "handle": me["handle"],
                "email": me["email"],
            });
            match key.as_str() {
                "name" | "handle" | "email" => body[key.as_str()] = json!(value),
                _ => bail!("unknown setting {key:?}: use name, handle or email"),
            }
            let v = c.send(c.request(Method::PUT, "/me").json(&body)).await?;
            crate::client::print(&remote, &v, |v| {
                format!("{key} = {}", v[key.as_str()].as_str().unwrap_or(""))
            })
        }
        ConfigCmd::Get { remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let v = c.send(c.request(Method::GET, "/me")).await?;
            crate::client::print(&remote, &v, |v| {
                ["name", "handle", "email"]
                    .iter()
                    .map(|k| format!("{k} = {}", v[*k].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

/// Options of `opslens update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// What is known and being done.
    pub text: String,
    /// Who is affected and how.
    #[arg(long)]
    pub impact: Option<String>,
    /// Set the incident's status along with the update.
    #[arg(long)]
    pub status: Option<opslens_domain::IncidentStatus>,
    /// When the next update is due: 30m, 1h, 07:45 (UTC) or ISO-8601.
    #[arg(long)]
    pub next: Option<String>,
    /// Incident id; default: the open incident changed most recently.
    #[arg(long, short)]
    pub incident: Option<i64>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `opslens update`: a status update for stakeholders (Slack, Teams, webhooks).
pub async fn update(data_dir: &Path, args: UpdateArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.incident).await?;
    let body = json!({
        "text": args.text, "impact": args.impact, "status": args.status, "next_update_at": args.next,
    });
    let v = c
        .send(
            c.request(Method::POST, &format!("/incidents/{id}/updates"))
                .json(&body),
        )
        .await?;
    crate::client::print(&args.remote, &v, |v| {
        let next = v["next_update_at"]
            .as_str()
            .map(|n| format!("; next update due {}", human_time(n)))
            .unwrap_or_default();
        format!(
            "status update #{} on incident #{id} ({}){next}",
            v["id"],
            v["status"].as_str().unwrap_or("")
        )
    })
}

/// Options of `opslens hypothesis` and `opslens action`.
#[derive(Debug, Args)]
pub struct ItemArgs {
    /// The statement (hypothesis) or what to do (action).
    pub text: String,
    /// Who does it (actions only).
    #[arg(long)]
    pub owner: Option<String>,
    /// Incident id; default: the open incident changed most recently.
    #[arg(long, short)]
    pub incident: Option<i64>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `opslens hypothesis`.
pub async fn hypothesis(data_dir: &Path, args: ItemArgs) -> anyhow::Result<()> {
    if args.owner.is_some() {
        bail!("--owner is for actions; a hypothesis has none");
    }
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.incident).await?;
    let v = c
        .send(
            c.request(Method::POST, &format!("/incidents/{id}/hypotheses"))
                .json(&json!({ "statement": args.text })),
        )
        .await?;
    crate::client::print(&args.remote, &v, |v| {
        format!(
            "hypothesis #{} on incident #{id} ({})",
            v["id"],
            v["status"].as_str().unwrap_or("")
        )
    })
}

/// `opslens action`.
pub async fn action(data_dir: &Path, args: ItemArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.incident).await?;
    let v = c
        .send(
            c.request(Method::POST, &format!("/incidents/{id}/actions"))
                .json(&json!({ "title": args.text, "owner": args.owner })),
        )
        .await?;
    crate::client::print(&args.remote, &v, |v| {
        let owner = v["owner"]
            .as_str()
            .map(|o| format!(" for @{o}"))
            .unwrap_or_default();
        format!("action #{} on incident #{id}{owner}", v["id"])
    })
}

/// Options of `opslens postmortem`.
#[derive(Debug, Args)]
pub struct PostmortemArgs {
    /// `markdown` (to standard output unless --out), `html` or `zip`.
    #[arg(long, default_value = "markdown")]
    pub format: String,
    /// Write to this file.
    #[arg(long, short)]
    pub out: Option<std::path::PathBuf>,
    /// Incident id; default: the open incident changed most recently.
    #[arg(long, short)]
    pub incident: Option<i64>,
    /// Server address; default: the one a running `serve` recorded, else 127.0.0.1:8000.
    #[arg(long, env = "OPSLENS_ADDR")]
    pub addr: Option<String>,
}

/// `opslens postmortem`: exports the incident's postmortem (the pre-filled draft until saved).
pub async fn postmortem(data_dir: &Path, args: PostmortemArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.addr.as_deref())?;
    let id = active_incident(&c, args.incident).await?;
    let res = c
        .request(Method::GET, &format!("/incidents/{id}/postmortem/export"))
        .query(&[("format", args.format.as_str())])
        .send()
        .await
        .context("cannot reach OpsLens: is `opslens serve` running?")?;
    if !res.status().is_success() {
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        bail!(
            "{status} {}: {}",
            v["error"]["code"].as_str().unwrap_or("error"),
            v["error"]["message"].as_str().unwrap_or("no details")
        );
    }
    let bytes = res.bytes().await?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("postmortem of incident #{id} written to {}", path.display());
        }
        None if args.format == "markdown" || args.format == "md" => {
            print!("{}", String::from_utf8_lossy(&bytes));
        }
        None => bail!(
            "--format {} is binary or a page: pass --out FILE",
            args.format
        ),
    }
    Ok(())
}

/// Options of `opslens similar`.
#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// Incident id; default: the open incident changed most recently.
    pub id: Option<i64>,
    /// Most hits (1 to 50).
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    #[command(flatten)]
    pub remote: Remote,
}

/// `opslens similar [ID]`: past incidents like this one, best first, with why, and the open
/// incident it probably duplicates.
pub async fn similar(data_dir: &Path, args: SimilarArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let id = active_incident(&c, args.id).await?;
    let v = c
        .send(
            c.request(Method::GET, &format!("/incidents/{id}/similar"))
                .query(&[("limit", args.limit.to_string())]),
        )
        .await?;
    crate::client::print(&args.remote, &v, |v| {
        let mut out = String::new();
        if let Some(d) = v["possible_duplicate_of"].as_object() {
            out.push_str(&format!(
                "possible duplicate of #{} {} ({}) — merge with: curl -X POST …/incidents/{id}/merge -d '{{\"into\": {}}}'\n",
                d["incident_id"], d["title"].as_str().unwrap_or(""), d["reason"].as_str().unwrap_or(""), d["incident_id"]
            ));
        }
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            out.push_str(&format!("no incident like #{id} yet"));
        }
        for h in items {
            let reasons: Vec<&str> = h["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            out.push_str(&format!(
                "#{:<5} {:>3.0}%  {} [{}]\n        {}\n",
                h["incident_id"],
                h["score"].as_f64().unwrap_or(0.0) * 100.0,
                h["title"].as_str().unwrap_or(""),
                h["status"].as_str().unwrap_or(""),
                reasons.join("; ")
            ));
        }
        out.trim_end().to_string()
    })
}
