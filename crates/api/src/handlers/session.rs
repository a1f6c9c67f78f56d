//! Handing the token to a browser: `opslens open` (or the desktop shell) asks for a one-time
//! code with the token, opens `http://127.0.0.1:PORT/#code=…`, and the page trades the code for
//! the token once. The link in the browser's history is then worthless, unlike a token in the URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opslens_core::token::ApiToken;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiResult;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;

/// How long a code stays valid: long enough to open a browser, short enough to be useless later.
pub const CODE_TTL: Duration = Duration::from_secs(120);
/// Outstanding codes kept at most; the oldest are dropped first.
const MAX_CODES: usize = 64;

/// One-time login codes of this server process (memory only: a restart voids them).
#[derive(Clone)]
pub struct LoginCodes {
    inner: Arc<Mutex<HashMap<String, Instant>>>,
    token: ApiToken,
    port: u16,
}

impl std::fmt::Debug for LoginCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCodes")
            .field("port", &self.port)
            .finish()
    }
}

impl LoginCodes {
    /// Codes that trade for `token` on a server at `port`.
    pub fn new(token: ApiToken, port: u16) -> Self {
        LoginCodes {
            inner: Arc::default(),
            token,
            port,
        }
    }

    /// Makes a new code (256 random bits, hex).
    pub fn issue(&self) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| {
            tracing::error!("no randomness for a login code: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "no randomness available",
            )
        })?;
        let code = hex::encode(raw);
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, t| now.duration_since(*t) < CODE_TTL);
        while map.len() >= MAX_CODES {
            let oldest = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(code.clone(), now);
        Ok(code)
    }

    /// The token if `code` was issued, is fresh and unused; the code is spent either way.
    pub fn redeem(&self, code: &str) -> Option<ApiToken> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let issued = map.remove(code)?;
        (issued.elapsed() < CODE_TTL).then(|| self.token.clone())
    }
}

/// Answer of `POST /auth/code`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginCode {
    /// The one-time code.
    pub code: String,
    /// Seconds until it expires.
    pub expires_in_s: u64,
    /// The link that opens the UI with it.
    pub url: String,
}

/// Body of `POST /auth/exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeExchange {
    /// A code from `POST /auth/code`.
    pub code: String,
}

/// Answer of `POST /auth/exchange`.
#[derive(Serialize, ToSchema)]
pub struct SessionToken {
    /// The API token, for `Authorization: Bearer`.
    pub token: String,
}

/// Make a one-time code that opens the web UI signed in (`opslens open` uses it).
#[utoipa::path(post, path = "/auth/code", tag = "system",
    responses((status = 201, body = LoginCode), (status = 401, body = ErrorBody)))]
pub async fn issue_code(
    State(codes): State<LoginCodes>,
) -> ApiResult<(StatusCode, Json<LoginCode>)> {
    let code = codes.issue()?;
    let url = format!("http://127.0.0.1:{}/#code={code}", codes.port);
    Ok((
        StatusCode::CREATED,
        Json(LoginCode {
            code,
            expires_in_s: CODE_TTL.as_secs(),
            url,
        }),
    ))
}

/// Trade a one-time code for the API token (no token needed; each code works once).
#[utoipa::path(post, path = "/auth/exchange", tag = "system", security(()),
    request_body = CodeExchange,
    responses((status = 200, body = SessionToken), (status = 401, body = ErrorBody)))]
pub async fn exchange(
    State(codes): State<LoginCodes>,
    Json(body): Json<CodeExchange>,
) -> ApiResult<Response> {
    let Some(token) = codes.redeem(body.code.trim()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "this sign-in code is unknown, used or expired: run `opslens open` again, \
             or paste the token from `opslens token`",
        ));
    };
    let mut res = Json(SessionToken {
        token: token.expose().to_string(),
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once() {
        let codes = LoginCodes::new(ApiToken::from_secret("s3cret"), 8000);
        let c = codes.issue().unwrap();
        assert_eq!(c.len(), 64);
        assert_eq!(codes.redeem(&c).unwrap().expose(), "s3cret");
        assert!(codes.redeem(&c).is_none());
        assert!(codes.redeem("nope").is_none());
    }

    #[test]
    fn outstanding_codes_are_bounded() {
        let codes = LoginCodes::new(ApiToken::from_secret("t"), 1);
        for _ in 0..MAX_CODES * 2 {
            codes.issue().unwrap();
        }
        assert!(codes.inner.lock().unwrap().len() <= MAX_CODES);
    }
}
