//! `POST /incidents/{id}/postmortem/summary-draft`: the real model code (the tiny committed
//! checkpoint, text only) drafts a summary labelled as machine-written and saves nothing; with
//! no model the answer is a 503 saying what to do. The tiny model's words are noise, so the
//! tests check the structure and the label, not the wording.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opslens_core::analysis::summary::LABEL;
use opslens_core::analysis::AnalysisConfig;
use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

async fn draft(app: &TestApp, incident: i64) -> reqwest::Response {
    app.post(
        &format!("/api/v1/incidents/{incident}/postmortem/summary-draft"),
        &json!({}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loaded_model_drafts_a_labelled_summary_and_saves_nothing() {
    let app = TestApp::spawn_with_analysis(|root| {
        let mut c = AnalysisConfig::isolated(root);
        c.model_id = Some("tiny-qwen3-vl-test".into());
        c.models.model_dir = Some(tiny());
        c.max_new_tokens = 24;
        c
    })
    .await;
    let inc = app
        .incident("checkout p99 spike after deploy v2.41.0")
        .await;
    let res = app
        .post(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": "deploy v2.41.0 to checkout", "occurred_at": "2026-11-30T07:12:58Z"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let before = app
        .get_json(&format!("/api/v1/incidents/{inc}/postmortem"))
        .await;

    // No screenshot was queued, so the model is not loaded yet: the first ask starts the
    // load and says so; asking again once it is loaded gets the draft.
    let start = Instant::now();
    let mut first = None;
    let d: Value = loop {
        let res = draft(&app, inc).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        first.get_or_insert((status, body.clone()));
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "model_loading", "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the model never loaded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, body) = first.unwrap();
    assert!(
        status == 503
            && body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("loading"),
        "the first ask finds the model unloaded: {status} {body}"
    );
    assert_eq!(d["label"], LABEL);
    assert_eq!(d["model"], "tiny-qwen3-vl-test");
    let text = d["text"].as_str().unwrap();
    assert!(!text.is_empty(), "{d}");
    let n = d["generated_tokens"].as_u64().unwrap();
    assert!(n > 0 && n <= 24, "generated {n} tokens, asked at most 24");
    let block = d["block"].as_str().unwrap();
    let mut lines = block.lines();
    assert_eq!(lines.next(), Some(format!("> **{LABEL}**").as_str()));
    assert!(
        lines.all(|l| l.starts_with('>')),
        "every line of the block is quoted under the label: {block}"
    );
    // The draft is only handed out: the postmortem is as it was.
    let after = app
        .get_json(&format!("/api/v1/incidents/{inc}/postmortem"))
        .await;
    assert_eq!(before, after);

    // An unknown incident is a 404, the model not asked.
    assert_eq!(error_code(draft(&app, 4711).await, 404).await, "not_found");
}

#[tokio::test]
async fn without_a_model_the_draft_is_a_503_saying_what_to_do() {
    let app = TestApp::spawn().await;
    let inc = app.incident("Checkout 5xx").await;
    let res = draft(&app, inc).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_missing", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("opslens models pull"), "{msg}");
    let status = app.get_json("/api/v1/test/vlm/status").await;
    assert_eq!(status["state"], "missing", "the status agrees: {status}");
    assert_eq!(error_code(draft(&app, 4711).await, 404).await, "not_found");
}
