//! PagerDuty and GitHub syncs against local fakes: pagination, rate limits, 5xx, malformed
//! answers, idempotency on a second sync, change correlation, and the health checks.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;

use crate::app::TestApp;
use crate::fakes::{self, github, pagerduty};

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn app_with(pd: &str, gh: &str) -> TestApp {
    TestApp::spawn_with_secrets(&format!(
        "PAGERDUTY_API_TOKEN={}\nPAGERDUTY_API_URL=http://{pd}\nGITHUB_TOKEN={}\nGITHUB_API_URL=http://{gh}\nGITHUB_REPOS=o/r\nSYNC_RETRY_BASE_MS=10\n",
        pagerduty::TOKEN,
        github::TOKEN
    ))
    .await
}

async fn sync(app: &TestApp, name: &str) -> (u16, Value) {
    let res = app
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/integrations/{name}/sync"),
        )
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn pagerduty_sync_pages_waits_out_429_retries_5xx_and_is_idempotent() {
    let alert_at = rfc(Utc::now() - Duration::minutes(5));
    let pd = pagerduty::state(&alert_at);
    let pd_addr = fakes::serve(pagerduty::router(pd.clone())).await;
    let app = app_with(&pd_addr.to_string(), "127.0.0.1:9").await;

    let start = Instant::now();
    let (status, report) = sync(&app, "pagerduty").await;
    assert_eq!(status, 200, "{report}");
    // The 429 said `ratelimit-reset: 1`: the client waited about a second, then went on.
    assert!(start.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(report["incidents_created"], 3, "{report}");
    // 3 incidents × (2 log entries + 1 alert).
    assert_eq!(report["new_items"], 9, "{report}");
    // 429 + two pages.
    assert_eq!(pd.incident_calls.load(Ordering::SeqCst), 3);
    let calls = pd.log.all();
    assert!(
        calls.iter().any(|c| c.path.contains("offset=2")),
        "second page fetched"
    );
    assert!(calls
        .iter()
        .all(|c| c.header("accept") == Some("application/vnd.pagerduty+json;version=2")));

    let list = app.get_json("/api/v1/incidents").await;
    assert_eq!(list["total"], 3);
    let first = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["external_id"] == "PT4KHLK")
        .unwrap()
        .clone();
    assert_eq!(first["source"], "pagerduty");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["status"], "triggered");
    let id = first["id"].as_i64().unwrap();
    let ev = app
        .get_json(&format!("/api/v1/evidence/incident/{id}"))
        .await;
    assert_eq!(ev.as_array().unwrap().len(), 1);
    assert_eq!(ev[0]["evidence_type"], "alert");
    let before = app.snapshot();

    // Second sync: nothing new, nothing duplicated.
    let (status, report) = sync(&app, "pagerduty").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["new_items"], 0);
    assert_eq!(report["incidents_created"], 0);
    assert_eq!(app.snapshot(), before);

    // A status change upstream becomes a status change here, once.
    pd.statuses.lock().unwrap()[0] = "resolved".into();
    let (_, report) = sync(&app, "pagerduty").await;
    assert_eq!(report["incidents_updated"], 1, "{report}");
    let inc = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(inc["status"], "resolved");

    let overview = app.get_json("/api/v1/integrations").await;
    let pdi = overview["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "pagerduty")
        .unwrap();
    assert_eq!(pdi["configured"], true);
    assert_eq!(pdi["state"]["items_synced"], 9);
    assert!(pdi["state"]["cursor"].is_string());
    assert!(pdi["state"]["last_error"].is_null());
}

#[tokio::test]
async fn malformed_pagerduty_answer_is_a_502_recorded_as_the_last_error() {
    let pd = pagerduty::state(&rfc(Utc::now()));
    pd.rate_limit_once.store(false, Ordering::SeqCst);
    pd.malformed.store(true, Ordering::SeqCst);
    let pd_addr = fakes::serve(pagerduty::router(pd.clone())).await;
    let app = app_with(&pd_addr.to_string(), "127.0.0.1:9").await;
    let before = app.snapshot();
    let (status, body) = sync(&app, "pagerduty").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream");
    assert_eq!(app.snapshot(), before);
    let overview = app.get_json("/api/v1/integrations").await;
    let err = overview["integrations"][0]["state"]["last_error"]
        .as_str()
        .unwrap();
    assert!(err.contains("malformed"), "{err}");
    assert!(!err.contains(pagerduty::TOKEN));
}

