//! The per-install API token: 256 random bits in `DATA_DIR/api-token`, owner-only.
//!
//! Every local process can reach 127.0.0.1, so the only thing that separates the user's scripts
//! from any other program or web page is a secret readable by the user alone (security.md §1).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// File name of the token inside the data dir.
pub const TOKEN_FILE: &str = "api-token";

/// The API token. `Debug` never shows it, so it cannot leak through logs.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Why the token could not be read or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Group or others can read the file: another user could drive the API.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}` or delete it to make a new token")]
    TooOpen {
        /// The token file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but holds no usable token.
    #[error("{0} does not hold a valid token; delete it to make a new one")]
    Malformed(String),
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Reading or writing failed.
    #[error("token file: {0}")]
    Io(#[from] std::io::Error),
}

impl ApiToken {
    /// Wraps a known token (tests, the CLI reading it for a request).
    pub fn from_secret(s: impl Into<String>) -> Self {
        ApiToken(s.into())
    }

    /// The secret itself, for the `Authorization` header the CLI sends and `opslens token`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time so the response time says nothing about how much matched.
    pub fn verify(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// Path of the token file in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(TOKEN_FILE)
    }

    /// Reads the token, creating the data dir (0700) and the file (0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, TokenError> {
        let path = Self::path(data_dir);
        match Self::load(data_dir) {
            Ok(t) => return Ok(t),
            Err(TokenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        create_private_dir(data_dir)?;
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = hex::encode(raw);
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(token.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()?;
                Ok(ApiToken(token))
            }
            // Another process won the race: use its token.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(data_dir),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads an existing token, refusing one other users can read.
    pub fn load(data_dir: &Path) -> Result<Self, TokenError> {
        let path = Self::path(data_dir);
        let text = fs::read_to_string(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(TokenError::TooOpen {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        let token = text.trim();
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Malformed(path.display().to_string()));
        }
        Ok(ApiToken(token.to_string()))
    }
}

/// Creates `dir` (and parents) with mode 0700 where it does not exist yet.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_owner_only_and_refuses_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        let a = ApiToken::load_or_create(&data).unwrap();
        let b = ApiToken::load_or_create(&data).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64, "256 bits as hex");
        assert!(a.verify(b.expose()));
        assert!(!a.verify("nope"));
        assert_eq!(format!("{a:?}"), "ApiToken(***)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = ApiToken::path(&data);
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(&data).unwrap().permissions().mode() & 0o777,
                0o700
            );
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                ApiToken::load_or_create(&data),
                Err(TokenError::TooOpen { .. })
            ));
        }
    }
}
