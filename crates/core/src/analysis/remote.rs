//! The OpenAI-compatible backend: the screenshot (a base64 data URL) and the same prompt go
//! to a `/v1/chat/completions` server that takes images (vLLM, llama.cpp's server, Ollama,
//! LM Studio), streamed back as server-sent events. Off unless `OPSLENS_ANALYSIS_URL` is set:
//! screenshots then leave the machine, which the status and the UI say wherever analysis shows.
//!
//! It never hangs: every wait has a bound (connect, first answer, gap between chunks, the
//! whole run); 429 and 5xx are retried with backoff (honouring `Retry-After`); any other
//! refusal or a malformed answer fails the job with the server's own words.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use opslens_integrations::config::Secret;
use serde_json::{json, Value};

use super::engine::{Analyzer, BoxFuture, Generated, OnText, Request};

/// Longest wait between tries, whatever `Retry-After` asks (a job must not sleep for hours).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// Bytes of a server's error body quoted in a job's error.
const QUOTE_MAX: usize = 500;

/// Where and how to reach the server; read once at start.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// `OPSLENS_ANALYSIS_URL`: the server's base URL (`http://gpu-box:8000`, `…/v1`) or the
    /// full chat-completions URL.
    pub url: String,
    /// `OPSLENS_ANALYSIS_MODEL`: the `model` field sent (servers that serve one model ignore it).
    pub model: String,
    /// `OPSLENS_ANALYSIS_KEY` from the secrets store: sent as a bearer token when set.
    pub key: Option<Secret>,
    /// `OPSLENS_ANALYSIS_TIMEOUT_S`: the longest a whole run may take, and the longest the
    /// server may stay silent (before its first byte, or between two chunks).
    pub timeout: Duration,
    /// `OPSLENS_ANALYSIS_RETRIES`: tries after the first on 429, 5xx or no connection.
    pub retries: u32,
    /// First backoff between tries (doubles per try) when the server gives no `Retry-After`.
    pub backoff: Duration,
}

impl RemoteConfig {
    /// From `OPSLENS_ANALYSIS_URL` (none: the backend is off), `OPSLENS_ANALYSIS_MODEL`,
    /// `OPSLENS_ANALYSIS_TIMEOUT_S` (default 300), `OPSLENS_ANALYSIS_RETRIES` (default 4).
    /// The key comes from the secrets store later ([`crate::services::Services::open`]).
    pub fn from_env() -> Option<RemoteConfig> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let url = var("OPSLENS_ANALYSIS_URL")?;
        Some(RemoteConfig {
            url: url.trim().to_string(),
            model: var("OPSLENS_ANALYSIS_MODEL").unwrap_or_else(|| "default".into()),
            key: None,
            timeout: Duration::from_secs(
                var("OPSLENS_ANALYSIS_TIMEOUT_S")
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(300),
            ),
            retries: var("OPSLENS_ANALYSIS_RETRIES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(4),
            backoff: Duration::from_secs(1),
        })
    }

    /// The chat-completions endpoint the URL names.
    pub fn endpoint(&self) -> String {
        let u = self.url.trim_end_matches('/');
        if u.ends_with("/chat/completions") {
            u.to_string()
        } else if u.ends_with("/v1") {
            format!("{u}/chat/completions")
        } else {
            format!("{u}/v1/chat/completions")
        }
    }

    /// The URL as shown to people: without any user or password it embeds.
    pub fn shown_url(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(mut u) => {
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string().trim_end_matches('/').to_string()
            }
            Err(_) => self.url.clone(),
        }
    }
}

/// The OpenAI-compatible backend.
#[derive(Debug)]
pub struct RemoteAnalyzer {
    cfg: RemoteConfig,
    client: reqwest::Client,
}

