//! `opslens models list|pull|verify|remove`: the model manager on this machine (no server
//! needed; a running server notices a newly pulled model by itself).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use opslens_core::analysis::AnalysisConfig;
use opslens_models::{Manifest, ModelEntry, ModelSettings, PullEvent};
use serde_json::json;

/// Which model and where models are, for the commands that touch one (the app, `serve`):
/// only their help lists these flags.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// A folder holding the model (flat, or a Hugging Face cache entry `models--org--name`);
    /// looked at before the Hugging Face cache.
    #[arg(long, env = "OPSLENS_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<std::path::PathBuf>,
    /// Model id from `opslens models list` (default: the manifest's default).
    #[arg(long = "model-id", env = "OPSLENS_MODEL", value_name = "ID")]
    pub model_id: Option<String>,
}

/// [`ModelArgs`] for `opslens models …`, accepted before or after its subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelsScope {
    /// A folder holding the model (flat, or a Hugging Face cache entry `models--org--name`);
    /// looked at before the Hugging Face cache.
    #[arg(long, global = true, env = "OPSLENS_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<std::path::PathBuf>,
    /// Model id from `opslens models list` (default: the manifest's default).
    #[arg(
        long = "model-id",
        global = true,
        env = "OPSLENS_MODEL",
        value_name = "ID"
    )]
    pub model_id: Option<String>,
}

/// `opslens models` with its model flags.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Model selection and location.
    #[command(flatten)]
    pub scope: ModelsScope,
    /// What to do.
    #[command(subcommand)]
    pub cmd: ModelsCmd,
}

impl ModelArgs {
    /// These flags, with `over`'s where it has them (a subcommand's flags beat the top level's).
    pub fn or(&self, over: &ModelArgs) -> ModelArgs {
        ModelArgs {
            model_dir: over.model_dir.clone().or_else(|| self.model_dir.clone()),
            model_id: over.model_id.clone().or_else(|| self.model_id.clone()),
        }
    }

    /// The analysis settings of the environment with these flags applied.
    pub fn analysis_config(&self) -> AnalysisConfig {
        let mut c = AnalysisConfig::from_env();
        if let Some(d) = &self.model_dir {
            c.models.model_dir = Some(d.clone());
        }
        if let Some(m) = &self.model_id {
            c.model_id = Some(m.clone());
        }
        c
    }
}

/// `opslens models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Supported models, where each is installed (or what is missing).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a model from the Hugging Face hub into its cache (resumes; verifies SHA-256).
    Pull {
        /// Model id (default: the active model).
        id: Option<String>,
    },
    /// Check every file of an installed model against the manifest (sizes and SHA-256).
    Verify {
        /// Model id (default: the active model).
        id: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a model's pinned snapshot (and the blobs only it uses) from the Hugging Face cache.
    Remove {
        /// Model id.
        id: String,
    },
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn entry<'a>(
    m: &'a Manifest,
    id: Option<&str>,
    args: &ModelArgs,
) -> anyhow::Result<&'a ModelEntry> {
    let id = id.or(args.model_id.as_deref()).unwrap_or(&m.default);
    m.get(id).map_err(|e| anyhow::anyhow!(e))
}

