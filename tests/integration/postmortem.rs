//! Postmortem (issue 12): the template from the incident's data, versioned saves (a stale one
//! is 409 with the current version, nothing overwritten), pinned timeline entries, timeline
//! edits and deletes, and the HTML / Markdown+screenshots exports.

use serde_json::{json, Value};

use crate::app::{error_code, png, TestApp};

async fn put(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.req(reqwest::Method::PUT, path)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_draft_from_the_incident_then_versioned_saves() {
    let app = TestApp::spawn().await;
    let id = app
        .create("/api/v1/incidents", &json!({"title": "checkout p99 spike", "description": "after deploy v2.41.0", "severity": "high"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let deploy = app
        .create(
            &format!("/api/v1/incidents/{id}/timeline"),
            &json!({"message": "deploy v2.41.0 finished", "occurred_at": "00:00:01Z"}),
        )
        .await;
    app.create(
        &format!("/api/v1/incidents/{id}/timeline"),
        &json!({"message": "noise"}),
    )
    .await;
    let res = app
        .patch(
            &format!("/api/v1/timeline/{}", deploy["id"]),
            &json!({"pinned": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["pinned"], true);
    let h = app
        .create(
            &format!("/api/v1/incidents/{id}/hypotheses"),
            &json!({"statement": "v2.41.0 exhausted the DB pool"}),
        )
        .await;
    app.patch(
        &format!("/api/v1/hypotheses/{}", h["id"]),
        &json!({"status": "supported"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{id}/actions"),
        &json!({"title": "Alert on pool saturation", "owner": "ana"}),
    )
    .await;
    for st in ["mitigated", "resolved"] {
        app.patch(&format!("/api/v1/incidents/{id}"), &json!({"status": st}))
            .await;
    }

    let draft = app
        .get_json(&format!("/api/v1/incidents/{id}/postmortem"))
        .await;
    assert_eq!(
        (draft["version"].as_i64(), draft["draft"].as_bool()),
        (Some(0), Some(true))
    );
    let s = &draft["sections"];
    assert!(s["summary"]
        .as_str()
        .unwrap()
        .contains("checkout p99 spike"));
    assert!(
        s["impact"].as_str().unwrap().contains("resolved after"),
        "{s}"
    );
    assert_eq!(s["root_cause"], "v2.41.0 exhausted the DB pool");
    let tl = s["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 1, "pinned entries only: {tl:?}");
    assert_eq!(tl[0]["text"], "deploy v2.41.0 finished");
    assert!(s["follow_ups"][0]
        .as_str()
        .unwrap()
        .contains("Alert on pool saturation"));

    // Two tabs start from the draft; the first save wins, the second gets 409 and the current one.
    let mut a = s.clone();
    a["went_well"] = json!("Rollback took 4 minutes");
    let res = put(
        &app,
        &format!("/api/v1/incidents/{id}/postmortem"),
        &json!({"version": 0, "sections": a}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let saved: Value = res.json().await.unwrap();
    assert_eq!(
        (saved["version"].as_i64(), saved["draft"].as_bool()),
        (Some(1), Some(false))
    );
    assert!(saved["author"].is_string());
    let mut b = s.clone();
    b["went_well"] = json!("the other tab");
    let res = put(
        &app,
        &format!("/api/v1/incidents/{id}/postmortem"),
        &json!({"version": 0, "sections": b}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "stale_version");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("version:"));
    assert_eq!(v["current"]["version"], 1);
    assert_eq!(
        v["current"]["sections"]["went_well"],
        "Rollback took 4 minutes"
    );
    let now = app
        .get_json(&format!("/api/v1/incidents/{id}/postmortem"))
        .await;
    assert_eq!(
        now["sections"]["went_well"], "Rollback took 4 minutes",
        "nothing overwritten"
    );
    let res = put(
        &app,
        &format!("/api/v1/incidents/{id}/postmortem"),
        &json!({"version": 1, "sections": b}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 2);
    // Bad input: 422 naming the field, nothing saved.
    let mut big = s.clone();
    big["root_cause"] = json!("x".repeat(20_001));
    let res = put(
        &app,
        &format!("/api/v1/incidents/{id}/postmortem"),
        &json!({"version": 2, "sections": big}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("sections.root_cause"));
    let res = put(
        &app,
        &format!("/api/v1/incidents/{id}/postmortem"),
        &json!({"version": 2, "sections": {"nonsense": 1}}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{id}/postmortem"))
            .await["version"],
        2
    );
    let res = put(
        &app,
        "/api/v1/incidents/999/postmortem",
        &json!({"version": 0, "sections": {}}),
    )
    .await;
    assert_eq!(error_code(res, 404).await, "not_found");
}

#[tokio::test]
async fn timeline_entries_are_edited_and_deleted_within_limits() {
    let app = TestApp::spawn().await;
    let id = app.incident("t").await;
    let note = app
        .create(
            &format!("/api/v1/incidents/{id}/timeline"),
            &json!({"message": "typo"}),
        )
        .await;
    let res = app
        .patch(
            &format!("/api/v1/timeline/{}", note["id"]),
            &json!({"message": "fixed", "occurred_at": "2026-11-30T07:00:00Z"}),
        )
        .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (v["message"].as_str(), v["occurred_at_source"].as_str()),
        (Some("fixed"), Some("user"))
    );
    let res = app
        .patch(
            &format!("/api/v1/timeline/{}", note["id"]),
            &json!({"occurred_at": "never"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    // OpsLens's own entries can be pinned but not rewritten.
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let opened = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "incident_created")
        .unwrap()
        .clone();
    let res = app
        .patch(
            &format!("/api/v1/timeline/{}", opened["id"]),
            &json!({"message": "rewritten"}),
        )
        .await;
    assert_eq!(error_code(res, 409).await, "conflict");
    let res = app
        .patch(
            &format!("/api/v1/timeline/{}", opened["id"]),
            &json!({"pinned": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "note", "title": "n", "content": "x"}),
        )
        .await;
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let added = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["evidence_id"] == ev["id"])
        .unwrap()
        .clone();
    let del = |eid: &Value| app.req(reqwest::Method::DELETE, &format!("/api/v1/timeline/{eid}"));
    assert_eq!(
        error_code(del(&added["id"]).send().await.unwrap(), 409).await,
        "conflict"
    );
    assert_eq!(del(&note["id"]).send().await.unwrap().status(), 204);
    assert_eq!(
        error_code(del(&note["id"]).send().await.unwrap(), 404).await,
        "not_found"
    );
}

async fn export(app: &TestApp, id: i64, format: &str) -> reqwest::Response {
    app.get(&format!(
        "/api/v1/incidents/{id}/postmortem/export?format={format}"
    ))
    .await
}

#[tokio::test]
async fn exports_carry_the_screenshots() {
    let app = TestApp::spawn().await;
    let id = app.incident("checkout p99").await;
    let shot = png(40, 30);
    assert_eq!(
        app.upload(id, shot.clone(), "grafana.png").await.status(),
        201
    );
    let res = export(&app, id, "html").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&shot);
    assert!(
        html.contains(&format!("src=\"data:image/png;base64,{b64}\"")),
        "screenshot embedded"
    );
    assert!(html.contains("<h2>Root cause</h2>"));
    // Times are ISO-8601 with their offset, to the second (no microseconds for a reader).
    let opened = html
        .split("<b>Opened:</b> <time datetime=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the opening time");
    assert!(
        chrono::DateTime::parse_from_rfc3339(opened).is_ok() && opened.ends_with("+00:00"),
        "{opened}"
    );
    assert!(!opened.contains('.'), "to the second: {opened}");
    assert!(
        !html.contains("src=\"http"),
        "nothing fetched from elsewhere"
    );
    let res = export(&app, id, "zip").await;
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip = res.bytes().await.unwrap().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pm.zip");
    std::fs::write(&path, &zip).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print('\\n'.join(z.namelist())); print(z.read('postmortem.md').decode())", path.to_str().unwrap()])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("screenshots/evidence-"), "{text}");
        assert!(text.contains("](screenshots/evidence-"), "{text}");
    } else {
        assert_eq!(&zip[..4], b"PK\x03\x04");
    }
    // The format is an enum in the spec; anything else is the query's 400.
    let res = export(&app, id, "pdf").await;
    assert_eq!(error_code(res, 400).await, "invalid_query");
    let res = app
        .get("/api/v1/incidents/999/postmortem/export?format=html")
        .await;
    assert_eq!(error_code(res, 404).await, "not_found");
}
