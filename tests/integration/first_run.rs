//! The first run of a new user, over the real server: getting the model from a stand-in hub
//! (no network) with the size and free disk checked first, progress, a cancel that stops the
//! transfer and keeps the bytes, a resume that completes and verifies; screenshots filed
//! before the model exists analysed once it loads; the calibration measured after the first
//! load; and the integrations set up from Settings (keys stored, tested, destinations shown).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opslens_core::analysis::AnalysisConfig;
use opslens_models::ModelSettings;
use serde_json::{json, Value};

use crate::app::{png, TestApp};
use crate::fakes::hub;

async fn wait_for(app: &TestApp, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = app.get_json(path).await;
        if ok(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: last {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app with `entry` as its only choice of model, pulled from `endpoint` in 64 KiB chunks.
async fn app_with(entry: opslens_models::ModelEntry, endpoint: String) -> TestApp {
    TestApp::spawn_with_analysis(move |root| {
        let base = AnalysisConfig::isolated(root);
        AnalysisConfig {
            model_id: Some(entry.id.clone()),
            models: ModelSettings {
                offline: false,
                endpoint,
                ..base.models.clone()
            },
            manifest: Some(hub::manifest(entry)),
            pull_chunk_bytes: Some(64 * 1024),
            max_new_tokens: 24,
            poll: Duration::from_millis(200),
            ..base
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_the_model_cancel_resume_then_waiting_screenshots_are_analysed_and_timed() {
    // 16 KiB every 40 ms: the 600 KB weights take about 1.5 s, time to stop them midway.
    let (url, fake) = hub::serve(Duration::from_millis(40)).await;
    let e = hub::entry();
    let total = e.total_size();
    let app = app_with(e.clone(), url).await;

    // Before any model: the screenshot waits, and the status says what the download takes.
    let inc = app.incident("First run").await;
    let res = app.upload(inc, png(1280, 720), "dash.png").await;
    assert_eq!(res.status(), 201);
    let ev: Value = res.json().await.unwrap();
    assert_eq!(ev["analysis_state"], "waiting-for-model");
    let id = ev["id"].as_i64().unwrap();
    let st = app.get_json("/api/v1/test/vlm/status").await;
    assert_eq!(st["state"], "missing", "{st}");
    assert_eq!(st["download"]["download_bytes"], total, "{st}");
    assert_eq!(st["download"]["present_bytes"], 0);
    assert_eq!(st["download"]["fits"], true);
    assert!(st["download"]["free_bytes"].as_u64().unwrap() > 0);
    assert!(st["calibration"].is_null());
    let m = app.get_json("/api/v1/models/tiny-hub").await;
    assert_eq!(m["download"]["download_bytes"], total);

    // Nothing to cancel yet.
    let res = app
        .req(reqwest::Method::DELETE, "/api/v1/models/tiny-hub/pull")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);

    // Start, watch the weights arrive, stop midway.
    let res = app.post("/api/v1/models/tiny-hub/pull", &json!({})).await;
    assert_eq!(res.status(), 202);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["state"], "downloading");
    assert_eq!(p["total_bytes"], total);
    wait_for(&app, "/api/v1/models/tiny-hub", "weights half there", |v| {
        v["pull"]["file"] == "model.safetensors"
            && v["pull"]["done_bytes"].as_u64().unwrap_or(0) > total / 3
    })
    .await;
    let res = app
        .req(reqwest::Method::DELETE, "/api/v1/models/tiny-hub/pull")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["state"], "cancelled", "{p}");
    let kept = p["done_bytes"].as_u64().unwrap();
    assert!(kept > 0 && kept < total, "kept {kept} of {total}");

    // The transfer really stopped: the hub sends nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = fake.sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fake.sent.load(Ordering::SeqCst),
        sent,
        "bytes kept flowing after the cancel"
    );
    let m = app.get_json("/api/v1/models/tiny-hub").await;
    assert_eq!(m["installed"], false);
    assert_eq!(m["pull"]["state"], "cancelled");
    assert_eq!(m["download"]["present_bytes"], kept, "{m}");
    assert_eq!(m["download"]["download_bytes"], total - kept);
    let st = app.get_json(&format!("/api/v1/evidence/{id}")).await;
    assert_eq!(st["analysis_state"], "waiting-for-model");

    // Resume: the weights continue from the kept chunk, the pull completes and verifies.
    let before = fake.ranges.lock().unwrap().len();
    let res = app.post("/api/v1/models/tiny-hub/pull", &json!({})).await;
    assert_eq!(res.status(), 202);
    let m = wait_for(&app, "/api/v1/models/tiny-hub", "pull done", |v| {
        v["pull"]["state"] != "downloading"
    })
    .await;
    assert_eq!(m["pull"]["state"], "done", "{m}");
    assert_eq!(m["installed"], true);
    assert_eq!(m["download"]["download_bytes"], 0);
    let resumed_at = fake.ranges.lock().unwrap()[before..]
        .iter()
        .filter(|(f, _)| f == "model.safetensors")
        .map(|(_, start)| *start)
        .min()
        .unwrap();
    assert!(resumed_at > 0, "the weights were fetched again from byte 0");
    let dir = m["dir"].as_str().unwrap();
    let report = opslens_models::verify(&e, std::path::Path::new(dir));
    assert!(report.ok, "{report:?}");

    // The waiting screenshot is analysed once the model has loaded …
    let done = wait_for(&app, &format!("/api/v1/evidence/{id}"), "analysed", |v| {
        v["analysis_state"] == "done"
    })
    .await;
    assert!(!done["content"].as_str().unwrap().is_empty());
    // … and then, the queue idle, the calibration is measured and reported.
    let st = wait_for(&app, "/api/v1/test/vlm/status", "calibrated", |v| {
        !v["calibration"].is_null()
    })
    .await;
    let c = &st["calibration"];
    assert_eq!(c["model"], "tiny-hub");
    assert_eq!(c["image"], "1280x720");
    assert_eq!(c["device"], st["device"]);
    let ttft = c["seconds_to_first_token"].as_f64().unwrap();
    assert!(ttft > 0.0 && ttft < 60.0, "{c}");
    assert!(c["analysis_seconds"].as_f64().unwrap() >= ttft);
    assert!(st["download"].is_null());
    assert!(app.data_dir().join("calibration.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_bigger_than_the_free_disk_is_refused_with_the_figures() {
    let mut e = hub::entry();
    e.id = "too-big".into();
    // A petabyte of weights: no test machine has that free.
    let w = e
        .files
        .iter_mut()
        .find(|f| f.name == "model.safetensors")
        .unwrap();
    w.size = 1 << 50;
    let (url, fake) = hub::serve(Duration::ZERO).await;
    let app = app_with(e, url).await;
    let m = app.get_json("/api/v1/models/too-big").await;
    assert_eq!(m["download"]["fits"], false, "{m}");
    let res = app.post("/api/v1/models/too-big/pull", &json!({})).await;
    assert_eq!(res.status(), 507);
    let body: Value = res.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("not enough disk space") && msg.contains("1024.0 TiB"),
        "{msg}"
    );
    assert!(msg.contains("free"), "{msg}");
    // Nothing was asked of the hub, nothing started.
    assert_eq!(fake.sent.load(Ordering::SeqCst), 0);
    let m = app.get_json("/api/v1/models/too-big").await;
    assert!(m["pull"].is_null(), "{m}");
    let st = app.get_json("/api/v1/test/vlm/status").await;
    assert_eq!(st["download"]["fits"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_keys_are_set_from_settings_tested_and_shown_with_their_destination() {
    use axum::routing::post;
    // A Slack incoming webhook answers an empty message 400 `no_text` while it is live.
    let slack = crate::fakes::serve(axum::Router::new().route(
        "/services/T0/B0/secret",
        post(|| async { (axum::http::StatusCode::BAD_REQUEST, "no_text") }),
    ))
    .await;
    let mut app = TestApp::spawn().await;
    let ov = app.get_json("/api/v1/integrations").await;
    let s = ov["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "slack")
        .unwrap()
        .clone();
    assert_eq!(s["configured"], false);
    assert_eq!(s["keys"], json!(["SLACK_WEBHOOK_URL"]));
    assert!(s["destination"].is_null());
    assert!(s["sends"]
        .as_array()
        .unwrap()
        .contains(&json!("incident.created")));
    assert!(s["recent_errors"].is_array());
    let pd = ov["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "pagerduty")
        .unwrap();
    assert_eq!(pd["sends"], json!([]));
    assert!(pd["what"].as_str().unwrap().contains("posts nothing"));

    // Not configured: the check says which key to set.
    let c: Value = app
        .post("/api/v1/integrations/slack/test", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["status"], "not_configured", "{c}");
    assert!(c["message"].as_str().unwrap().contains("SLACK_WEBHOOK_URL"));

    let hook = format!("http://{slack}/services/T0/B0/secret");
    let res = app
        .req(
            reqwest::Method::PUT,
            "/api/v1/integrations/keys/SLACK_WEBHOOK_URL",
        )
        .json(&json!({ "value": hook }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["store"], "file", "{stored}");
    assert!(
        !stored.to_string().contains("secret\""),
        "the value is never answered"
    );
    let file = std::fs::read_to_string(app.data_dir().join("secrets.env")).unwrap();
    assert!(
        file.contains(&format!("SLACK_WEBHOOK_URL='{hook}'")),
        "{file}"
    );

    // Tested with the stored key, before any restart.
    let c: Value = app
        .post("/api/v1/integrations/slack/test", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["configured"], true);

    // Refusals name the problem and store nothing.
    for (path, body, code) in [
        ("/api/v1/integrations/keys/NOPE", json!({"value": "x"}), 404),
        (
            "/api/v1/integrations/keys/GITHUB_TOKEN",
            json!({"value": "  "}),
            422,
        ),
        (
            "/api/v1/integrations/keys/GITHUB_TOKEN",
            json!({"value": "a\nb"}),
            422,
        ),
        (
            "/api/v1/integrations/keys/GITHUB_TOKEN",
            json!({"v": "x"}),
            422,
        ),
    ] {
        let res = app
            .req(reqwest::Method::PUT, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), code, "{path} {body}");
    }
    let res = app.post("/api/v1/integrations/nope/test", &json!({})).await;
    assert_eq!(res.status(), 404);
    assert!(!std::fs::read_to_string(app.data_dir().join("secrets.env"))
        .unwrap()
        .contains("GITHUB_TOKEN"));

    // After a restart the app uses it: configured, the destination shown without its secret.
    app.restart().await;
    let ov = app.get_json("/api/v1/integrations").await;
    let s = ov["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "slack")
        .unwrap()
        .clone();
    assert_eq!(s["configured"], true, "{s}");
    let dest = s["destination"].as_str().unwrap();
    assert!(dest.starts_with(&format!("http://{slack}/…")), "{dest}");
    assert!(!dest.contains("secret"), "{dest}");
}
