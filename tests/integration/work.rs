//! Timeline, hypotheses, actions and search.

use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

#[tokio::test]
async fn hypotheses_and_actions_are_tracked_on_the_timeline() {
    let app = TestApp::spawn().await;
    let id = app.incident("Checkout errors").await;
    let other = app.incident("unrelated").await;
    let ev = app
        .create(&format!("/api/v1/evidence/incident/{id}"), &json!({"evidence_type": "deployment", "title": "deploy 4f2a", "content": "merged #812"}))
        .await;
    let foreign = app
        .create(
            &format!("/api/v1/evidence/incident/{other}"),
            &json!({"evidence_type": "note", "title": "n"}),
        )
        .await;

    let h = app
        .create(
            &format!("/api/v1/incidents/{id}/hypotheses"),
            &json!({"statement": "deploy 4f2a broke the pool", "evidence_ids": [ev["id"]]}),
        )
        .await;
    assert_eq!(h["status"], "proposed");
    assert_eq!(h["origin"], "human");
    assert_eq!(h["evidence_ids"], json!([ev["id"]]));
    // evidence of another incident cannot be linked
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/hypotheses"),
            &json!({"statement": "s", "evidence_ids": [foreign["id"]]}),
        )
        .await;
    assert_eq!(error_code(res, 409).await, "conflict");
    // an unknown evidence id is the body's fault (422), the incident exists
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/hypotheses"),
            &json!({"statement": "s", "evidence_ids": [999_999]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .patch(
            &format!("/api/v1/hypotheses/{}", h["id"]),
            &json!({"evidence_ids": [999_999]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .patch(
            &format!("/api/v1/hypotheses/{}", h["id"]),
            &json!({"status": "supported"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "supported");
    error_code(
        app.patch(
            &format!("/api/v1/hypotheses/{}", h["id"]),
            &json!({"status": "maybe"}),
        )
        .await,
        422,
    )
    .await;

    let a = app
        .create(
            &format!("/api/v1/incidents/{id}/actions"),
            &json!({"title": "roll back 4f2a", "owner": "ana", "due_at": "2026-11-28T10:00:00Z"}),
        )
        .await;
    assert_eq!(a["status"], "open");
    assert_eq!(a["due_at"], "2026-11-28T10:00:00Z");
    let res = app
        .patch(
            &format!("/api/v1/actions/{}", a["id"]),
            &json!({"status": "done"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "done");
    error_code(
        app.patch("/api/v1/actions/9999", &json!({"status": "done"}))
            .await,
        404,
    )
    .await;

    let hs = app
        .get_json(&format!("/api/v1/incidents/{id}/hypotheses"))
        .await;
    assert_eq!(hs.as_array().unwrap().len(), 1);
    let acts = app
        .get_json(&format!("/api/v1/incidents/{id}/actions"))
        .await;
    assert_eq!(acts.as_array().unwrap().len(), 1);

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
        [
            "incident_created",
            "evidence_added",
            "hypothesis_added",
            "hypothesis_updated",
            "action_added",
            "action_updated"
        ]
    );
}

#[tokio::test]
async fn timeline_notes_sort_by_when_they_happened() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let e = app
        .create(&format!("/api/v1/incidents/{id}/timeline"), &json!({"message": "error rate began climbing", "occurred_at": "2020-01-01T00:00:00Z", "kind": "observation"}))
        .await;
    assert_eq!(e["kind"], "observation");
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    assert_eq!(
        tl[0]["message"], "error rate began climbing",
        "earlier events come first"
    );
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/timeline"),
            &json!({"message": "x", "kind": "status_changed"}),
        )
        .await;
    error_code(res, 422).await;
    error_code(
        app.post(
            &format!("/api/v1/incidents/{id}/timeline"),
            &json!({"message": ""}),
        )
        .await,
        422,
    )
    .await;
    error_code(
        app.post("/api/v1/incidents/5555/timeline", &json!({"message": "m"}))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn search_finds_incidents_and_evidence() {
    let app = TestApp::spawn().await;
    let id = app.incident("Redis latency").await;
    app.create(&format!("/api/v1/evidence/incident/{id}"), &json!({"evidence_type": "log", "title": "redis log", "content": "MISCONF snapshotting failed: disk full"}))
        .await;
    let r = app.get_json("/api/v1/search?q=snapshot").await;
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["kind"], "evidence");
    assert_eq!(hits[0]["incident_id"], id);
    assert!(hits[0]["snippet"]
        .as_str()
        .unwrap()
        .contains("[snapshotting]"));
    let r = app.get_json("/api/v1/search?q=redis").await;
    assert_eq!(r["hits"].as_array().unwrap().len(), 2);
    // FTS syntax in user input is literal, never a 500
    let r = app.get_json("/api/v1/search?q=%22redis%20OR%20NEAR(").await;
    assert!(r["hits"].is_array());
    error_code(app.get("/api/v1/search").await, 400).await;
    // the incident list's text filter also matches through evidence
    let l = app.get_json("/api/v1/incidents?q=misconf").await;
    assert_eq!(l["total"], 1);
}

#[tokio::test]
async fn export_as_json_and_markdown() {
    let app = TestApp::spawn().await;
    let id = app.incident("Queue backlog").await;
    app.create(
        &format!("/api/v1/evidence/incident/{id}"),
        &json!({"evidence_type": "log", "title": "worker", "content": "retry ```storm```"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{id}/hypotheses"),
        &json!({"statement": "consumer lag from GC pauses"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{id}/actions"),
        &json!({"title": "tune GC", "owner": "li"}),
    )
    .await;
    let j = app
        .get_json(&format!("/api/v1/incidents/{id}/export"))
        .await;
    assert_eq!(j["incident"]["title"], "Queue backlog");
    assert_eq!(j["evidence"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["hypotheses"][0]["statement"],
        "consumer lag from GC pauses"
    );
    let res = app
        .get(&format!("/api/v1/incidents/{id}/export?format=markdown"))
        .await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let md = res.text().await.unwrap();
    assert!(md.starts_with(&format!("# Incident #{id}: Queue backlog")));
    assert!(md.contains("- [ ] tune GC [open] — li"));
    // Times are ISO-8601 with their offset (issue 12).
    let opened = md.lines().find(|l| l.contains("Incident opened")).unwrap();
    assert!(
        opened.starts_with("- `20") && opened.contains("+00:00` "),
        "{opened}"
    );
    assert!(md.contains("~~~~\nretry ```storm```\n~~~~"), "{md}");
    error_code(
        app.get(&format!("/api/v1/incidents/{id}/export?format=pdf"))
            .await,
        400,
    )
    .await;
    error_code(app.get("/api/v1/incidents/404/export").await, 404).await;
}
