//! `opslens secrets …`: integration keys in the OS keychain, or in `secrets.env` where no
//! keychain runs. Values are read from standard input only (a command line is visible to
//! every user through `ps` and lands in shell history) and are never printed.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Subcommand;
use opslens_integrations::config::KEY_NAMES;
use opslens_integrations::secrets::{self, KeyError, KeyStore, KeychainState, OsKeychain, Source};

/// `opslens secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// Store a key; its value is read from standard input (`opslens secrets set GITHUB_TOKEN
    /// < token.txt`, or type it and press Ctrl-D), never from the command line.
    Set {
        /// Key name, e.g. GITHUB_TOKEN or SLACK_WEBHOOK_URL.
        name: String,
        /// Store it in DATA_DIR/secrets.env (mode 0600) even where a keychain works.
        #[arg(long)]
        file: bool,
    },
    /// List the keys OpsLens finds and where each comes from (never their values).
    List,
    /// Remove a key from the keychain and from DATA_DIR/secrets.env.
    Delete {
        /// Key name.
        name: String,
    },
}

fn known(name: &str) -> anyhow::Result<()> {
    if KEY_NAMES.contains(&name) {
        Ok(())
    } else {
        bail!(
            "{name} is not a key OpsLens reads; known keys: {}",
            KEY_NAMES.join(", ")
        )
    }
}

fn keychain() -> Option<OsKeychain> {
    OsKeychain::from_env()
}

/// Runs `opslens secrets …`.
pub fn run(data_dir: &Path, cmd: SecretsCmd) -> anyhow::Result<()> {
    match cmd {
        SecretsCmd::Set { name, file } => set(data_dir, &name, file),
        SecretsCmd::List => list(data_dir),
        SecretsCmd::Delete { name } => delete(data_dir, &name),
    }
}

fn set(data_dir: &Path, name: &str, to_file: bool) -> anyhow::Result<()> {
    known(name)?;
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .context("reading the value from standard input")?;
    let value = raw.trim_end_matches(['\n', '\r']).trim();
    if value.is_empty() {
        bail!("no value on standard input: pipe it in, e.g. `opslens secrets set {name} < file`");
    }
    if value.contains(['\n', '\r']) {
        bail!("the value must be one line");
    }
    let stored_in = match (to_file, keychain()) {
        (false, Some(kc)) => match kc.set(name, value) {
            Ok(()) => "the OS keychain".to_string(),
            Err(KeyError::Unavailable(why)) => {
                eprintln!("No OS keychain here ({why}); using secrets.env instead.");
                write_file(data_dir, name, value)?
            }
            Err(e) => bail!("{e}"),
        },
        _ => write_file(data_dir, name, value)?,
    };
    println!("Stored {name} in {stored_in}.");
    if std::env::var(name).is_ok_and(|v| !v.trim().is_empty()) {
        eprintln!("Note: the environment variable {name} is set and overrides the stored value.");
    }
    println!("A running server reads keys at start: restart it to use the new value.");
    Ok(())
}

fn write_file(data_dir: &Path, name: &str, value: &str) -> anyhow::Result<String> {
    opslens_core::token::create_private_dir(data_dir)?;
    secrets::write_file_key(data_dir, name, Some(value)).with_context(|| {
        format!(
            "cannot write {}",
            data_dir.join(secrets::SECRETS_FILE).display()
        )
    })?;
    Ok(format!(
        "{} (mode 0600)",
        data_dir.join(secrets::SECRETS_FILE).display()
    ))
}

fn list(data_dir: &Path) -> anyhow::Result<()> {
    let kc = keychain();
    let r = secrets::resolve(data_dir, true, kc.as_ref().map(|k| k as &dyn KeyStore));
    match &r.keychain {
        KeychainState::Off => println!("OS keychain: off (OPSLENS_KEYCHAIN=off)"),
        KeychainState::Available => println!("OS keychain: available"),
        KeychainState::Unavailable(why) => println!("OS keychain: not available ({why})"),
    }
    if r.values.is_empty() {
        println!("No keys set. Store one with `opslens secrets set NAME` (value on stdin).");
        return Ok(());
    }
    let width = r.values.keys().map(String::len).max().unwrap_or(0);
    for (name, (_, source)) in &r.values {
        let mut line = format!("{name:<width$}  {source}");
        if let Some(more) = r.shadowed.get(name) {
            let more: Vec<String> = more.iter().map(Source::to_string).collect();
            line.push_str(&format!("  (also in {}, not used)", more.join(", ")));
        }
        println!("{line}");
    }
    Ok(())
}

fn delete(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    known(name)?;
    let mut removed = Vec::new();
    if let Some(kc) = keychain() {
        match kc.delete(name) {
            Ok(true) => removed.push("the OS keychain".to_string()),
            Ok(false) | Err(KeyError::Unavailable(_)) => {}
            Err(e) => bail!("{e}"),
        }
    }
    let file = data_dir.join(secrets::SECRETS_FILE);
    if secrets::write_file_key(data_dir, name, None)
        .with_context(|| format!("cannot update {}", file.display()))?
    {
        removed.push(file.display().to_string());
    }
    if removed.is_empty() {
        bail!(
            "{name} is not stored in the OS keychain or {}",
            file.display()
        );
    }
    println!("Removed {name} from {}.", removed.join(" and "));
    if std::env::var(name).is_ok_and(|v| !v.trim().is_empty()) {
        eprintln!("Note: the environment variable {name} still sets it.");
    }
    Ok(())
}
