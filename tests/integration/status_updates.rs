//! Status updates (issue 12): structured, on the timeline, the next-due time on the incident,
//! and queued to a local Slack stand-in as their own message kind; bad input writes nothing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::app::{error_code, TestApp};
use crate::fakes::{self, eventually, Log};

async fn record(State(log): State<Arc<Log>>, uri: Uri, h: HeaderMap, body: Bytes) -> StatusCode {
    log.push(&uri, &h, &body);
    StatusCode::OK
}

#[tokio::test]
async fn an_update_goes_on_the_timeline_the_incident_and_to_slack() {
    let log = Arc::new(Log::default());
    let addr = fakes::serve(
        Router::new()
            .route("/{*path}", post(record))
            .with_state(log.clone()),
    )
    .await;
    let app = TestApp::spawn_with_secrets(&format!(
        "SLACK_WEBHOOK_URL=http://{addr}/services/T0/B0/X\n"
    ))
    .await;
    let id = app
        .incident("checkout p99 spike after deploy v2.41.0")
        .await;
    eventually("the incident.created post", || {
        let log = log.clone();
        async move { log.all().len() == 1 }
    })
    .await;
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({"text": "Rolled back v2.41.0; p99 recovering", "impact": "EU checkout errors ~7%",
                    "status": "mitigated", "next_update_at": "30m"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["status"], "mitigated");
    assert_eq!(u["impact"], "EU checkout errors ~7%");
    let due: DateTime<Utc> = u["next_update_at"].as_str().unwrap().parse().unwrap();
    let mins = (due - Utc::now()).num_minutes();
    assert!((28..=30).contains(&mins), "{mins}");
    let inc = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(inc["status"], "mitigated");
    assert_eq!(inc["next_update_at"], u["next_update_at"]);
    assert!(inc["mitigated_at"].is_string());
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let entry = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "status_update")
        .expect("a status_update entry");
    assert!(
        entry["message"]
            .as_str()
            .unwrap()
            .starts_with("Status update (mitigated): Rolled back v2.41.0"),
        "{entry}"
    );
    let list = app
        .get_json(&format!("/api/v1/incidents/{id}/updates"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Slack got it as its own kind (after the status change's incident.updated).
    eventually("the status update post", || {
        let log = log.clone();
        async move {
            log.all()
                .iter()
                .any(|r| String::from_utf8_lossy(&r.body).contains("incident.status_update"))
        }
    })
    .await;
    let post = log
        .all()
        .into_iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("incident.status_update"))
        .unwrap();
    let body = String::from_utf8_lossy(&post.body);
    assert!(body.contains("EU checkout errors"), "{body}");
    let outbox = app.get_json("/api/v1/integrations/outbox?limit=50").await;
    let kinds: Vec<&str> = outbox
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["event_type"].as_str())
        .collect();
    assert!(kinds.contains(&"incident.status_update"), "{kinds:?}");
}

#[tokio::test]
async fn bad_updates_are_4xx_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let id = app.incident("t").await;
    let before = app.snapshot();
    let inc = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    for (body, field) in [
        (json!({"text": " "}), "text"),
        (
            json!({"text": "x", "next_update_at": "whenever"}),
            "next_update_at:",
        ),
        (
            json!({"text": "x", "next_update_at": "2000-01-01T00:00:00Z"}),
            "next_update_at:",
        ),
        (
            json!({"text": "x", "next_update_at": "400h", "status": "resolved"}),
            "next_update_at:",
        ),
    ] {
        let res = app
            .post(&format!("/api/v1/incidents/{id}/updates"), &body)
            .await;
        assert_eq!(res.status(), 422, "{body}");
        let v: Value = res.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({"text": "x", "status": "fixed"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(app.snapshot(), before, "nothing written");
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{id}")).await,
        inc,
        "status unchanged"
    );
    // An update to a deleted incident: 404.
    let res = app
        .req(reqwest::Method::DELETE, &format!("/api/v1/incidents/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({"text": "still here?"}),
        )
        .await;
    assert_eq!(error_code(res, 404).await, "not_found");
    let spec = app.get_json("/openapi.json").await;
    let op = &spec["paths"]["/api/v1/incidents/{id}/updates"]["post"]["responses"];
    for c in ["201", "404", "422"] {
        assert!(op[c].is_object(), "{c}");
    }
}
