//! One GitHub deployment (or merge) is one piece of evidence whichever path brings it in: a
//! `deployment_status` / `pull_request` webhook, a REST sync, or both in either order.
//! And `GET /integrations` lists recent errors, not only the last one.

use chrono::{Duration, SecondsFormat, Utc};
use opslens_integrations::signature::hmac_hex;
use serde_json::{json, Value};

use crate::app::TestApp;
use crate::fakes::{self, github};

const GH_SECRET: &str = "It's a Secret to Everybody";

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An app whose GitHub sync talks to the fake, with webhooks on; plus one open incident.
async fn setup() -> (TestApp, std::sync::Arc<github::GhState>, i64) {
    let now = Utc::now();
    let gh = github::state(
        &rfc(now - Duration::minutes(20)),
        &rfc(now - Duration::minutes(14)),
    );
    gh.limit_once
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let addr = fakes::serve(github::router(gh.clone())).await;
    *gh.base.lock().unwrap() = format!("http://{addr}");
    let app = TestApp::spawn_with_secrets(&format!(
        "GITHUB_TOKEN={}\nGITHUB_API_URL=http://{addr}\nGITHUB_REPOS=o/r\nGITHUB_WEBHOOK_SECRET=\"{GH_SECRET}\"\nSYNC_RETRY_BASE_MS=10\n",
        github::TOKEN
    ))
    .await;
    let id = app.incident("Checkout errors").await;
    (app, gh, id)
}

