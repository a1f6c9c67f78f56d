//! The one error body on every error answer, whoever makes it:
//! - [`not_found`]: the router's fallback for paths no route has;
//! - [`json_errors`]: rewrites the error answers that axum and tower layers make without the
//!   body (405 from the router, 413 from a body limit, an extractor's plain-text rejection, a
//!   408 from a timeout layer);
//! - [`JsonErrorListener`]: hyper answers requests it cannot parse (400), whose URI is too long
//!   (414) or whose headers are too many or too large (431) by itself, before any service runs
//!   and with an empty body. Those answers are the last bytes of their connection, and the
//!   only error answers on the wire without a body, so the connection wrapper recognises them
//!   and writes the JSON body after the head.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// Answer for a path no route has.
pub async fn not_found(headers: axum::http::HeaderMap, uri: Uri) -> Response {
    // A browser asking for a page outside the API gets the UI's not-found page.
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html && !uri.path().starts_with("/api/") {
        return crate::ui::not_found_page(uri.path());
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
    .into_response()
}

/// The error code of an answer whose maker did not give one.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Rewrites any error response that is not JSON yet into the API's error shape, so clients
/// parse one format; `Allow`, `WWW-Authenticate` and `Retry-After` are kept.
pub async fn json_errors(method: Method, uri: Uri, res: Response) -> Response {
    let status = res.status();
    // JSON already, or the UI's own not-found page for a browser.
    let is_json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        message = format!(
            "{method} is not allowed on {}; allowed: {allow}",
            uri.path()
        );
    } else if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let mut out = ApiError::new(status, code_for(status), message).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A listener whose connections give hyper's own error answers the JSON body.
#[derive(Debug)]
pub struct JsonErrorListener<L>(pub L);

impl<L: axum::serve::Listener> axum::serve::Listener for JsonErrorListener<L> {
    type Io = JsonErrorIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (JsonErrorIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that completes hyper's body-less error answers (see the module docs).
#[derive(Debug)]
pub struct JsonErrorIo<T> {
    inner: T,
    /// Bytes accepted from hyper but not yet written (the rewritten answer).
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonErrorIo<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        JsonErrorIo {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrorIo<T> {
    /// Writes what is pending; ready once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` as written when it is a body-less error head, keeping the completed answer.
    fn take_error_head(&mut self, buf: &[u8]) -> bool {
        match complete_error_head(buf) {
            Some(full) => {
                self.pending = full;
                self.written = 0;
                true
            }
            None => false,
        }
    }
}

/// The answer `head` should have been, when it is a body-less 4xx/5xx head (hyper's own).
pub fn complete_error_head(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    let status: u16 = rest.get(2..5)?.parse().ok()?;
    let status = StatusCode::from_u16(status).ok()?;
    let (head_only, after) = text.split_once("\r\n\r\n")?;
    let lower = head_only.to_ascii_lowercase();
    let bodyless = lower.contains("\r\ncontent-length: 0") && !lower.contains("\r\ncontent-type:");
    if !(status.is_client_error() || status.is_server_error()) || !bodyless || !after.is_empty() {
        return None;
    }
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request URI is longer than the server accepts (64 KiB)",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request has too many headers (at most 100) or they are too large"
        }
        StatusCode::BAD_REQUEST => "the request is not valid HTTP/1.1",
        s => s.canonical_reason().unwrap_or("error"),
    };
    let body = serde_json::json!({ "error": { "code": code_for(status), "message": message } })
        .to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in head_only.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!(
                "content-length: {}\r\ncontent-type: application/json",
                body.len()
            ));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if self.take_error_head(buf) {
            // Accepted: the rest goes out on the next write, flush or shutdown.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if self.take_error_head(first) {
                let _ = self.drain(cx)?;
                return Poll::Ready(Ok(first.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_the_json_body() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";
        let full = String::from_utf8(complete_error_head(head).unwrap()).unwrap();
        let (h, body) = full.split_once("\r\n\r\n").unwrap();
        assert!(h.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{h}");
        assert!(h.contains("content-type: application/json"), "{h}");
        assert!(
            h.contains(&format!("content-length: {}", body.len())),
            "{h}"
        );
        assert!(h.contains("\r\ndate: "), "{h}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "uri_too_long");
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let full = String::from_utf8(complete_error_head(head).unwrap()).unwrap();
        assert!(full.contains("\"headers_too_large\""), "{full}");
    }

    #[test]
    fn other_answers_pass_unchanged() {
        for head in [
            &b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"a\": 1}",
            b"",
        ] {
            assert!(complete_error_head(head).is_none(), "{head:?}");
        }
    }

    /// What a timeout or body-limit layer answers (empty or plain text) leaves as JSON.
    #[tokio::test]
    async fn layer_answers_without_a_body_get_one() {
        for (status, code) in [
            (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            (StatusCode::URI_TOO_LONG, "uri_too_long"),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
        ] {
            let res = (status, "").into_response();
            let out = json_errors(Method::POST, Uri::from_static("/api/v1/incidents"), res).await;
            assert_eq!(out.status(), status);
            let body = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], code, "{v}");
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_wrapper_writes_the_whole_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(16);
        let mut io = JsonErrorIo::new(a);
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            b.read_to_end(&mut out).await.unwrap();
            out
        });
        let n = io.write(head).await.unwrap();
        assert_eq!(n, head.len());
        io.shutdown().await.unwrap();
        drop(io);
        let out = String::from_utf8(reader.await.unwrap()).unwrap();
        assert!(out.ends_with("}}"), "{out}");
        assert!(out.contains("uri_too_long"), "{out}");
    }
}
