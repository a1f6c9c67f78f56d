//! The change feed `GET /api/v1/events`: server-sent events for uploads and analysis state
//! changes, the incident filter, the token, nothing for rolled-back writes, and a server that
//! still stops while a stream is open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opslens_core::analysis::AnalysisConfig;
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{error_code, png, TestApp};

/// One open event stream, read event by event.
pub(crate) struct Feed {
    res: reqwest::Response,
    buf: String,
}

impl Feed {
    /// Opens the stream and reads its `ready` event (from then on nothing is missed).
    pub(crate) async fn open(app: &TestApp, query: &str) -> Feed {
        let res = app
            .req(Method::GET, &format!("/api/v1/events{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        let mut feed = Feed {
            res,
            buf: String::new(),
        };
        let ready = feed.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        feed
    }

    /// The next event; panics after 30 s without one.
    pub(crate) async fn next(&mut self) -> Value {
        self.within(Duration::from_secs(30))
            .await
            .expect("no event within 30 s")
    }

    /// The next event within `limit`, if any.
    async fn within(&mut self, limit: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                let ev: Value = serde_json::from_str(&data.join("\n")).unwrap();
                let id = block.lines().find_map(|l| l.strip_prefix("id:"));
                assert_eq!(
                    id.map(str::trim),
                    Some(ev["seq"].to_string().as_str()),
                    "SSE id is the seq: {block}"
                );
                return Some(ev);
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await;
            match chunk {
                Err(_) => return None,
                Ok(c) => {
                    let bytes = c.unwrap().expect("the stream ended");
                    self.buf.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
    }

    /// Reads events until one of `type` about object `id` arrives; returns those read.
    pub(crate) async fn until(&mut self, ty: &str, id: i64) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next().await;
            let hit = ev["type"] == ty && ev["id"] == id;
            seen.push(ev);
            if hit {
                return seen;
            }
        }
    }
}

fn types(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| format!("{}#{}", e["type"].as_str().unwrap(), e["id"]))
        .collect()
}

#[tokio::test]
async fn an_upload_is_announced_with_its_incident_and_ids() {
    let app = TestApp::spawn().await;
    let mut feed = Feed::open(&app, "").await;
    let inc = app.incident("Checkout 5xx").await;
    let created = feed.next().await;
    assert_eq!(created["type"], "incident.created");
    assert_eq!(created["kind"], "incident");
    assert_eq!(created["incident_id"], inc);
    assert_eq!(created["id"], inc);
    let first_seq = created["seq"].as_u64().unwrap();
    let opened = feed.next().await;
    assert_eq!(
        opened["type"], "timeline.created",
        "its first entry: {opened}"
    );

    let res = app.upload(inc, png(64, 48), "grafana.png").await;
    assert_eq!(res.status(), 201);
    let ev: Value = res.json().await.unwrap();
    let id = ev["id"].as_i64().unwrap();
    // The screenshot, its timeline entry and the incident's new evidence count: one commit,
    // three events, in order and numbered without gaps.
    let evs = [feed.next().await, feed.next().await, feed.next().await];
    assert_eq!(
        types(&evs),
        [
            format!("evidence.created#{id}"),
            format!("timeline.created#{}", evs[1]["id"]),
            format!("incident.updated#{inc}"),
        ]
    );
    assert!(evs.iter().all(|e| e["incident_id"] == inc));
    assert_eq!(evs[0]["kind"], "evidence");
    let timeline = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let entry = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["evidence_id"] == id)
        .unwrap();
    assert_eq!(evs[1]["id"], entry["id"]);
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [first_seq + 2, first_seq + 3, first_seq + 4]);
}

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_state_changes_are_announced_until_done() {
    let app = TestApp::spawn_with_analysis(|root| {
        let mut c = AnalysisConfig::isolated(root);
        c.model_id = Some("tiny-qwen3-vl-test".into());
        c.models.model_dir = Some(tiny());
        c.max_new_tokens = 24;
        c
    })
    .await;
    let inc = app.incident("Latency").await;
    let mut feed = Feed::open(&app, &format!("?incident_id={inc}")).await;
    let res = app
        .upload(
            inc,
            std::fs::read(tiny().join("panel.png")).unwrap(),
            "panel.png",
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    feed.until("evidence.created", id).await;
    // Each evidence.updated is a state change; refetching on each follows it to the end.
    let mut states = Vec::new();
    loop {
        let ev = feed.next().await;
        if ev["type"] != "evidence.updated" || ev["id"] != id {
            continue;
        }
        let e = app.get_json(&format!("/api/v1/evidence/{id}")).await;
        let state = e["analysis_state"].as_str().unwrap().to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "done" || state == "failed" {
            assert!(e["findings"].is_object(), "{e}");
            break;
        }
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("done"),
        "{states:?}"
    );
    // The claim (running) and the finish (done) are two commits, two events.
    assert!(
        states.len() >= 2 || states == ["done"],
        "states seen: {states:?}"
    );
}

#[tokio::test]
async fn a_filtered_stream_carries_only_its_incident() {
    let app = TestApp::spawn().await;
    let a = app.incident("A").await;
    let b = app.incident("B").await;
    let mut feed = Feed::open(&app, &format!("?incident_id={a}")).await;
    for inc in [b, a, b] {
        app.create(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": format!("note on {inc}")}),
        )
        .await;
    }
    let ev = feed.next().await;
    assert_eq!(
        (ev["type"].as_str(), ev["incident_id"].as_i64()),
        (Some("timeline.created"), Some(a))
    );
    assert!(feed.within(Duration::from_millis(500)).await.is_none());
    // A bad filter is a JSON 400 like other query errors.
    let res = app.get("/api/v1/events?incident_id=abc").await;
    assert!(!error_code(res, 400).await.is_empty());
}

#[tokio::test]
async fn the_feed_needs_the_token_and_is_in_the_spec() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");
    let res = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");
    let spec = app.get_json("/openapi.json").await;
    let op = &spec["paths"]["/api/v1/events"]["get"];
    assert!(
        op["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{op}"
    );
    assert!(spec["components"]["schemas"]["FeedEvent"].is_object());
}

#[tokio::test]
async fn a_rolled_back_write_is_not_announced() {
    let app = TestApp::spawn().await;
    let a = app.incident("A").await;
    let b = app.incident("B").await;
    let other = app
        .create(
            &format!("/api/v1/evidence/incident/{b}"),
            &json!({"evidence_type": "log", "title": "x", "content": "y"}),
        )
        .await;
    let hyp = app
        .create(
            &format!("/api/v1/incidents/{a}/hypotheses"),
            &json!({"statement": "cache stampede"}),
        )
        .await;
    let mut feed = Feed::open(&app, "").await;
    // Rewords the hypothesis, then fails linking evidence of another incident: rolled back.
    let res = app
        .patch(
            &format!("/api/v1/hypotheses/{}", hyp["id"]),
            &json!({"statement": "reworded", "evidence_ids": [other["id"]]}),
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    app.create(
        &format!("/api/v1/incidents/{a}/timeline"),
        &json!({"message": "after"}),
    )
    .await;
    let ev = feed.next().await;
    assert_eq!(ev["type"], "timeline.created", "{ev}");
}

#[tokio::test]
async fn the_server_stops_while_a_stream_is_open() {
    let mut app = TestApp::spawn().await;
    let mut feed = Feed::open(&app, "").await;
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("graceful shutdown waited for the event stream")
        .unwrap();
    // The stream ends (rather than hanging) once the server stops.
    let end = tokio::time::timeout(Duration::from_secs(5), feed.res.chunk()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
}
