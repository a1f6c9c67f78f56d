//! A stand-in for an OpenAI-compatible `/v1/chat/completions` server that takes images
//! (vLLM, llama.cpp's server, Ollama): streaming with `data: {chunk}` lines and
//! `data: [DONE]`, the non-streaming JSON body, and the documented error shapes
//! (`{"error": {"message", "type", "code"}}`, 429 with `Retry-After`, 500).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 429 with `Retry-After: 1` and an OpenAI error body.
    RateLimited,
    /// 500 with an OpenAI error body.
    ServerError,
    /// 400 with an OpenAI error body naming the problem.
    Refuse(&'static str),
    /// 200 `text/event-stream` whose first chunk is not JSON.
    Malformed,
    /// Accepts and never answers (a wedged server, or one whose client died).
    Hang,
    /// Streams `text` in `pieces` chunks, `gap` apart, then `[DONE]`.
    Stream {
        text: String,
        pieces: usize,
        gap: Duration,
    },
    /// One JSON body (a server that ignores `stream: true`).
    Json(String),
}

/// The stand-in: what it received, and a script of answers (then `default`).
#[derive(Clone)]
pub struct OpenAi {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    default: Arc<Mutex<Answer>>,
}

impl OpenAi {
    pub async fn start(default: Answer) -> OpenAi {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let default = Arc::new(Mutex::new(default));
        let mut me = OpenAi {
            addr: "127.0.0.1:0".parse().unwrap(),
            seen,
            script,
            default,
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(me.clone());
        me.addr = super::serve(app).await;
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with `answers`, in order.
    pub fn then(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn set_default(&self, a: Answer) {
        *self.default.lock().unwrap() = a;
    }

    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let mut r = (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
    }
    r
}

fn chunk(v: Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

async fn completions(State(s): State<OpenAi>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body is not JSON",
            "invalid_request_error",
            "bad_json",
        );
    };
    s.seen.lock().unwrap().push((headers, req.clone()));
    let answer = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.default.lock().unwrap().clone());
    let model = req["model"].as_str().unwrap_or("m").to_string();
    match answer {
        Answer::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests",
            "requests",
            "rate_limit_exceeded",
        ),
        Answer::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request",
            "server_error",
            "internal_error",
        ),
        Answer::Refuse(why) => error(StatusCode::BAD_REQUEST, why, "invalid_request_error", "invalid_image"),
        Answer::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Answer::Malformed => sse(vec![(Duration::ZERO, Bytes::from("data: {\"choices\": [oops\n\n"))]),
        Answer::Json(text) => axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940},
        }))
        .into_response(),
        Answer::Stream { text, pieces, gap } => {
            let chars: Vec<char> = text.chars().collect();
            let per = chars.len().div_ceil(pieces.max(1)).max(1);
            let mut parts = vec![(
                Duration::ZERO,
                chunk(json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]})),
            )];
            for piece in chars.chunks(per) {
                let piece: String = piece.iter().collect();
                parts.push((
                    gap,
                    chunk(json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})),
                ));
            }
            parts.push((
                Duration::ZERO,
                chunk(json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
            ));
            parts.push((
                Duration::ZERO,
                chunk(json!({"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [],
                    "usage": {"prompt_tokens": 900, "completion_tokens": pieces, "total_tokens": 900 + pieces}})),
            ));
            parts.push((Duration::ZERO, Bytes::from("data: [DONE]\n\n")));
            sse(parts)
        }
    }
}

fn sse(parts: Vec<(Duration, Bytes)>) -> Response {
    let stream = futures_util::stream::unfold(parts.into_iter(), |mut it| async move {
        let (wait, bytes) = it.next()?;
        tokio::time::sleep(wait).await;
        Some((Ok::<_, Infallible>(bytes), it))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}
