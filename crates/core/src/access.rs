//! Who is calling: per-person API tokens for a shared server, and the author of what a request
//! writes. The single-user install keeps its one token (an admin writing as the local user) and
//! needs none of this; `opslens users add NAME` gives a teammate their own token, printed once
//! and stored only as a SHA-256 digest.
//!
//! The request's author travels as a task-local from the API's guard to [`crate::db::Db::run`],
//! which hands it to the store's writes on the blocking thread (see
//! [`opslens_store::with_author`]), so no service signature carries it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opslens_domain::{NewUser, NewUserToken, User, UserRole};
use opslens_store::blobs::sha256_hex;

use crate::db::Db;
use crate::validate::required;
use crate::CoreError;

/// Who a request comes from, as the API's guard established it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The token's user; `None` for the install token (the local user).
    pub user: Option<User>,
    /// What the token may do.
    pub role: UserRole,
}

impl Identity {
    /// The install token: an admin writing as the local user.
    pub fn install() -> Self {
        Identity {
            user: None,
            role: UserRole::Admin,
        }
    }

    /// The name that goes on what this identity writes (`None`: the local user).
    pub fn author(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.person.name.as_str())
    }

    /// Whether this identity may change anything.
    pub fn can_write(&self) -> bool {
        self.role != UserRole::Viewer
    }
}

pub use crate::author::{as_author, with_author};

/// How long a looked-up token is trusted before the database is asked again: a revocation
/// made by another process (or replica) takes effect within this.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Prefix of per-person tokens, so a leaked one is recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "olu_";

/// Per-person tokens: adding, listing, revoking, and recognising them on requests.
#[derive(Debug)]
pub struct AccessService {
    pub(crate) db: Db,
    /// Digest → (user, when looked up, when last touched).
    cache: Mutex<HashMap<String, (Option<User>, Instant)>>,
    touched: Mutex<HashMap<i64, Instant>>,
}

impl AccessService {
    pub(crate) fn new(db: Db) -> Self {
        AccessService {
            db,
            cache: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Gives a person a token of `role` (default member); the answer holds the token, which
    /// is never shown again.
    pub async fn add(&self, new: NewUser) -> Result<NewUserToken, CoreError> {
        let name = required("name", &new.name, 200)?;
        let role = new.role.unwrap_or(UserRole::Member);
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| CoreError::internal("no randomness for a token", e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(raw));
        let digest = sha256_hex(token.as_bytes());
        let user = self
            .db
            .run(move |s| s.add_user_token(&name, role, &digest))
            .await?;
        Ok(NewUserToken { user, token })
    }

    /// Every token, live ones first.
    pub async fn list(&self) -> Result<Vec<User>, CoreError> {
        self.db.run(|s| s.users()).await
    }

    /// Revokes the live token of `who` (token id, name or handle); this process forgets it at
    /// once, other processes within a second.
    pub async fn revoke(&self, who: String) -> Result<User, CoreError> {
        let asked = who.clone();
        let user = self
            .db
            .run(move |s| s.revoke_user(&who))
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!(
                    "no live token for {asked:?}: `opslens users list` shows who has one"
                ))
            })?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (u, _)| u.as_ref().is_none_or(|u| u.id != user.id));
        Ok(user)
    }

    /// The user a presented token belongs to, if it is a live per-person token.
    pub async fn identify(&self, presented: &str) -> Result<Option<Identity>, CoreError> {
        if !presented.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = sha256_hex(presented.as_bytes());
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&digest)
                .filter(|(_, at)| at.elapsed() < CACHE_FOR)
                .map(|(u, _)| u.clone())
        };
        let user = match cached {
            Some(u) => u,
            None => {
                let d = digest.clone();
                let u = self.db.run(move |s| s.user_by_token(&d)).await?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 10_000 {
                    cache.clear(); // a flood of wrong tokens must not grow memory
                }
                cache.insert(digest, (u.clone(), Instant::now()));
                u
            }
        };
        let Some(user) = user else { return Ok(None) };
        let due = {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            let due = touched
                .get(&user.id)
                .is_none_or(|t| t.elapsed() >= TOUCH_EVERY);
            if due {
                touched.insert(user.id, Instant::now());
            }
            due
        };
        if due {
            let id = user.id;
            if let Err(e) = self.db.run(move |s| s.touch_user_token(id)).await {
                tracing::warn!(error = %e, "cannot note the token's last use");
            }
        }
        Ok(Some(Identity {
            role: user.role,
            user: Some(user),
        }))
    }
}
