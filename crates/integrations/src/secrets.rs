//! Where integration secrets live, and the order they are looked up in.
//!
//! 1. **The process environment** (`GITHUB_TOKEN=… opslens serve`): wins, so a CI job or a
//!    one-off run can override anything without touching stored secrets.
//! 2. **The OS keychain** (macOS Keychain, Windows Credential Manager, the Secret Service of
//!    GNOME Keyring/KWallet on Linux), service `opslens`, one entry per key name: encrypted at
//!    rest under the login secret, so a copied disk or backup does not give the keys away.
//! 3. **`secrets.env`** in the data dir, then in the working directory (the seed guide's
//!    file): the fallback where no keychain runs (headless servers, CI, containers).
//!
//! A keychain that is missing, locked or slow never blocks start-up: every keychain call runs
//! on its own thread and is given up on after [`KEYCHAIN_TIMEOUT`]; `OPSLENS_KEYCHAIN=off`
//! skips it altogether. Values never leave this module except wrapped in [`Secret`], whose
//! `Debug` prints `***`; errors name keys, never values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::keys::{Secret, KEY_NAMES};

/// Keychain service name under which every OpsLens key is stored (account = key name).
pub const KEYCHAIN_SERVICE: &str = "opslens";
/// Longest a keychain call may take before OpsLens carries on without it (a locked Secret
/// Service collection may wait for an unlock prompt nobody will answer).
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Name of the secrets file.
pub const SECRETS_FILE: &str = "secrets.env";

/// Where a key's value came from (shown by `opslens secrets list`; never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The process environment.
    Env,
    /// The OS keychain.
    Keychain,
    /// A `secrets.env` file.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => f.write_str("environment"),
            Source::Keychain => f.write_str("OS keychain"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why the keychain could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No keychain here (no D-Bus session, no Secret Service, locked, timed out): fall back.
    #[error("no OS keychain available: {0}")]
    Unavailable(String),
    /// The keychain answered with an error for this key.
    #[error("OS keychain error: {0}")]
    Failed(String),
}

/// A store of secrets by key name; the OS keychain in the app, a map in tests.
pub trait KeyStore: Send + Sync {
    /// The values of those `names` that are stored; `Unavailable` when there is no store.
    fn get_many(&self, names: &[&str]) -> Result<BTreeMap<String, String>, KeyError>;
    /// Stores a value.
    fn set(&self, name: &str, value: &str) -> Result<(), KeyError>;
    /// Removes a value; `false` when there was none.
    fn delete(&self, name: &str) -> Result<bool, KeyError>;
}

/// The platform keychain through the `keyring` crate, each call bounded by a timeout.
#[derive(Debug, Clone)]
pub struct OsKeychain {
    service: String,
    timeout: Duration,
}

impl Default for OsKeychain {
    fn default() -> Self {
        OsKeychain {
            service: KEYCHAIN_SERVICE.into(),
            timeout: KEYCHAIN_TIMEOUT,
        }
    }
}

impl OsKeychain {
    /// The keychain, unless `OPSLENS_KEYCHAIN` is `off`, `0` or `false` (headless machines
    /// that know they have none, or users who prefer the file).
    pub fn from_env() -> Option<Self> {
        match std::env::var("OPSLENS_KEYCHAIN") {
            Ok(v)
                if matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false"
                ) =>
            {
                None
            }
            _ => Some(OsKeychain::default()),
        }
    }
}

/// Runs `f` on its own thread and gives up after `timeout`; the thread is left to finish (or
/// hang on a prompt) by itself, holding nothing of ours.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| KeyError::Unavailable(format!("cannot start the keychain thread: {e}")))?;
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(KeyError::Unavailable(format!(
            "no answer within {} s (locked, or waiting for an unlock prompt)",
            timeout.as_secs()
        )))
    })
}

#[cfg(any(target_os = "linux", target_os = "macos", windows))]
fn keyring_error(e: keyring::Error) -> KeyError {
    use keyring::Error as E;
    match e {
        E::NoStorageAccess(_) | E::PlatformFailure(_) => KeyError::Unavailable(e.to_string()),
        // The bytes of a non-UTF-8 value are the secret: say what is wrong, not what it is.
        E::BadEncoding(_) => KeyError::Failed("the stored value is not UTF-8".into()),
        other => KeyError::Failed(other.to_string()),
    }
}

