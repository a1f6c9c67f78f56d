//! Outgoing posts through the outbox against local endpoints: 503 ×3 then 200 is exactly four
//! attempts; 400 is dead after one; dead rows are listed and can be retried; custom webhooks
//! are signed per Standard Webhooks; Slack gets Block Kit.
//!
//! Opening an incident queues its own `incident.created` message too, so the endpoints follow
//! their plan per message (by `webhook-id`, or by body where there is none) and the tests
//! assert per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use opslens_integrations::signature::{standard_key, verify_standard};
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::TestApp;
use crate::fakes::{self, eventually, Log};

const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Clone)]
struct Endpoint {
    log: Log,
    hits: Arc<AtomicUsize>,
    /// Hits per message: its `webhook-id`, else its body (retries resend the same bytes).
    per_message: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
    /// Status for each hit of one message in order; the last one repeats.
    plan: Arc<Vec<u16>>,
}

impl Endpoint {
    /// Requests that carried `event_type` (in a Standard Webhooks `type`, or in the Slack
    /// context line / Teams facts).
    fn of_event(&self, event_type: &str) -> Vec<fakes::Received> {
        self.log
            .all()
            .into_iter()
            .filter(|r| {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                v["type"] == event_type
                    || v.to_string().contains(&format!("· {event_type}\""))
                    || v.to_string()
                        .contains(&format!("\"value\":\"{event_type}\""))
            })
            .collect()
    }
}

async fn answer(
    State(e): State<Endpoint>,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, &'static str) {
    e.log.push(&uri, &h, &body);
    e.hits.fetch_add(1, Ordering::SeqCst);
    let key = h
        .get("webhook-id")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_else(|| body.to_vec());
    let n = {
        let mut m = e.per_message.lock().unwrap();
        let c = m.entry(key).or_default();
        *c += 1;
        *c - 1
    };
    let code = *e.plan.get(n).unwrap_or(e.plan.last().unwrap());
    let mut headers = HeaderMap::new();
    if code == 503 {
        headers.insert("retry-after", "0".parse().unwrap());
    }
    (
        StatusCode::from_u16(code).unwrap(),
        headers,
        if code == 200 { "ok" } else { "no" },
    )
}

async fn endpoint(plan: &[u16]) -> (Endpoint, String) {
    let e = Endpoint {
        log: Log::default(),
        hits: Arc::default(),
        per_message: Arc::default(),
        plan: Arc::new(plan.to_vec()),
    };
    let addr = fakes::serve(
        Router::new()
            .route("/{*path}", post(answer))
            .with_state(e.clone()),
    )
    .await;
    (e, format!("http://{addr}"))
}

