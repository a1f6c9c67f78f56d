//! Local stand-ins for the services OpsLens talks to, on 127.0.0.1:0, speaking their
//! documented wire formats (headers, pagination, rate limits, errors).

#![allow(dead_code)]

#[path = "fakes/github.rs"]
pub mod github;
#[path = "fakes/hub.rs"]
pub mod hub;
#[path = "fakes/openai.rs"]
pub mod openai;
#[path = "fakes/pagerduty.rs"]
pub mod pagerduty;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Serves `app` on a fresh loopback port until the test ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

/// What a fake received: (path with query, headers lowercased, body).
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<Received>>>);

/// One request seen by a fake.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Log {
    pub fn push(&self, uri: &axum::http::Uri, headers: &axum::http::HeaderMap, body: &[u8]) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        self.0.lock().unwrap().push(Received {
            path: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers,
            body: body.to_vec(),
        });
    }

    pub fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.all()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }
}

/// Polls `f` every 20 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}
