//! The HTTP layer shared by the sync clients: JSON GETs with bounded retries on 5xx and
//! network errors, and waits that follow each service's rate-limit headers
//! (PagerDuty `ratelimit-reset` in seconds; GitHub `retry-after` or `x-ratelimit-reset` epoch).

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// Why a call to another service failed; messages never include credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service answered with an error status (after retries, for 5xx).
    #[error("{service} answered HTTP {status}: {message}")]
    Status {
        /// Which service.
        service: &'static str,
        /// HTTP status.
        status: u16,
        /// Short excerpt of its answer.
        message: String,
    },
    /// Rate limited for longer than we are willing to wait now; the next sync resumes.
    #[error("{service} rate limit: retry in {wait_secs} s")]
    RateLimited {
        /// Which service.
        service: &'static str,
        /// Seconds until the limit resets.
        wait_secs: u64,
    },
    /// No answer (DNS, connect, TLS, timeout).
    #[error("{service} unreachable: {message}")]
    Transport {
        /// Which service.
        service: &'static str,
        /// What failed.
        message: String,
    },
    /// The answer was not the documented JSON.
    #[error("{service} sent a malformed answer: {message}")]
    Malformed {
        /// Which service.
        service: &'static str,
        /// What did not parse.
        message: String,
    },
}

/// How rate limits are announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateStyle {
    /// PagerDuty: 429, `ratelimit-reset` = seconds until reset (may be absent).
    PagerDuty,
    /// GitHub: 403/429 with `retry-after`, or `x-ratelimit-remaining: 0` + `x-ratelimit-reset`
    /// epoch seconds; a secondary limit without either waits at least a minute.
    GitHub,
}

/// Retry and wait bounds of a client.
#[derive(Debug, Clone, Copy)]
pub struct HttpPolicy {
    /// Retries after the first try (5xx, network errors, rate limits).
    pub max_retries: u32,
    /// First backoff for 5xx/network errors; doubles per retry.
    pub backoff: Duration,
    /// Longest single wait; a rate limit that needs longer fails the call instead.
    pub max_wait: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            max_retries: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Builds the reqwest client every integration uses: no redirects to other hosts (a token
/// must not follow one), a timeout, a user agent (GitHub requires one).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("OpsLens/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("static client configuration is valid")
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Parses `Retry-After` (seconds or an HTTP date).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64;
    Some(Duration::from_secs(secs))
}

/// How long a rate-limited answer asks us to wait, or `None` when `status` is not a limit.
fn rate_wait(
    style: RateStyle,
    status: StatusCode,
    h: &HeaderMap,
    attempt: u32,
) -> Option<Duration> {
    match style {
        RateStyle::PagerDuty => (status == StatusCode::TOO_MANY_REQUESTS).then(|| {
            header_u64(h, "ratelimit-reset")
                .map(Duration::from_secs)
                .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.min(6)))
        }),
        RateStyle::GitHub => {
            if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::FORBIDDEN {
                return None;
            }
            if let Some(r) = retry_after(h) {
                return Some(r);
            }
            if header_u64(h, "x-ratelimit-remaining") == Some(0) {
                let reset = header_u64(h, "x-ratelimit-reset").unwrap_or(0) as i64;
                let secs = (reset - chrono::Utc::now().timestamp()).max(0) as u64;
                return Some(Duration::from_secs(secs));
            }
            // A 429 without headers is a secondary limit; a bare 403 is a real refusal.
            (status == StatusCode::TOO_MANY_REQUESTS)
                .then(|| Duration::from_secs(60u64 << attempt.min(4)))
        }
    }
}

/// Sends the request built by `make` (rebuilt per try), retrying as the policy and the
/// service's headers say, and decodes the JSON answer. Returns the headers too (for `link`).
pub async fn get_json<T: DeserializeOwned>(
    service: &'static str,
    style: RateStyle,
    policy: &HttpPolicy,
    make: impl Fn() -> RequestBuilder,
) -> Result<(T, HeaderMap), ClientError> {
    let mut attempt = 0u32;
    loop {
        let res = make().send().await;
        let wait = match res {
            Err(e) => {
                if attempt >= policy.max_retries {
                    return Err(ClientError::Transport {
                        service,
                        message: without_url(&e),
                    });
                }
                policy.backoff.saturating_mul(1 << attempt.min(10))
            }
            Ok(r) => {
                let status = r.status();
                let headers = r.headers().clone();
                if status.is_success() {
                    let bytes = r.bytes().await.map_err(|e| ClientError::Transport {
                        service,
                        message: without_url(&e),
                    })?;
                    let v = serde_json::from_slice(&bytes).map_err(|e| ClientError::Malformed {
                        service,
                        message: e.to_string(),
                    })?;
                    return Ok((v, headers));
                }
                let limited = rate_wait(style, status, &headers, attempt);
                let message = body_excerpt(r).await;
                match limited {
                    Some(w) if w > policy.max_wait || attempt >= policy.max_retries => {
                        return Err(ClientError::RateLimited {
                            service,
                            wait_secs: w.as_secs().max(1),
                        })
                    }
                    Some(w) => w,
                    None if status.is_server_error() && attempt < policy.max_retries => {
                        policy.backoff.saturating_mul(1 << attempt.min(10))
                    }
                    None => {
                        return Err(ClientError::Status {
                            service,
                            status: status.as_u16(),
                            message,
                        })
                    }
                }
            }
        };
        attempt += 1;
        tracing::debug!(
            service,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// The first 200 characters of an error answer: enough to say what went wrong, never a whole
/// HTML error page in a log line or an API response.
pub async fn body_excerpt(r: reqwest::Response) -> String {
    r.text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// reqwest errors print the URL, which for some services (Slack, Teams) is the credential.
pub fn without_url(e: &reqwest::Error) -> String {
    let e = e.to_string();
    match e.find(" for url (") {
        Some(i) => e[..i].to_string(),
        None => e,
    }
}

/// The `rel="next"` URL of a `link` header (GitHub pagination).
pub fn next_link(h: &HeaderMap) -> Option<String> {
    let v = h.get(reqwest::header::LINK)?.to_str().ok()?;
    v.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            r#"<https://api.github.com/repositories/1/pulls?page=1>; rel="prev", <https://api.github.com/repositories/1/pulls?page=3>; rel="next", <https://api.github.com/repositories/1/pulls?page=9>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=3")
        );
        h.insert(
            reqwest::header::LINK,
            r#"<https://x/?page=1>; rel="first""#.parse().unwrap(),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn github_rate_limits_follow_the_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            rate_wait(RateStyle::GitHub, StatusCode::FORBIDDEN, &h, 0),
            Some(Duration::from_secs(7))
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = chrono::Utc::now().timestamp() + 30;
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let w = rate_wait(RateStyle::GitHub, StatusCode::FORBIDDEN, &h, 0).unwrap();
        assert!((29..=30).contains(&w.as_secs()), "{w:?}");
        // A bare 403 is a refusal, not a limit.
        assert_eq!(
            rate_wait(
                RateStyle::GitHub,
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                0
            ),
            None
        );
        assert_eq!(
            rate_wait(
                RateStyle::GitHub,
                StatusCode::TOO_MANY_REQUESTS,
                &HeaderMap::new(),
                0
            ),
            Some(Duration::from_secs(60))
        );
    }
}
