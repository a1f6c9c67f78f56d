//! `POST /evidence/{id}/compare` ("what changed?"): the real model code (the tiny committed
//! checkpoint) gets both screenshots in one prompt and answers, labelled as machine-written;
//! bad input is named; with no model the answer is a 503 saying what to do. The tiny model's
//! words are noise, so the test checks the structure, not the wording.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opslens_core::analysis::compare::LABEL;
use opslens_core::analysis::AnalysisConfig;
use serde_json::{json, Value};

use crate::app::{error_code, png, TestApp};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

async fn compare(app: &TestApp, id: i64, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/evidence/{id}/compare"), &body)
        .await
}

async fn shot(app: &TestApp, inc: i64, w: u32, h: u32, name: &str) -> i64 {
    let res = app.upload(inc, png(w, h), name).await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loaded_model_says_what_changed_between_two_screenshots() {
    let app = TestApp::spawn_with_analysis(|root| {
        let mut c = AnalysisConfig::isolated(root);
        c.model_id = Some("tiny-qwen3-vl-test".into());
        c.models.model_dir = Some(tiny());
        c.max_new_tokens = 16;
        c
    })
    .await;
    let inc = app.incident("checkout p99 after deploy v2.41.0").await;
    let before = shot(&app, inc, 128, 96, "before.png").await;
    let after = shot(&app, inc, 160, 96, "after.png").await;

    let start = Instant::now();
    let c: Value = loop {
        let res = compare(
            &app,
            before,
            json!({"with": after, "question": "the p99 panel?"}),
        )
        .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
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
    assert_eq!(c["label"], LABEL);
    assert_eq!(c["before_id"], before);
    assert_eq!(c["after_id"], after);
    assert_eq!(c["model"], "tiny-qwen3-vl-test");
    assert!(!c["answer"].as_str().unwrap().is_empty(), "{c}");
    let n = c["generated_tokens"].as_u64().unwrap();
    assert!(n > 0 && n <= 16, "generated {n} tokens, asked at most 16");

    // Bad input is named and asks nothing of the model.
    let note = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "log", "title": "l", "content": "503 upstream"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let res = compare(&app, before, json!({"with": before})).await;
    assert_eq!(res.status(), 422);
    let msg = res.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("not itself"), "{msg}");
    let res = compare(&app, before, json!({"with": note})).await;
    assert_eq!(res.status(), 422);
    let msg = res.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&format!("#{note}")) && msg.contains("not a screenshot"),
        "{msg}"
    );
    assert_eq!(
        error_code(compare(&app, before, json!({"with": 4711})).await, 404).await,
        "not_found"
    );
    assert_eq!(
        error_code(compare(&app, 4711, json!({"with": after})).await, 404).await,
        "not_found"
    );
    let res = compare(&app, before, json!({"with": after, "colour": "red"})).await;
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn without_a_model_what_changed_is_a_503_saying_what_to_do() {
    let app = TestApp::spawn().await;
    let inc = app.incident("Checkout 5xx").await;
    let a = shot(&app, inc, 128, 96, "a.png").await;
    let b = shot(&app, inc, 160, 96, "b.png").await;
    let res = compare(&app, a, json!({"with": b})).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_missing", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("opslens models pull"),
        "{body}"
    );
}