/// Runs `opslens models …`.
pub async fn run(cmd: ModelsCmd, args: &ModelArgs) -> anyhow::Result<()> {
    let m = Manifest::builtin();
    let settings = args.analysis_config().models;
    let active = args.model_id.clone().unwrap_or_else(|| m.default.clone());
    match cmd {
        ModelsCmd::List { json } => {
            let rows: Vec<_> = m
                .models
                .iter()
                .map(|e| {
                    let act = e.id == active;
                    (e, act, opslens_models::resolve(e, &settings.for_model(act)))
                })
                .collect();
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(e, act, r)| {
                        json!({
                            "id": e.id, "repo": e.repo, "revision": e.revision, "license": e.license,
                            "size": e.total_size(), "active": act, "installed": r.is_ok(),
                            "dir": r.as_ref().ok().map(|l| l.dir.display().to_string()),
                            "message": r.as_ref().err().map(|n| n.message.clone()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("Hugging Face cache: {}", settings.cache_dir.display());
            for (e, act, r) in rows {
                let mark = if act { "*" } else { " " };
                println!(
                    "{mark} {:<22} {:<30} {:>9}  {}",
                    e.id,
                    e.repo,
                    human(e.total_size()),
                    match &r {
                        Ok(l) => format!("installed ({}: {})", l.how, l.dir.display()),
                        Err(_) => "not installed".into(),
                    }
                );
            }
            println!("(* = used for analysis; choose with --model-id / OPSLENS_MODEL)");
            Ok(())
        }
        ModelsCmd::Pull { id } => {
            let e = entry(&m, id.as_deref(), args)?.clone();
            pull(&e, &settings).await
        }
        ModelsCmd::Verify { id, json } => {
            let e = entry(&m, id.as_deref(), args)?.clone();
            let loc =
                opslens_models::resolve(&e, &settings).map_err(|nf| anyhow::anyhow!(nf.message))?;
            let dir = loc.dir.clone();
            let e2 = e.clone();
            let report =
                tokio::task::spawn_blocking(move || opslens_models::verify(&e2, &dir)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{} in {}", e.id, report.dir.display());
                for f in &report.files {
                    let how = if f.pinned { "sha256" } else { "size" };
                    println!("  {:<28} {:<16} ({how})", f.name, f.status);
                }
            }
            anyhow::ensure!(report.ok, "{} does not match the manifest", e.id);
            if !json {
                println!("ok");
            }
            Ok(())
        }
        ModelsCmd::Remove { id } => {
            let e = m.get(&id).map_err(|e| anyhow::anyhow!(e))?;
            remove(e, &settings)
        }
    }
}

async fn pull(e: &ModelEntry, settings: &ModelSettings) -> anyhow::Result<()> {
    // The free disk first, as the app's "Get the model" does.
    let plan = opslens_core::analysis::download_plan(e, settings);
    if let Some(why) = opslens_core::analysis::download_refusal(&e.id, &plan) {
        anyhow::bail!(why);
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(e.total_size())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let last_file = Arc::new(Mutex::new(String::new()));
    let b = bar.clone();
    let lf = last_file.clone();
    let on_event = Arc::new(move |ev: PullEvent| match ev {
        PullEvent::File { name, .. } => {
            b.set_message(name.clone());
            *lf.lock().unwrap_or_else(|p| p.into_inner()) = name;
        }
        PullEvent::Verifying { name } => b.set_message(format!("verifying {name}")),
        PullEvent::Progress { done_bytes, .. } => b.set_position(done_bytes),
        _ => {}
    });
    eprintln!(
        "pulling {} ({} @ {}, {}) into {}",
        e.id,
        e.repo,
        &e.revision[..e.revision.len().min(12)],
        human(e.total_size()),
        settings.cache_dir.display()
    );
    let r = opslens_models::pull(e, settings, on_event).await;
    bar.finish_and_clear();
    let dir = r.with_context(|| format!("pulling {}", e.id))?;
    eprintln!("done: {}", dir.display());
    Ok(())
}

fn remove(e: &ModelEntry, settings: &ModelSettings) -> anyhow::Result<()> {
    let snap = settings.snapshot_dir(e);
    anyhow::ensure!(
        snap.exists(),
        "{} is not in the Hugging Face cache ({}); a folder given with --model-dir is yours to delete",
        e.id,
        snap.display()
    );
    let entry_dir = settings.cache_dir.join(e.cache_folder_name());
    // Blobs the other snapshots still use stay.
    let mut keep = std::collections::HashSet::new();
    for s in std::fs::read_dir(entry_dir.join("snapshots"))?.flatten() {
        if s.path() == snap {
            continue;
        }
        for f in std::fs::read_dir(s.path())?.flatten() {
            if let Ok(t) = std::fs::canonicalize(f.path()) {
                keep.insert(t);
            }
        }
    }
    let mut freed = 0u64;
    for f in std::fs::read_dir(&snap)?.flatten() {
        if let Ok(target) = std::fs::canonicalize(f.path()) {
            if target.starts_with(entry_dir.join("blobs")) && !keep.contains(&target) {
                freed += std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&target)?;
            }
        }
    }
    std::fs::remove_dir_all(&snap)?;
    for r in std::fs::read_dir(entry_dir.join("refs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if std::fs::read_to_string(r.path()).is_ok_and(|v| v.trim() == e.revision) {
            std::fs::remove_file(r.path())?;
        }
    }
    println!("removed {} ({} freed)", snap.display(), human(freed));
    Ok(())
}