#[cfg(any(target_os = "linux", target_os = "macos", windows))]
impl KeyStore for OsKeychain {
    fn get_many(&self, names: &[&str]) -> Result<BTreeMap<String, String>, KeyError> {
        let service = self.service.clone();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        bounded(self.timeout, move || {
            let mut out = BTreeMap::new();
            for name in names {
                let entry = keyring::Entry::new(&service, &name).map_err(keyring_error)?;
                match entry.get_password() {
                    Ok(v) => {
                        out.insert(name, v);
                    }
                    Err(keyring::Error::NoEntry) => {}
                    Err(e) => match keyring_error(e) {
                        // No keychain: stop asking.
                        e @ KeyError::Unavailable(_) => return Err(e),
                        e => tracing::warn!(key = %name, error = %e, "keychain entry unreadable"),
                    },
                }
            }
            Ok(out)
        })
    }

    fn set(&self, name: &str, value: &str) -> Result<(), KeyError> {
        let (service, name, value) = (self.service.clone(), name.to_string(), value.to_string());
        bounded(self.timeout, move || {
            keyring::Entry::new(&service, &name)
                .and_then(|e| e.set_password(&value))
                .map_err(keyring_error)
        })
    }

    fn delete(&self, name: &str) -> Result<bool, KeyError> {
        let (service, name) = (self.service.clone(), name.to_string());
        bounded(self.timeout, move || {
            match keyring::Entry::new(&service, &name).and_then(|e| e.delete_credential()) {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(keyring_error(e)),
            }
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
impl KeyStore for OsKeychain {
    fn get_many(&self, _: &[&str]) -> Result<BTreeMap<String, String>, KeyError> {
        Err(KeyError::Unavailable(
            "no keychain support on this OS".into(),
        ))
    }
    fn set(&self, _: &str, _: &str) -> Result<(), KeyError> {
        Err(KeyError::Unavailable(
            "no keychain support on this OS".into(),
        ))
    }
    fn delete(&self, _: &str) -> Result<bool, KeyError> {
        Err(KeyError::Unavailable(
            "no keychain support on this OS".into(),
        ))
    }
}

/// A keychain in memory, optionally "unavailable": for tests of the lookup order and of the
/// fallback, which must not touch the real keychain of whoever runs them.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    items: Mutex<BTreeMap<String, Secret>>,
    unavailable: bool,
}

impl MemoryKeyStore {
    /// A store that answers like a machine without a keychain.
    pub fn unavailable() -> Self {
        MemoryKeyStore {
            unavailable: true,
            ..Default::default()
        }
    }

    fn check(&self) -> Result<(), KeyError> {
        if self.unavailable {
            Err(KeyError::Unavailable(
                "no Secret Service on the session bus".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl KeyStore for MemoryKeyStore {
    fn get_many(&self, names: &[&str]) -> Result<BTreeMap<String, String>, KeyError> {
        self.check()?;
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        Ok(names
            .iter()
            .filter_map(|n| {
                items
                    .get(*n)
                    .map(|v| (n.to_string(), v.expose().to_string()))
            })
            .collect())
    }

    fn set(&self, name: &str, value: &str) -> Result<(), KeyError> {
        self.check()?;
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), Secret::new(value));
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, KeyError> {
        self.check()?;
        Ok(self
            .items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some())
    }
}

/// What the keychain said during a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeychainState {
    /// Not asked (turned off, or a test run).
    Off,
    /// Asked and answered.
    Available,
    /// Asked, and there is none usable: the reason.
    Unavailable(String),
}

/// Every key found, with the source it is used from and any sources it shadows.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The value used for each key, and where it came from.
    pub values: BTreeMap<String, (Secret, Source)>,
    /// Lower-priority sources that also hold a key (unused while the first one is there).
    pub shadowed: BTreeMap<String, Vec<Source>>,
    /// Whether the keychain was asked and answered.
    pub keychain: KeychainState,
}

impl Resolved {
    fn offer(&mut self, name: &str, value: &str, source: Source) {
        let value = value.trim();
        if value.is_empty() || !KEY_NAMES.contains(&name) {
            return;
        }
        if self.values.contains_key(name) {
            self.shadowed.entry(name.into()).or_default().push(source);
        } else {
            self.values
                .insert(name.into(), (Secret::new(value), source));
        }
    }
}

/// The secrets files looked at, in order: the data dir's, then the working directory's.
pub fn secrets_files(data_dir: &Path) -> Vec<PathBuf> {
    vec![data_dir.join(SECRETS_FILE), PathBuf::from(SECRETS_FILE)]
}

/// Looks every key up in order: environment (when `use_env`), keychain (when given), the
/// secrets files.
pub fn resolve(data_dir: &Path, use_env: bool, keychain: Option<&dyn KeyStore>) -> Resolved {
    let env = |k: &str| std::env::var(k).ok();
    resolve_from(
        use_env.then_some(&env as &EnvLookup<'_>),
        keychain,
        &secrets_files(data_dir),
    )
}

/// Reads one environment variable (the process's, or a test's map).
pub type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// [`resolve`] with the environment and the files given (tests).
pub fn resolve_from(
    env: Option<&EnvLookup<'_>>,
    keychain: Option<&dyn KeyStore>,
    files: &[PathBuf],
) -> Resolved {
    let mut r = Resolved {
        values: BTreeMap::new(),
        shadowed: BTreeMap::new(),
        keychain: KeychainState::Off,
    };
    if let Some(env) = env {
        for k in KEY_NAMES {
            if let Some(v) = env(k) {
                r.offer(k, &v, Source::Env);
            }
        }
    }
    if let Some(kc) = keychain {
        match kc.get_many(KEY_NAMES) {
            Ok(found) => {
                r.keychain = KeychainState::Available;
                for (k, v) in found {
                    r.offer(&k, &v, Source::Keychain);
                }
            }
            Err(KeyError::Unavailable(why) | KeyError::Failed(why)) => {
                r.keychain = KeychainState::Unavailable(why)
            }
        }
    }
    for file in files {
        if let Ok(iter) = dotenvy::from_path_iter(file) {
            warn_if_shared(file);
            for (k, v) in iter.flatten() {
                r.offer(&k, &v, Source::File(file.clone()));
            }
        }
    }
    r
}

/// A secrets file others can read is worth a warning (not a refusal: existing setups keep
/// working while the user fixes the mode).
fn warn_if_shared(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %file.display(),
                    "secrets file is readable by other users; run chmod 600 on it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// `KEY=value` as a line `dotenvy` reads back to exactly `value`: single quotes keep `$`,
/// `#`, `\` and spaces literal; a value holding `'` goes in double quotes with escapes.
fn env_line(name: &str, value: &str) -> String {
    if !value.contains('\'') {
        format!("{name}='{value}'")
    } else {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        format!("{name}=\"{escaped}\"")
    }
}

/// Sets (`Some`) or removes (`None`) one key in `DATA_DIR/secrets.env`, keeping every other
/// line. The file is created owner-only (0600) in an owner-only dir and replaced atomically
/// (temp file, fsync, rename), so a crash leaves the old file or the new one. Returns whether
/// the file changed.
pub fn write_file_key(data_dir: &Path, name: &str, value: Option<&str>) -> std::io::Result<bool> {
    if value.is_some_and(|v| v.contains(['\n', '\r'])) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a secret is one line",
        ));
    }
    let path = data_dir.join(SECRETS_FILE);
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let is_key = |line: &str| {
        let l = line.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l);
        l.split_once('=').is_some_and(|(k, _)| k.trim() == name)
    };
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !is_key(l))
        .map(String::from)
        .collect();
    let removed = lines.len() != old.lines().count();
    match value {
        Some(v) => lines.push(env_line(name, v)),
        None if !removed => return Ok(false),
        None => {}
    }
    let mut body = lines.join("\n");
    body.push('\n');
    std::fs::create_dir_all(data_dir)?;
    let tmp = data_dir.join(format!(".{SECRETS_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn environment_then_keychain_then_secrets_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(
            dir.path(),
            "data.env",
            "GITHUB_TOKEN=from-data-file\nSLACK_WEBHOOK_URL=from-data-file\nTEAMS_WEBHOOK_URL=from-data-file\nNOT_OURS=x\n",
        );
        let cwd = file(
            dir.path(),
            "cwd.env",
            "TEAMS_WEBHOOK_URL=from-cwd-file\nGRAFANA_TOKEN=from-cwd-file\n",
        );
        let kc = MemoryKeyStore::default();
        kc.set("GITHUB_TOKEN", "from-keychain").unwrap();
        kc.set("PAGERDUTY_API_TOKEN", "from-keychain").unwrap();
        let env = |k: &str| (k == "PAGERDUTY_API_TOKEN").then(|| "from-env".to_string());
        let r = resolve_from(Some(&env), Some(&kc), &[data.clone(), cwd.clone()]);
        let got = |k: &str| {
            let (v, s) = &r.values[k];
            (v.expose().to_string(), s.clone())
        };
        assert_eq!(got("PAGERDUTY_API_TOKEN"), ("from-env".into(), Source::Env));
        assert_eq!(
            got("GITHUB_TOKEN"),
            ("from-keychain".into(), Source::Keychain)
        );
        assert_eq!(
            got("SLACK_WEBHOOK_URL"),
            ("from-data-file".into(), Source::File(data.clone()))
        );
        assert_eq!(
            got("TEAMS_WEBHOOK_URL"),
            ("from-data-file".into(), Source::File(data.clone()))
        );
        assert_eq!(
            got("GRAFANA_TOKEN"),
            ("from-cwd-file".into(), Source::File(cwd.clone()))
        );
        assert!(!r.values.contains_key("NOT_OURS"));
        assert_eq!(r.shadowed["PAGERDUTY_API_TOKEN"], [Source::Keychain]);
        assert_eq!(r.shadowed["GITHUB_TOKEN"], [Source::File(data)]);
        assert_eq!(r.keychain, KeychainState::Available);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("from-"), "values redacted in Debug: {dbg}");

        // Without the environment (tests, `secrets_from_env: false`) the keychain wins.
        let r = resolve_from(None, Some(&kc), &[]);
        assert_eq!(r.values["PAGERDUTY_API_TOKEN"].1, Source::Keychain);
    }

    #[test]
    fn no_keychain_falls_back_to_the_file_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "s.env", "GITHUB_TOKEN=from-file\n");
        let r = resolve_from(
            None,
            Some(&MemoryKeyStore::unavailable()),
            std::slice::from_ref(&f),
        );
        assert_eq!(r.values["GITHUB_TOKEN"].1, Source::File(f));
        assert!(
            matches!(&r.keychain, KeychainState::Unavailable(why) if why.contains("Secret Service")),
            "{:?}",
            r.keychain
        );
    }

    #[test]
    fn a_keychain_that_never_answers_is_given_up_on() {
        let start = std::time::Instant::now();
        let r: Result<(), KeyError> = bounded(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(matches!(r, Err(KeyError::Unavailable(_))), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_secrets_file_is_written_owner_only_and_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(SECRETS_FILE), "# mine\nGITHUB_REPOS=o/r\n").unwrap();
        let tricky = [
            "plain",
            "with $HOME and ${X} and # hash",
            "it's \"quoted\" \\ $x",
            "  spaced  ",
        ];
        for v in tricky {
            assert!(write_file_key(&data, "GITHUB_TOKEN", Some(v)).unwrap());
            let r = resolve_from(None, None, &[data.join(SECRETS_FILE)]);
            assert_eq!(r.values["GITHUB_TOKEN"].0.expose(), v.trim(), "{v}");
            assert_eq!(r.values["GITHUB_REPOS"].0.expose(), "o/r");
        }
        let text = std::fs::read_to_string(data.join(SECRETS_FILE)).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        assert_eq!(text.matches("GITHUB_TOKEN").count(), 1, "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_file_key(&data, "GITHUB_TOKEN", None).unwrap());
        assert!(!write_file_key(&data, "GITHUB_TOKEN", None).unwrap());
        let r = resolve_from(None, None, &[data.join(SECRETS_FILE)]);
        assert!(!r.values.contains_key("GITHUB_TOKEN"));
        assert!(write_file_key(&data, "GITHUB_TOKEN", Some("a\nb")).is_err());
    }
}
