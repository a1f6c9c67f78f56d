//! Incidents: the seed's create, list/filter/paginate, patch, delete, restart persistence.

use serde_json::json;

use crate::app::{error_code, png, TestApp};

#[tokio::test]
async fn seed_create_incident_returns_it_with_an_id() {
    let app = TestApp::spawn().await;
    let v = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "Checkout 5xx spike", "description": "p99 up", "severity": "high"}),
        )
        .await;
    assert!(v["id"].as_i64().unwrap() > 0);
    assert_eq!(v["title"], "Checkout 5xx spike");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["status"], "triggered");
    let got = app
        .get_json(&format!("/api/v1/incidents/{}", v["id"]))
        .await;
    assert_eq!(got, v);
    // the guide's other severity, and the default when none is given
    let low = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "t", "severity": "low"}),
        )
        .await;
    assert_eq!(low["severity"], "low");
    let dflt = app
        .create("/api/v1/incidents", &json!({"title": "t"}))
        .await;
    assert_eq!(dflt["severity"], "medium");
}

#[tokio::test]
async fn list_filters_searches_and_paginates() {
    let app = TestApp::spawn().await;
    for (t, sev) in [
        ("db pool exhausted", "critical"),
        ("cache miss storm", "low"),
        ("db replica lag", "high"),
    ] {
        app.create("/api/v1/incidents", &json!({"title": t, "severity": sev}))
            .await;
    }
    let all = app.get_json("/api/v1/incidents").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][0]["title"], "db replica lag", "newest first");
    let crit = app.get_json("/api/v1/incidents?severity=critical").await;
    assert_eq!(crit["total"], 1);
    assert_eq!(crit["items"][0]["title"], "db pool exhausted");
    let db = app.get_json("/api/v1/incidents?q=db").await;
    assert_eq!(db["total"], 2);
    let page = app.get_json("/api/v1/incidents?limit=2&offset=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (page["limit"].as_u64(), page["offset"].as_u64()),
        (Some(2), Some(2))
    );
    let code = error_code(app.get("/api/v1/incidents?status=sleeping").await, 400).await;
    assert_eq!(code, "invalid_query");
}

#[tokio::test]
async fn patch_changes_fields_and_records_the_timeline() {
    let app = TestApp::spawn().await;
    let id = app.incident("API latency").await;
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": "resolved", "severity": "critical"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "resolved");
    assert!(v["resolved_at"].is_string() && v["acknowledged_at"].is_string());
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let kinds: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["incident_created", "severity_changed", "status_changed"]
    );
    // reopening clears resolved_at
    let v: serde_json::Value = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": "investigating"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(v["resolved_at"].is_null());
    let code = error_code(
        app.patch(&format!("/api/v1/incidents/{id}"), &json!({"title": "  "}))
            .await,
        422,
    )
    .await;
    assert_eq!(code, "invalid");
    error_code(
        app.patch("/api/v1/incidents/999", &json!({"title": "x"}))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn delete_removes_everything_attached_including_unshared_images() {
    let app = TestApp::spawn().await;
    let a = app.incident("a").await;
    let b = app.incident("b").await;
    let shared = png(40, 30);
    assert_eq!(app.upload(a, shared.clone(), "s.png").await.status(), 201);
    assert_eq!(app.upload(b, shared, "s.png").await.status(), 201);
    assert_eq!(app.upload(a, png(20, 20), "only-a.png").await.status(), 201);
    let blobs = || {
        std::fs::read_dir(app.data_dir().join("blobs"))
            .unwrap()
            .count()
    };
    assert_eq!(blobs(), 2, "same bytes stored once");
    let res = app
        .req(reqwest::Method::DELETE, &format!("/api/v1/incidents/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(blobs(), 1, "the image b still uses is kept");
    error_code(app.get(&format!("/api/v1/incidents/{a}")).await, 404).await;
    error_code(
        app.get(&format!("/api/v1/evidence/incident/{a}")).await,
        404,
    )
    .await;
    let ev = app
        .get_json(&format!("/api/v1/evidence/incident/{b}"))
        .await;
    let img = app
        .get(&format!("/api/v1/evidence/{}/image", ev[0]["id"]))
        .await;
    assert_eq!(img.status(), 200);
}

#[tokio::test]
async fn restart_keeps_incidents_evidence_and_images() {
    let mut app = TestApp::spawn().await;
    let id = app.incident("survives restart").await;
    let log = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "log", "title": "api", "content": "ERROR 503", "source": "kubectl"}),
        )
        .await;
    let shot: serde_json::Value = app
        .upload(id, png(64, 48), "dash.png")
        .await
        .json()
        .await
        .unwrap();
    let token_before = app.token();
    app.restart().await;
    assert_eq!(app.token(), token_before, "the token persists");
    let inc = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(inc["title"], "survives restart");
    assert_eq!(inc["evidence_count"], 2);
    assert_eq!(
        app.get_json(&format!("/api/v1/evidence/{}", log["id"]))
            .await,
        log
    );
    assert_eq!(
        app.get_json(&format!("/api/v1/evidence/{}", shot["id"]))
            .await,
        shot
    );
    let img = app
        .get(&format!("/api/v1/evidence/{}/image", shot["id"]))
        .await;
    assert_eq!(img.bytes().await.unwrap().to_vec(), png(64, 48));
}
