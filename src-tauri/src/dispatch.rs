//! The CLI's dispatcher: runs the parsed command line (the desktop app, `serve`, and each
//! subcommand), most of them as calls to the running server.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use opslens_core::token::ApiToken;
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{Cli, Command, EvidenceCmd, IncidentCmd, OpenArgs, ServeArgs};
use crate::client::{print, Client, Remote};
use crate::config;
use crate::server::Server;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = config::data_dir(cli.data_dir.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        None => {
            let addr =
                std::env::var("OPSLENS_ADDR").unwrap_or_else(|_| config::DEFAULT_ADDR.into());
            return Ok(crate::desktop::run(
                &rt,
                &data_dir,
                config::listen_addr(&addr)?,
                cli.model.analysis_config(),
            ));
        }
        Some(Command::Serve(args)) => {
            if let Some(url) = args.database.as_deref().filter(|u| !u.trim().is_empty()) {
                // A wrong or unreachable database is one clear line, before anything is
                // created or started.
                if let Err(e) = opslens_store::check_database_url(url) {
                    eprintln!("opslens: {e}");
                    return Ok(ExitCode::from(2));
                }
                // The store (and any worker process started from here) reads it from there.
                std::env::set_var(opslens_store::DATABASE_URL_ENV, url);
            }
            let model = cli.model.or(&args.model);
            rt.block_on(serve(&data_dir, args, &model))
        }
        Some(Command::Models(m)) => {
            let scoped = crate::models_cmd::ModelArgs {
                model_dir: m.scope.model_dir,
                model_id: m.scope.model_id,
            };
            rt.block_on(crate::models_cmd::run(m.cmd, &cli.model.or(&scoped)))
        }
        Some(Command::Token) => {
            opslens_core::token::create_private_dir(&data_dir)?;
            let token = ApiToken::load_or_create(&data_dir)?;
            println!("{}", token.expose());
            Ok(())
        }
        Some(Command::Openapi) => {
            println!("{}", serde_json::to_string_pretty(&opslens_api::openapi())?);
            Ok(())
        }
        Some(Command::Vlm(crate::cli::VlmCmd::Run(args))) => crate::vlm_cmd::run(&args),
        Some(Command::Worker(args)) => rt.block_on(worker(&data_dir, args, &cli.model)),
        Some(Command::Incident(cmd)) => rt.block_on(incident(&data_dir, cmd)),
        Some(Command::Evidence(cmd)) => rt.block_on(evidence(&data_dir, cmd)),
        Some(Command::Open(args)) => rt.block_on(open(&data_dir, args)),
        Some(Command::Sync { name, remote }) => rt.block_on(sync(&data_dir, name, remote)),
        Some(Command::Secrets(cmd)) => crate::secrets_cli::run(&data_dir, cmd),
        Some(Command::Capture(args)) => rt.block_on(crate::capture_cmd::run(&data_dir, args)),
        Some(Command::Backup(cmd)) => crate::backup_cmd::run(&data_dir, cmd),
        Some(Command::Search(args)) => rt.block_on(crate::search_cli::run(&data_dir, args)),
        Some(Command::Note(args)) => rt.block_on(crate::command_cli::note(&data_dir, args)),
        Some(Command::Role(args)) => rt.block_on(crate::command_cli::role(&data_dir, args)),
        Some(Command::Update(args)) => rt.block_on(crate::command_cli::update(&data_dir, args)),
        Some(Command::Hypothesis(args)) => {
            rt.block_on(crate::command_cli::hypothesis(&data_dir, args))
        }
        Some(Command::Action(args)) => rt.block_on(crate::command_cli::action(&data_dir, args)),
        Some(Command::Postmortem(args)) => {
            rt.block_on(crate::command_cli::postmortem(&data_dir, args))
        }
        Some(Command::Similar(args)) => rt.block_on(crate::command_cli::similar(&data_dir, args)),
        Some(Command::Config(cmd)) => rt.block_on(crate::command_cli::config(&data_dir, cmd)),
        Some(Command::Users(cmd)) => rt.block_on(crate::users_cmd::run(&data_dir, cmd)),
        Some(Command::Mcp(args)) => rt.block_on(crate::mcp_cmd::run(&data_dir, args, &cli.model)),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// `opslens sync [pagerduty|github]`: runs the sync(s) on the server and prints the counts.
/// A not-configured integration is reported and skipped when no name was given.
async fn sync(data_dir: &Path, name: Option<String>, remote: Remote) -> anyhow::Result<()> {
    let c = Client::new(data_dir, remote.addr.as_deref())?;
    let names: Vec<String> = match name {
        Some(n) => vec![n],
        None => vec!["pagerduty".into(), "github".into()],
    };
    let explicit = names.len() == 1;
    for n in names {
        let res = c
            .send(c.request(Method::POST, &format!("/integrations/{n}/sync")))
            .await;
        match res {
            Ok(v) => print(&remote, &v, |v| {
                format!(
                    "{n}: fetched {}, new items {}, incidents created {}, updated {}, hypotheses {}",
                    v["fetched"], v["new_items"], v["incidents_created"], v["incidents_updated"], v["hypotheses"]
                )
            })?,
            Err(e) if !explicit && e.to_string().contains("not configured") => {
                eprintln!("{n}: skipped ({e:#})");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn serve(
    data_dir: &Path,
    args: ServeArgs,
    model: &crate::models_cmd::ModelArgs,
) -> anyhow::Result<()> {
    let addr = config::serve_addr(&args.addr)?;
    let exposure = config::exposure(&args)?;
    let scheme = if exposure.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let public = exposure.public_url.as_ref().map(|p| p.origin.clone());
    let mut opts = crate::server::StartOptions {
        analysis: Some(model.analysis_config()),
        blobs: config::blobs(&args),
        ..crate::server::StartOptions::default()
    };
    opts.extras.exposure = exposure;
    let mut server = Server::start_opts(data_dir, addr, opts).await?;
    server.write_server_file()?;
    eprintln!("OpsLens API listening on {scheme}://{}/api/v1", server.addr);
    if let Some(p) = public {
        eprintln!("  public URL: {p}/");
    }
    eprintln!(
        "  UI:    `opslens open` (or {scheme}://{}/ and paste the token)",
        server.addr
    );
    eprintln!("  docs:  {scheme}://{}/docs", server.addr);
    eprintln!("  data:  {}", data_dir.display());
    eprintln!("  token: `opslens token` (send as Authorization: Bearer <token>)");
    tokio::select! {
        r = server.wait() => r?,
        _ = shutdown_signal() => {
            eprintln!("shutting down");
            server.stop().await?;
        }
    }
    Ok(())
}

/// Asks the server for a one-time sign-in link and opens it (or prints it).
async fn open(data_dir: &Path, args: OpenArgs) -> anyhow::Result<()> {
    let c = Client::new(data_dir, args.addr.as_deref())?;
    let v = c.send(c.request(Method::POST, "/auth/code")).await?;
    let url = v["url"]
        .as_str()
        .context("the server answered without a link")?;
    println!("{url}");
    if !args.no_browser {
        match open_browser(url) {
            Ok(()) => eprintln!("opened in your browser (the link works once, for 2 minutes)"),
            Err(e) => eprintln!("could not start a browser ({e}): open the link above yourself"),
        }
    }
    Ok(())
}

fn open_browser(url: &str) -> std::io::Result<()> {
    use std::process::{Command as Proc, Stdio};
    let mut cmd = if cfg!(target_os = "macos") {
        Proc::new("open")
    } else if cfg!(windows) {
        Proc::new("explorer")
    } else {
        Proc::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
}

/// `opslens worker`: the analysis loop alone, on the shared queue of `data_dir`.
async fn worker(
    data_dir: &Path,
    args: crate::cli::WorkerArgs,
    model: &crate::models_cmd::ModelArgs,
) -> anyhow::Result<()> {
    // On a shared PostgreSQL database (OPSLENS_DATABASE_URL) there is no file to look for.
    if opslens_store::database_for(data_dir).is_none() && !data_dir.join("opslens.db").exists() {
        anyhow::bail!(
            "no OpsLens database in {}; point --data-dir at the data dir of a running app",
            data_dir.display()
        );
    }
    let mut cfg = model.analysis_config();
    cfg.worker_id = args.id;
    if let Some(r) = cfg.remote.as_mut() {
        let keys = opslens_integrations::config::Config::load(data_dir, true);
        r.key = keys.analysis_key;
        eprintln!(
            "analysed by {}: screenshots leave this machine",
            r.shown_url()
        );
    }
    opslens_core::analysis::run_worker_process(data_dir.to_path_buf(), cfg, shutdown_signal())
        .await
        .context("the analysis worker stopped")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn incident_line(i: &Value) -> String {
    format!(
        "#{:<5} {:<8} {:<13} {}",
        i["id"],
        i["severity"].as_str().unwrap_or(""),
        i["status"].as_str().unwrap_or(""),
        i["title"].as_str().unwrap_or("")
    )
}

async fn incident(data_dir: &Path, cmd: IncidentCmd) -> anyhow::Result<()> {
    match cmd {
        IncidentCmd::Create {
            title,
            title_flag,
            description,
            severity,
            remote,
        } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let title = title.or(title_flag).unwrap_or_default();
            let body = json!({ "title": title, "description": description, "severity": severity });
            let v = c
                .send(c.request(Method::POST, "/incidents").json(&body))
                .await?;
            print(&remote, &v, |v| format!("created {}", incident_line(v)))
        }
        IncidentCmd::List {
            status,
            severity,
            query,
            limit,
            offset,
            remote,
        } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let mut q: Vec<(&str, String)> =
                vec![("limit", limit.to_string()), ("offset", offset.to_string())];
            if let Some(s) = status {
                q.push(("status", s.to_string()));
            }
            if let Some(s) = severity {
                q.push(("severity", s.to_string()));
            }
            if let Some(s) = query {
                q.push(("q", s));
            }
            let v = c
                .send(c.request(Method::GET, "/incidents").query(&q))
                .await?;
            print(&remote, &v, |v| {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    return "no incidents (create one with `opslens incident create \"title\"`)"
                        .into();
                }
                let mut out: Vec<String> = items.iter().map(incident_line).collect();
                out.push(format!("{} of {} shown", items.len(), v["total"]));
                out.join("\n")
            })
        }
        IncidentCmd::Show { id, remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let mut v = c
                .send(c.request(Method::GET, &format!("/incidents/{id}")))
                .await?;
            let tl = c
                .send(c.request(Method::GET, &format!("/incidents/{id}/timeline")))
                .await?;
            v["timeline"] = tl;
            print(&remote, &v, |v| {
                let mut out = vec![incident_line(v)];
                if let Some(d) = v["description"].as_str().filter(|d| !d.is_empty()) {
                    out.push(d.to_string());
                }
                out.push(format!(
                    "opened {}  evidence {}",
                    crate::command_cli::human_time(v["created_at"].as_str().unwrap_or("")),
                    v["evidence_count"]
                ));
                for e in v["timeline"].as_array().into_iter().flatten() {
                    out.push(format!(
                        "  {}  {}",
                        crate::command_cli::human_time(e["occurred_at"].as_str().unwrap_or("")),
                        e["message"].as_str().unwrap_or("")
                    ));
                }
                out.join("\n")
            })
        }
        IncidentCmd::Update {
            id,
            title,
            description,
            severity,
            status,
            remote,
        } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let mut body = serde_json::Map::new();
            if let Some(t) = title {
                body.insert("title".into(), json!(t));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if let Some(s) = severity {
                body.insert("severity".into(), json!(s));
            }
            if let Some(s) = status {
                body.insert("status".into(), json!(s));
            }
            let v = c
                .send(
                    c.request(Method::PATCH, &format!("/incidents/{id}"))
                        .json(&body),
                )
                .await?;
            print(&remote, &v, |v| format!("updated {}", incident_line(v)))
        }
    }
}

fn evidence_line(e: &Value) -> String {
    let state = e["analysis_state"]
        .as_str()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    format!(
        "evidence #{} on incident #{}: {} {:?}{state}",
        e["id"],
        e["incident_id"],
        e["evidence_type"].as_str().unwrap_or(""),
        e["title"].as_str().unwrap_or("")
    )
}

async fn evidence(data_dir: &Path, cmd: EvidenceCmd) -> anyhow::Result<()> {
    match cmd {
        EvidenceCmd::Add {
            incident,
            evidence_type,
            title,
            content,
            file,
            source,
            at,
            remote,
        } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let content = match (content, file) {
                (Some(c), _) => c,
                (None, Some(p)) if p.as_os_str() == "-" => read_stdin()?,
                (None, Some(p)) => std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                (None, None) => read_stdin()?,
            };
            let body = json!({ "evidence_type": evidence_type, "title": title, "content": content, "source": source.unwrap_or_else(|| "cli".into()), "occurred_at": at });
            let v = c
                .send(
                    c.request(Method::POST, &format!("/evidence/incident/{incident}"))
                        .json(&body),
                )
                .await?;
            print(&remote, &v, |v| {
                format!(
                    "added {} at {}",
                    evidence_line(v),
                    crate::command_cli::time_note(v)
                )
            })
        }
        EvidenceCmd::Upload {
            incident,
            file,
            at,
            remote,
        } => {
            // Read the time before anything is stored, with the server's rules (zone-less is
            // UTC), so a bad time uploads nothing; the server then gets the exact instant.
            let at = at
                .map(|a| {
                    opslens_core::when::parse_time(
                        "--at",
                        &a,
                        chrono::FixedOffset::east_opt(0).expect("zero offset"),
                        chrono::Utc::now(),
                    )
                })
                .transpose()?;
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let bytes = tokio::fs::read(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "screenshot".into());
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
            let v = c
                .send(
                    c.request(
                        Method::POST,
                        &format!("/evidence/incident/{incident}/upload-screenshot"),
                    )
                    .multipart(form),
                )
                .await?;
            let timed = at.is_some();
            let v = match at {
                Some(p) => {
                    let id = v["id"].as_i64().context("the upload answer has no id")?;
                    let iso = p.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    c.send(
                        c.request(Method::PATCH, &format!("/evidence/{id}"))
                            .json(&serde_json::json!({ "occurred_at": iso })),
                    )
                    .await?
                }
                None => v,
            };
            print(&remote, &v, |v| {
                let when = match v["occurred_at"].as_str() {
                    Some(t) if timed => format!(" at {}", crate::command_cli::human_time(t)),
                    _ => String::new(),
                };
                format!("uploaded {}{when}", evidence_line(v))
            })
        }
        EvidenceCmd::Show { id, remote } => {
            let c = Client::new(data_dir, remote.addr.as_deref())?;
            let v = c
                .send(c.request(Method::GET, &format!("/evidence/{id}")))
                .await?;
            print(&remote, &v, |v| {
                let content = v["content"].as_str().unwrap_or("");
                let body = if content.is_empty() {
                    "(no content yet)"
                } else {
                    content
                };
                format!("{}\n{body}", evidence_line(v))
            })
        }
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read standard input")?;
    Ok(s)
}
