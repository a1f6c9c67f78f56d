//! Automatic outgoing messages: every meaningful change (incident opened or changed,
//! hypothesis proposed or decided, action added or changed) reaches every configured
//! destination once, in its format, signed where it should be; changes of nothing send
//! nothing; and a change and its messages commit together or not at all.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use opslens_integrations::signature::{standard_key, verify_standard};
use serde_json::{json, Value};

use crate::app::TestApp;
use crate::fakes::{self, eventually, Log};

const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

async fn record(State(log): State<Arc<Log>>, uri: Uri, h: HeaderMap, body: Bytes) -> StatusCode {
    log.push(&uri, &h, &body);
    StatusCode::OK
}

/// A local endpoint that accepts everything and keeps what it got.
async fn endpoint() -> (Arc<Log>, String) {
    let log = Arc::new(Log::default());
    let addr = fakes::serve(
        Router::new()
            .route("/{*path}", post(record))
            .with_state(log.clone()),
    )
    .await;
    (log, format!("http://{addr}"))
}

fn bodies(log: &Log) -> Vec<Value> {
    log.all()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Slack messages name their event in the context line.
fn slack_event(v: &Value) -> String {
    let blocks = v["blocks"].as_array().unwrap();
    let ctx = blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    ctx.rsplit("· ").next().unwrap().to_string()
}

async fn outbox_len(app: &TestApp) -> usize {
    app.get_json("/api/v1/integrations/outbox?limit=500")
        .await
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn each_meaningful_change_reaches_slack_and_every_webhook_once_signed() {
    let (slack, slack_base) = endpoint().await;
    let (hook_a, base_a) = endpoint().await;
    let (hook_b, base_b) = endpoint().await;
    let app = TestApp::spawn_with_secrets(&format!(
        "SLACK_WEBHOOK_URL={slack_base}/services/T0/B0/SECRETPART\nWEBHOOK_URLS={base_a}/a,{base_b}/b\nWEBHOOK_SECRET={WHSEC}\n"
    ))
    .await;

    let inc = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "<!channel> Checkout 5xx", "description": "p99 > 2s since 14:02", "severity": "high"}),
        )
        .await;
    let id = inc["id"].as_i64().unwrap();
    let p = |body: Value, path: String| {
        let app = &app;
        async move {
            let res = app.patch(&path, &body).await;
            assert_eq!(res.status(), 200, "{path} {body}");
        }
    };
    let inc_path = format!("/api/v1/incidents/{id}");
    // One message naming both changes.
    p(
        json!({"status": "investigating", "severity": "critical"}),
        inc_path.clone(),
    )
    .await;
    // Nothing changes: nothing is sent. A description edit is not news either.
    p(json!({"status": "investigating", "severity": "critical", "title": "<!channel> Checkout 5xx"}), inc_path.clone()).await;
    p(json!({"description": "p99 > 3s"}), inc_path.clone()).await;

    let h = app
        .create(
            &format!("/api/v1/incidents/{id}/hypotheses"),
            &json!({"statement": "DB pool exhausted"}),
        )
        .await;
    let h_path = format!("/api/v1/hypotheses/{}", h["id"]);
    p(json!({"status": "supported"}), h_path.clone()).await;
    p(json!({"status": "supported"}), h_path.clone()).await;
    p(
        json!({"statement": "DB pool exhausted by the batch job"}),
        h_path.clone(),
    )
    .await;

    let a = app
        .create(
            &format!("/api/v1/incidents/{id}/actions"),
            &json!({"title": "Raise pool size", "owner": "alice"}),
        )
        .await;
    let a_path = format!("/api/v1/actions/{}", a["id"]);
    p(
        json!({"owner": "bob", "status": "in_progress"}),
        a_path.clone(),
    )
    .await;
    p(
        json!({"owner": "bob", "status": "in_progress"}),
        a_path.clone(),
    )
    .await;

    let events = [
        "incident.created",
        "incident.updated",
        "hypothesis.created",
        "hypothesis.updated",
        "action.created",
        "action.updated",
    ];
    eventually("every message delivered", || async {
        slack.all().len() == events.len()
            && hook_a.all().len() == events.len()
            && hook_b.all().len() == events.len()
    })
    .await;
    // Nothing more is queued behind them.
    assert_eq!(outbox_len(&app).await, 3 * events.len());
    // A receiver has its message before the sender records the delivery (its own write, after
    // the answer): wait for the outbox to say so too, rather than read it in between.
    let delivered_path = "/api/v1/integrations/outbox?status=delivered&limit=500";
    eventually("every row recorded as delivered", || async {
        app.get_json(delivered_path).await.as_array().unwrap().len() == 3 * events.len()
    })
    .await;
    let delivered = app.get_json(delivered_path).await;
    assert_eq!(delivered.as_array().unwrap().len(), 3 * events.len());
    assert!(!delivered.to_string().contains("SECRETPART"));

    // Slack: Block Kit, one per change, in order, data shown rather than obeyed.
    let s = bodies(&slack);
    assert_eq!(s.iter().map(slack_event).collect::<Vec<_>>(), events);
    assert!(s.iter().all(|m| m["blocks"][0]["type"] == "header"));
    assert!(
        !s[0]["text"].as_str().unwrap().contains("<!channel>"),
        "{}",
        s[0]
    );
    let texts: Vec<String> = s
        .iter()
        .map(|m| {
            m["blocks"][2]["text"]["text"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(texts[0].contains("p99 &gt; 2s"), "{}", texts[0]);
    assert!(
        texts[1].contains("Status: triggered → investigating"),
        "{}",
        texts[1]
    );
    assert!(
        texts[1].contains("Severity: high → critical"),
        "{}",
        texts[1]
    );
    assert!(texts[3].contains("supported"), "{}", texts[3]);
    assert!(texts[5].contains("Owner: alice → bob"), "{}", texts[5]);

    // Webhooks: Standard Webhooks events, signed, one webhook-id per message.
    let key = standard_key(WHSEC).unwrap();
    for log in [&hook_a, &hook_b] {
        let all = log.all();
        let mut ids = std::collections::HashSet::new();
        for r in &all {
            verify_standard(
                &key,
                r.header("webhook-id"),
                r.header("webhook-timestamp"),
                r.header("webhook-signature"),
                &r.body,
                chrono::Utc::now().timestamp(),
            )
            .expect("valid signature");
            assert!(ids.insert(r.header("webhook-id").unwrap().to_string()));
        }
        let b = bodies(log);
        assert_eq!(
            b.iter()
                .map(|v| v["type"].as_str().unwrap())
                .collect::<Vec<_>>(),
            events
        );
        assert!(b.iter().all(|v| v["data"]["incident_id"] == id));
        assert_eq!(
            b[1]["data"]["changes"]["status"],
            json!({"from": "triggered", "to": "investigating"})
        );
        assert_eq!(b[1]["data"]["changes"]["severity"]["to"], "critical");
        assert!(b[1]["data"]["changes"].get("title").is_none());
        assert_eq!(b[2]["data"]["hypothesis"]["statement"], "DB pool exhausted");
        assert_eq!(b[3]["data"]["changes"]["status"]["to"], "supported");
        assert_eq!(b[4]["data"]["action"]["owner"], "alice");
        assert_eq!(b[5]["data"]["action"]["owner"], "bob");
        assert_eq!(b[5]["data"]["changes"]["status"]["to"], "in_progress");
    }
    assert_eq!(hook_a.all()[0].path, "/a");
    assert_eq!(hook_b.all()[0].path, "/b");
}

#[tokio::test]
async fn without_destinations_changes_queue_nothing() {
    let app = TestApp::spawn().await;
    let id = app.incident("quiet").await;
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.create(
        &format!("/api/v1/incidents/{id}/actions"),
        &json!({"title": "postmortem"}),
    )
    .await;
    assert_eq!(outbox_len(&app).await, 0);
}

#[tokio::test]
async fn a_change_whose_messages_cannot_be_queued_is_rolled_back_with_them() {
    let (slack, slack_base) = endpoint().await;
    let (hook, base) = endpoint().await;
    let app = TestApp::spawn_with_secrets(&format!(
        "SLACK_WEBHOOK_URL={slack_base}/services/T0/B0/X\nWEBHOOK_URLS={base}/a,{base}/b\nWEBHOOK_SECRET={WHSEC}\n"
    ))
    .await;
    let id = app.incident("Disk full").await;
    eventually("created announced", || async { hook.all().len() == 2 }).await;
    let before = app.snapshot();
    let timeline = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;

    // The third message of the change (to webhook:1) fails to insert, after the change itself
    // and its first two messages were written in the same transaction.
    if app.on_postgres() {
        app.sql_batch(
            "CREATE FUNCTION fail_second_hook() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure'; END $$;
             CREATE TRIGGER fail_second_hook BEFORE INSERT ON outbox FOR EACH ROW
             WHEN (NEW.target = 'webhook:1') EXECUTE FUNCTION fail_second_hook();",
        );
    } else {
        app.sql_batch(
            "CREATE TRIGGER fail_second_hook BEFORE INSERT ON outbox WHEN NEW.target = 'webhook:1'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        );
    }
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": "mitigated"}),
        )
        .await;
    assert_eq!(res.status(), 500);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "internal", "{err}");

    // Neither the change, nor its timeline entry, nor any of its messages were kept.
    assert_eq!(app.snapshot(), before);
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{id}/timeline"))
            .await,
        timeline
    );
    let rows = app.sql_i64("SELECT COUNT(*) FROM outbox WHERE event_type = 'incident.updated'");
    assert_eq!(rows, 0);
    // The same for a new incident.
    let res = app
        .post(
            "/api/v1/incidents",
            &json!({"title": "never", "severity": "low"}),
        )
        .await;
    assert_eq!(res.status(), 500);
    assert_eq!(app.get_json("/api/v1/incidents").await["total"], 1);

    // Without the fault the same change goes through with all three messages.
    app.sql_batch(if app.on_postgres() {
        "DROP TRIGGER fail_second_hook ON outbox;"
    } else {
        "DROP TRIGGER fail_second_hook;"
    });
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": "mitigated"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    eventually("update announced", || async {
        hook.all().len() == 4 && slack.all().len() == 2
    })
    .await;
}

#[tokio::test]
async fn an_incident_opened_by_an_alert_is_announced() {
    let (slack, slack_base) = endpoint().await;
    let app = TestApp::spawn_with_secrets(&format!(
        "SLACK_WEBHOOK_URL={slack_base}/services/T0/B0/X\nALERT_WEBHOOK_TOKEN=tok-1\n"
    ))
    .await;
    let body = json!({"routing_key": "tok-1", "event_action": "trigger", "dedup_key": "disk-1",
        "payload": {"summary": "Disk 95% on db-1", "severity": "critical", "source": "db-1"}});
    let res = app
        .http
        .post(app.url("/api/v1/webhooks/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    eventually("announced", || async { slack.all().len() == 1 }).await;
    let m = &bodies(&slack)[0];
    assert_eq!(slack_event(m), "incident.created");
    assert!(
        m["text"].as_str().unwrap().contains("Disk 95% on db-1"),
        "{m}"
    );
}