impl RemoteAnalyzer {
    /// A backend for `cfg`; the connection is opened per run.
    pub fn new(cfg: RemoteConfig) -> RemoteAnalyzer {
        let client = reqwest::Client::builder()
            .user_agent(concat!("OpsLens/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10).min(cfg.timeout))
            .build()
            .expect("static client configuration is valid");
        RemoteAnalyzer { cfg, client }
    }

    fn body(&self, req: &Request) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(&req.image);
        json!({
            "model": self.cfg.model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.max_new_tokens,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": format!("data:{};base64,{data}", req.mime)}},
                    {"type": "text", "text": req.prompt},
                ]},
            ],
        })
    }

    /// Sends the request, retrying 429/5xx/no connection; returns the accepted response.
    async fn send(&self, body: &Value, cancel: &AtomicBool) -> Result<reqwest::Response, String> {
        let url = self.cfg.endpoint();
        let shown = self.cfg.shown_url();
        let mut last = String::new();
        for attempt in 0..=self.cfg.retries {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let mut rb = self.client.post(&url).json(body);
            if let Some(k) = &self.cfg.key {
                rb = rb.bearer_auth(k.expose());
            }
            let backoff = self.cfg.backoff * 2u32.saturating_pow(attempt.min(6));
            let wait = match tokio::time::timeout(self.cfg.timeout, rb.send()).await {
                Err(_) => {
                    last = format!(
                        "{shown} did not answer within {} s",
                        self.cfg.timeout.as_secs()
                    );
                    backoff
                }
                Ok(Err(e)) => {
                    last = format!("cannot reach {shown}: {}", without_url(&e));
                    backoff
                }
                Ok(Ok(r)) if r.status().is_success() => return Ok(r),
                Ok(Ok(r)) => {
                    let status = r.status();
                    let after = opslens_integrations::http::retry_after(r.headers());
                    let words = error_words(&read_quoted(r, self.cfg.timeout).await);
                    last = format!("{shown} answered {status}: {words}");
                    if status != reqwest::StatusCode::TOO_MANY_REQUESTS && !status.is_server_error()
                    {
                        return Err(last);
                    }
                    after.unwrap_or(backoff)
                }
            };
            if attempt < self.cfg.retries {
                tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %last, "analysis server: trying again");
                tokio::time::sleep(wait.min(MAX_RETRY_WAIT)).await;
            }
        }
        Err(format!(
            "{last} (gave up after {} tries)",
            self.cfg.retries + 1
        ))
    }

    async fn run(
        &self,
        req: Request,
        mut on_text: OnText,
        cancel: Arc<AtomicBool>,
    ) -> Result<Generated, String> {
        let started = Instant::now();
        let deadline = started + self.cfg.timeout;
        let shown = self.cfg.shown_url();
        let body = self.body(&req);
        let mut res = self.send(&body, &cancel).await?;
        let answered_ms = started.elapsed().as_secs_f64() * 1000.0;
        let is_sse = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut text = String::new();
        let mut usage = Value::Null;
        let mut first_ms: Option<f64> = None;
        let mut finish: Option<String> = None;
        // Content chunks streamed: servers send about one token per chunk, so this stands in
        // for the token count when the run stops at the JSON's end before the usage arrives.
        let mut chunks = 0i64;
        if !is_sse {
            // A server that ignores `stream: true` answers with one JSON body.
            let raw = read_quoted_full(res, deadline).await?;
            let v: Value = serde_json::from_str(&raw)
                .map_err(|_| format!("malformed answer from {shown}: {}", quote(&raw)))?;
            if v.get("error").is_some() {
                return Err(format!("{shown}: {}", error_words(&raw)));
            }
            let content = v["choices"][0]["message"]["content"]
                .as_str()
                .ok_or_else(|| format!("malformed answer from {shown}: {}", quote(&raw)))?;
            text.push_str(content);
            on_text(content);
            first_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            usage = v["usage"].clone();
            finish = v["choices"][0]["finish_reason"].as_str().map(String::from);
        } else {
            let mut buf: Vec<u8> = Vec::new();
            let mut done = false;
            let mut json_end = req
                .stop_at_json_end
                .then(opslens_vlm::generate::JsonEnd::new);
            while !done {
                if cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".into());
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let gap = left.min(self.cfg.timeout);
                let chunk = match tokio::time::timeout(gap, res.chunk()).await {
                    Err(_) if left <= gap => {
                        return Err(format!(
                            "{shown} did not finish within {} s",
                            self.cfg.timeout.as_secs()
                        ))
                    }
                    Err(_) => return Err(format!("{shown} went silent mid-answer")),
                    Ok(Err(e)) => {
                        return Err(format!(
                            "the stream from {shown} broke: {}",
                            without_url(&e)
                        ))
                    }
                    Ok(Ok(None)) => break,
                    Ok(Ok(Some(c))) => c,
                };
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\r', '\n']);
                    let Some(data) = line.strip_prefix("data:") else {
                        continue; // `event:`, `id:`, comments, blank separators
                    };
                    let data = data.trim();
                    if data == "[DONE]" {
                        done = true;
                        break;
                    }
                    let v: Value = serde_json::from_str(data)
                        .map_err(|_| format!("malformed answer from {shown}: {}", quote(data)))?;
                    if v.get("error").is_some() {
                        return Err(format!("{shown}: {}", error_words(data)));
                    }
                    if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
                        if !piece.is_empty() {
                            first_ms.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
                            text.push_str(piece);
                            on_text(piece);
                            chunks += 1;
                            if json_end.as_mut().is_some_and(|j| j.feed(piece)) {
                                // The answer is whole; dropping the response ends the
                                // server's generation instead of paying for its epilogue.
                                finish = Some("json_end".into());
                                done = true;
                                break;
                            }
                        }
                    }
                    if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
                        finish = Some(f.to_string());
                    }
                    if v["usage"].is_object() {
                        usage = v["usage"].clone();
                    }
                }
            }
            if !done && finish.is_none() {
                return Err(format!(
                    "{shown} closed the stream before the answer was complete ({} characters received)",
                    text.len()
                ));
            }
        }
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let first = first_ms.unwrap_or(total_ms);
        let mut timings = serde_json::Map::new();
        timings.insert("request_ms".into(), json!(answered_ms));
        // Upload, vision and prefill happen on the server before the first token.
        timings.insert("prefill_ms".into(), json!(first));
        timings.insert("decode_ms".into(), json!(total_ms - first));
        if let Some(n) = usage["prompt_tokens"].as_i64() {
            timings.insert("prompt_tokens".into(), json!(n));
        }
        match usage["completion_tokens"].as_i64() {
            Some(n) => {
                timings.insert("generated_tokens".into(), json!(n));
            }
            None if chunks > 0 => {
                timings.insert("generated_tokens".into(), json!(chunks));
            }
            None => {}
        }
        timings.insert("stop_reason".into(), json!(finish));
        // A server's model is a black box: no vision-tower vector to keep.
        Ok(Generated {
            text,
            timings,
            embedding: None,
        })
    }
}