async fn outbox(app: &TestApp, q: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/integrations/outbox{q}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Outbox rows of one event type.
async fn outbox_of(app: &TestApp, q: &str, event_type: &str) -> Vec<Value> {
    outbox(app, q)
        .await
        .into_iter()
        .filter(|r| r["event_type"] == event_type)
        .collect()
}

#[tokio::test]
async fn three_503s_then_200_is_exactly_four_signed_attempts() {
    let (ep, base) = endpoint(&[503, 503, 503, 200]).await;
    let app = TestApp::spawn_with_secrets(&format!(
        "WEBHOOK_URLS={base}/hook\nWEBHOOK_SECRET={WHSEC}\nOUTBOX_RETRY_BASE_MS=20\nOUTBOX_MAX_ATTEMPTS=5\n"
    ))
    .await;
    let id = app.incident("Disk full").await;
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/notify"),
            &json!({"text": "mitigating"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let queued: Vec<Value> = res.json().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["target"], "webhook:0");
    assert!(
        !queued[0].to_string().contains(&base),
        "the row names the target, not the URL"
    );
    // Both messages (the automatic `incident.created` and the posted update) go through the
    // same plan, each on its own.
    eventually("delivered", || async {
        outbox(&app, "?status=delivered").await.len() == 2
    })
    .await;
    for event in ["incident.created", "incident.updated"] {
        let rows = outbox_of(&app, "", event).await;
        assert_eq!(rows.len(), 1, "{event}: {rows:?}");
        assert_eq!(rows[0]["attempts"], 4, "{event}: {}", rows[0]);
        assert_eq!(ep.of_event(event).len(), 4, "{event}");
    }
    assert_eq!(ep.hits.load(Ordering::SeqCst), 8);
    // Every attempt carries the same webhook-id and a valid signature over its own timestamp.
    let key = standard_key(WHSEC).unwrap();
    let all = ep.of_event("incident.updated");
    let msg_id = all[0].header("webhook-id").unwrap().to_string();
    assert!(msg_id.starts_with("msg_"));
    assert_eq!(
        queued[0]["message_id"], msg_id,
        "the webhook-id is the row's idempotency key"
    );
    for r in &all {
        assert_eq!(r.header("webhook-id"), Some(msg_id.as_str()));
        let now = chrono::Utc::now().timestamp();
        verify_standard(
            &key,
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
            &r.body,
            now,
        )
        .expect("valid Standard Webhooks signature");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["type"], "incident.updated");
        assert_eq!(v["data"]["incident_id"], id);
    }
}

#[tokio::test]
async fn a_400_is_dead_after_one_attempt_and_can_be_retried() {
    let (ep, base) = endpoint(&[400, 400, 200]).await;
    let app = TestApp::spawn_with_secrets(&format!(
        "SLACK_WEBHOOK_URL={base}/services/T0/B0/XXXX\nOUTBOX_RETRY_BASE_MS=20\n"
    ))
    .await;
    let id = app.incident("API latency").await;
    let res = app
        .post(&format!("/api/v1/incidents/{id}/notify"), &json!({}))
        .await;
    assert_eq!(res.status(), 202);
    eventually("dead-lettered", || async {
        outbox(&app, "?status=dead").await.len() == 2
    })
    .await;
    // The automatic `incident.created` met the same 400: dead after one attempt too.
    let created = &outbox_of(&app, "?status=dead", "incident.created").await[0];
    assert_eq!(created["attempts"], 1);
    let dead = &outbox_of(&app, "?status=dead", "incident.updated").await[0];
    assert_eq!(dead["attempts"], 1);
    assert_eq!(dead["last_status"], 400);
    assert_eq!(ep.of_event("incident.updated").len(), 1);
    assert_eq!(ep.hits.load(Ordering::SeqCst), 2);
    // Slack got Block Kit with the fallback text.
    let sent: Value = serde_json::from_slice(&ep.of_event("incident.updated")[0].body).unwrap();
    assert_eq!(sent["blocks"][0]["type"], "header");
    assert!(sent["text"].as_str().unwrap().contains("API latency"));
    assert!(
        !dead.to_string().contains("XXXX"),
        "webhook URL never in the API"
    );

    // Retry: 400 again → dead again after one more attempt.
    let row = dead["id"].as_i64().unwrap();
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/integrations/outbox/{row}/retry"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    eventually("second attempt", || async {
        ep.of_event("incident.updated").len() == 2
    })
    .await;
    eventually("dead again", || async {
        outbox_of(&app, "?status=dead", "incident.updated")
            .await
            .len()
            == 1
    })
    .await;
    // Third time the endpoint accepts.
    app.req(
        Method::POST,
        &format!("/api/v1/integrations/outbox/{row}/retry"),
    )
    .send()
    .await
    .unwrap();
    eventually("delivered", || async {
        outbox(&app, "?status=delivered").await.len() == 1
    })
    .await;
    assert_eq!(ep.of_event("incident.updated").len(), 3);
    assert_eq!(
        ep.of_event("incident.created").len(),
        1,
        "only the retried row was resent"
    );
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/integrations/outbox/{row}/retry"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "delivered rows are not resent");
}

#[tokio::test]
async fn notify_without_targets_is_409_and_dead_rows_survive_a_restart() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let res = app
        .post(&format!("/api/v1/incidents/{id}/notify"), &json!({}))
        .await;
    assert_eq!(res.status(), 409);

    let (_ep, base) = endpoint(&[404]).await;
    let mut app =
        TestApp::spawn_with_secrets(&format!("TEAMS_WEBHOOK_URL={base}/workflows/1\n")).await;
    let id = app.incident("Teams").await;
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/notify"),
            &json!({"text": "hi"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let q: Vec<Value> = res.json().await.unwrap();
    assert_eq!(
        q[0]["payload"]["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
    eventually("dead", || async {
        outbox(&app, "?status=dead").await.len() == 2
    })
    .await;
    app.restart().await;
    let dead = outbox(&app, "?status=dead").await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[1]["event_type"], "incident.created");
    assert_eq!(dead[0]["event_type"], "incident.updated");
}
