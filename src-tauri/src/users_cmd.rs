//! `opslens users add|list|revoke`: people's own tokens on a shared server, managed through the
//! running server with the install token (an admin), so the server's cache forgets a revoked
//! token at once.

use std::path::Path;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{Client, Remote};

/// `opslens users …`
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Give a person their own API token (printed once; only its hash is kept).
    Add {
        /// The person's name (an existing person of that name or handle gets the token).
        name: String,
        /// admin, member (default) or viewer (reads only).
        #[arg(long, default_value = "member")]
        role: opslens_domain::UserRole,
        #[command(flatten)]
        remote: Remote,
    },
    /// Everyone with a token, live ones first.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a person's token (by name, handle or token id): it stops working at once.
    Revoke {
        /// Name, handle or token id.
        who: String,
        #[command(flatten)]
        remote: Remote,
    },
}

fn line(u: &Value) -> String {
    let state = match u["revoked_at"].as_str() {
        Some(t) => format!("revoked {}", crate::command_cli::human_time(t)),
        None => match u["last_used_at"].as_str() {
            Some(t) => format!("live, last used {}", crate::command_cli::human_time(t)),
            None => "live, never used".into(),
        },
    };
    format!(
        "#{:<4} {:<24} {:<7} {state}",
        u["id"].as_i64().unwrap_or(0),
        u["person"]["name"].as_str().unwrap_or(""),
        u["role"].as_str().unwrap_or("")
    )
}

/// Runs one `users` command against the server of `data_dir`.
pub async fn run(data_dir: &Path, cmd: UsersCmd) -> anyhow::Result<()> {
    match cmd {
        UsersCmd::Add { name, role, remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let v = c
                .send(
                    c.request(Method::POST, "/users")
                        .json(&json!({ "name": name, "role": role.as_str() })),
                )
                .await?;
            crate::client::print(&remote, &v, |v| {
                format!(
                    "{} ({}) can now use this token; it is shown only this once:\n{}",
                    v["user"]["person"]["name"].as_str().unwrap_or(""),
                    v["user"]["role"].as_str().unwrap_or(""),
                    v["token"].as_str().unwrap_or("")
                )
            })
        }
        UsersCmd::List { remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let v = c.send(c.request(Method::GET, "/users")).await?;
            crate::client::print(&remote, &v, |v| {
                let rows: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().map(line).collect())
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no users yet: `opslens users add NAME` gives someone a token".into()
                } else {
                    rows.join("\n")
                }
            })
        }
        UsersCmd::Revoke { who, remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let path = format!("/users/{}", urlencoding(&who));
            let v = c.send(c.request(Method::DELETE, &path)).await?;
            crate::client::print(&remote, &v, |v| format!("revoked: {}", line(v)))
        }
    }
}

/// Percent-encodes a path segment (names may hold spaces).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