async fn deliver(app: &TestApp, event: &str, delivery: &str, body: &Value) -> u16 {
    let body = body.to_string();
    let sig = format!(
        "sha256={}",
        hmac_hex(GH_SECRET.as_bytes(), &[body.as_bytes()])
    );
    app.http
        .post(app.url("/api/v1/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The fake's deployment 7 with one status, as GitHub sends it in a webhook.
fn deployment_status(gh: &github::GhState, state: &str) -> Value {
    json!({
        "action": "created",
        "deployment_status": {"state": state, "created_at": gh.deployed_at, "description": "Deployed"},
        "deployment": {"id": 7, "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "ref": "main",
            "environment": "production", "created_at": gh.deployed_at, "creator": {"login": "deploy-bot"}},
        "repository": {"full_name": "o/r"}, "sender": {"login": "deploy-bot"}
    })
}

/// The fake's PR #3, merged, as GitHub sends it in a webhook.
fn merged_pull(gh: &github::GhState) -> Value {
    json!({
        "action": "closed", "number": 3,
        "pull_request": {"number": 3, "title": "Raise DB pool timeout", "html_url": "https://github.com/o/r/pull/3",
            "user": {"login": "alice"}, "updated_at": gh.merged_at, "merged": true, "merged_at": gh.merged_at,
            "merge_commit_sha": "c4295bd74fb0f4fbd0a4c5d7c5bd1d9b2a1f0e9a", "base": {"ref": "main"}},
        "repository": {"full_name": "o/r"}, "sender": {"login": "alice"}
    })
}

async fn sync_github(app: &TestApp) -> Value {
    let res = app
        .req(reqwest::Method::POST, "/api/v1/integrations/github/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// (deployment evidence of deployment 7, evidence of PR #3) on the incident.
async fn change_evidence(app: &TestApp, id: i64) -> (Vec<Value>, Vec<Value>) {
    let ev = app
        .get_json(&format!("/api/v1/evidence/incident/{id}"))
        .await;
    let ev = ev.as_array().unwrap();
    let deploys = ev
        .iter()
        .filter(|e| {
            e["title"]
                .as_str()
                .unwrap()
                .starts_with("Deploy o/r@f95f852")
        })
        .cloned()
        .collect();
    let pulls = ev
        .iter()
        .filter(|e| e["title"].as_str().unwrap().starts_with("Merged o/r#3"))
        .cloned()
        .collect();
    (deploys, pulls)
}

#[tokio::test]
async fn a_webhook_then_a_sync_of_the_same_deployment_and_merge_is_one_evidence_each() {
    let (app, gh, id) = setup().await;
    assert_eq!(
        deliver(
            &app,
            "deployment_status",
            "d-1",
            &deployment_status(&gh, "in_progress")
        )
        .await,
        202
    );
    assert_eq!(
        deliver(&app, "pull_request", "p-1", &merged_pull(&gh)).await,
        202
    );
    let (deploys, pulls) = change_evidence(&app, id).await;
    assert_eq!(
        (deploys.len(), pulls.len()),
        (1, 1),
        "{deploys:?} {pulls:?}"
    );
    assert!(deploys[0]["title"]
        .as_str()
        .unwrap()
        .contains("(in_progress)"));
    let deploy_id = deploys[0]["id"].clone();

    // The sync sees the same deployment, now `success` with both statuses: the stored evidence
    // is brought up to date in place; the merge is already there.
    let report = sync_github(&app).await;
    assert_eq!(
        report["new_items"], 1,
        "only the deployment changed: {report}"
    );
    let (deploys, pulls) = change_evidence(&app, id).await;
    assert_eq!(
        (deploys.len(), pulls.len()),
        (1, 1),
        "{deploys:?} {pulls:?}"
    );
    assert_eq!(deploys[0]["id"], deploy_id, "updated, not duplicated");
    assert!(deploys[0]["title"].as_str().unwrap().contains("(success)"));
    let content: Value = serde_json::from_str(deploys[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["statuses"].as_array().unwrap().len(), 2);

    // A second sync, and a redelivered older status, change nothing.
    let before = app.snapshot();
    assert_eq!(sync_github(&app).await["new_items"], 0);
    assert_eq!(
        deliver(
            &app,
            "deployment_status",
            "d-2",
            &deployment_status(&gh, "success")
        )
        .await,
        202
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_sync_then_a_webhook_of_the_same_deployment_and_merge_is_one_evidence_each() {
    let (app, gh, id) = setup().await;
    let report = sync_github(&app).await;
    assert_eq!(report["new_items"], 2, "{report}");
    let before = app.snapshot();
    assert_eq!(
        deliver(
            &app,
            "deployment_status",
            "d-1",
            &deployment_status(&gh, "success")
        )
        .await,
        202
    );
    assert_eq!(
        deliver(&app, "pull_request", "p-1", &merged_pull(&gh)).await,
        202
    );
    // The webhook's one-status copy is not newer than the sync's: nothing changes.
    assert_eq!(app.snapshot(), before);
    let (deploys, pulls) = change_evidence(&app, id).await;
    assert_eq!(
        (deploys.len(), pulls.len()),
        (1, 1),
        "{deploys:?} {pulls:?}"
    );
    let content: Value = serde_json::from_str(deploys[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["statuses"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn integrations_overview_lists_recent_errors_with_their_times() {
    // GitHub answers 401 to a wrong token: every sync fails and is recorded.
    let gh = github::state(&rfc(Utc::now()), &rfc(Utc::now()));
    gh.limit_once
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let addr = fakes::serve(github::router(gh.clone())).await;
    let app = TestApp::spawn_with_secrets(&format!(
        "GITHUB_TOKEN=wrong-token\nGITHUB_API_URL=http://{addr}\nGITHUB_REPOS=o/r\nSYNC_RETRY_BASE_MS=10\n"
    ))
    .await;
    app.incident("needs a window").await;
    let start = Utc::now();
    for _ in 0..3 {
        let res = app
            .req(reqwest::Method::POST, "/api/v1/integrations/github/sync")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 502);
    }
    let v = app.get_json("/api/v1/integrations").await;
    let gh_info = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "github")
        .unwrap()
        .clone();
    let errors = gh_info["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{gh_info}");
    let times: Vec<chrono::DateTime<Utc>> = errors
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(times.iter().all(|t| *t >= start - Duration::seconds(1)));
    assert!(
        errors[0]["message"].as_str().unwrap().contains("401"),
        "{gh_info}"
    );
    assert!(
        !v.to_string().contains("wrong-token"),
        "no secret in the answer"
    );
    // Integrations without errors have an empty list, not a missing field.
    let pd = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "pagerduty")
        .unwrap()
        .clone();
    assert_eq!(pd["recent_errors"], json!([]));
}