impl Analyzer for RemoteAnalyzer {
    fn device(&self) -> String {
        self.cfg.shown_url()
    }

    fn generate<'a>(
        &'a self,
        req: Request,
        on_text: OnText,
        cancel: Arc<AtomicBool>,
    ) -> BoxFuture<'a, Result<Generated, String>> {
        Box::pin(self.run(req, on_text, cancel))
    }
}

/// A transport error without the URL reqwest puts in it (shown separately, key-free).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn quote(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The server's own words from an error body: OpenAI's `{"error": {"message", "type",
/// "code"}}`, Ollama's `{"error": "…"}`, or the text itself.
fn error_words(raw: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return match raw.trim() {
            "" => "(empty body)".into(),
            t => quote(t),
        };
    };
    let e = &v["error"];
    if let Some(m) = e.as_str() {
        return quote(m);
    }
    let Some(m) = e["message"].as_str() else {
        return quote(raw);
    };
    let mut out = m.to_string();
    let kind = e["type"].as_str();
    let code = e["code"]
        .as_str()
        .map(String::from)
        .or_else(|| e["code"].as_i64().map(|c| c.to_string()));
    match (kind, code) {
        (Some(t), Some(c)) => out.push_str(&format!(" ({t}, {c})")),
        (Some(t), None) => out.push_str(&format!(" ({t})")),
        (None, Some(c)) => out.push_str(&format!(" ({c})")),
        (None, None) => {}
    }
    quote(&out)
}

async fn read_quoted(r: reqwest::Response, wait: Duration) -> String {
    tokio::time::timeout(wait, r.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

async fn read_quoted_full(r: reqwest::Response, deadline: Instant) -> Result<String, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, r.text()).await {
        Err(_) => Err("the server did not finish its answer in time".into()),
        Ok(Err(e)) => Err(format!("cannot read the answer: {}", without_url(&e))),
        Ok(Ok(t)) => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_error_words() {
        let mut c = RemoteConfig {
            url: "http://u:p@gpu:8000/".into(),
            model: "m".into(),
            key: None,
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        };
        assert_eq!(c.endpoint(), "http://u:p@gpu:8000/v1/chat/completions");
        assert_eq!(c.shown_url(), "http://gpu:8000");
        c.url = "http://gpu/v1".into();
        assert_eq!(c.endpoint(), "http://gpu/v1/chat/completions");
        c.url = "http://gpu/x/chat/completions".into();
        assert_eq!(c.endpoint(), "http://gpu/x/chat/completions");
        assert_eq!(
            error_words(r#"{"error":{"message":"slow down","type":"rate_limit","code":"429"}}"#),
            "slow down (rate_limit, 429)"
        );
        assert_eq!(
            error_words(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_words("Bad Gateway"), "Bad Gateway");
        assert_eq!(error_words(""), "(empty body)");
    }
}