#[tokio::test]
async fn github_sync_follows_links_waits_for_reset_and_correlates_with_alerts() {
    let now = Utc::now();
    let pd = pagerduty::state(&rfc(now - Duration::minutes(5)));
    pd.rate_limit_once.store(false, Ordering::SeqCst);
    let pd_addr = fakes::serve(pagerduty::router(pd.clone())).await;
    let gh = github::state(
        &rfc(now - Duration::minutes(20)),
        &rfc(now - Duration::minutes(14)),
    );
    let gh_addr = fakes::serve(github::router(gh.clone())).await;
    *gh.base.lock().unwrap() = format!("http://{gh_addr}");
    let app = app_with(&pd_addr.to_string(), &gh_addr.to_string()).await;

    assert_eq!(sync(&app, "pagerduty").await.0, 200);
    let (status, report) = sync(&app, "github").await;
    assert_eq!(status, 200, "{report}");
    // PR #3 (merged in the window) and deployment 7, on each of the three incidents; the
    // unmerged PR #4 and the 2020 PR #1 are left out.
    assert_eq!(report["new_items"], 6, "{report}");
    assert_eq!(report["hypotheses"], 6, "{report}");
    assert!(
        gh.log.all().iter().any(|c| c.path.contains("page=2")),
        "link followed"
    );
    assert_eq!(
        gh.log.count("/repos/o/r/pulls"),
        3,
        "403 rate limit, page 1, page 2"
    );

    let list = app.get_json("/api/v1/incidents?limit=10").await;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["external_id"] == "PT4KHLK")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ev = app
        .get_json(&format!("/api/v1/evidence/incident/{id}"))
        .await;
    let ev = ev.as_array().unwrap();
    let alert = ev.iter().find(|e| e["evidence_type"] == "alert").unwrap()["id"]
        .as_i64()
        .unwrap();
    let deploys: Vec<i64> = ev
        .iter()
        .filter(|e| e["evidence_type"] == "deployment")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(deploys.len(), 2);
    let hyps = app
        .get_json(&format!("/api/v1/incidents/{id}/hypotheses"))
        .await;
    let hyps = hyps.as_array().unwrap();
    assert_eq!(hyps.len(), 2);
    for h in hyps {
        assert_eq!(h["origin"], "correlation");
        assert_eq!(h["status"], "proposed");
        let linked: Vec<i64> = h["evidence_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(linked.contains(&alert), "{h}");
        assert!(deploys.iter().any(|d| linked.contains(d)), "{h}");
    }
    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    assert!(tl
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains("Merged o/r#3")));

    let before = app.snapshot();
    let (_, report) = sync(&app, "github").await;
    assert_eq!(report["new_items"], 0, "{report}");
    assert_eq!(report["hypotheses"], 0);
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn test_all_tries_configured_integrations_and_names_missing_keys() {
    let pd = pagerduty::state(&rfc(Utc::now()));
    let pd_addr = fakes::serve(pagerduty::router(pd.clone())).await;
    let gh = github::state(&rfc(Utc::now()), &rfc(Utc::now()));
    let gh_addr = fakes::serve(github::router(gh.clone())).await;
    let app = app_with(&pd_addr.to_string(), &gh_addr.to_string()).await;
    let v = app.get_json("/api/v1/integrations/test/all").await;
    let by = |n: &str| {
        v["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("pagerduty")["status"], "ok", "{v}");
    assert!(by("pagerduty")["latency_ms"].is_u64());
    assert_eq!(by("github")["status"], "ok", "{v}");
    assert_eq!(by("slack")["status"], "not_configured");
    assert!(by("slack")["message"]
        .as_str()
        .unwrap()
        .contains("SLACK_WEBHOOK_URL"));
    assert_eq!(pd.log.count("/abilities"), 1);
    assert_eq!(gh.log.count("/rate_limit"), 1);
    assert!(!v.to_string().contains(pagerduty::TOKEN));

    // A wrong token is an error with a message, not a crash.
    let bad = TestApp::spawn_with_secrets(&format!(
        "PAGERDUTY_API_TOKEN=wrong\nPAGERDUTY_API_URL=http://{pd_addr}\n"
    ))
    .await;
    let v = bad.get_json("/api/v1/integrations/test/all").await;
    assert_eq!(v["integrations"][0]["status"], "error");
    assert!(v["integrations"][0]["message"]
        .as_str()
        .unwrap()
        .contains("401"));

    // Unconfigured sync is a 409 that names the keys.
    let (status, body) = sync(&bad, "github").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GITHUB_TOKEN"));
}
