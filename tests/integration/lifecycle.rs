//! Lifecycle (issue 12): `mitigated_at` beside `acknowledged_at`/`resolved_at`, and the time
//! to acknowledge, mitigate and resolve in the incident JSON; the open-only list.

use serde_json::{json, Value};

use crate::app::TestApp;

async fn set_status(app: &TestApp, id: i64, status: &str) -> Value {
    let res = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"status": status}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn mitigation_has_a_time_and_the_metrics_follow_the_lifecycle() {
    let app = TestApp::spawn().await;
    let id = app.incident("checkout p99").await;
    let v = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    for k in [
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "tta_seconds",
        "ttm_seconds",
        "ttr_seconds",
    ] {
        assert!(v[k].is_null(), "{k}: {v}");
    }
    let v = set_status(&app, id, "acknowledged").await;
    assert!(v["tta_seconds"].as_i64().unwrap() >= 0);
    assert!(v["mitigated_at"].is_null());
    let v = set_status(&app, id, "mitigated").await;
    let mitigated = v["mitigated_at"].clone();
    assert!(mitigated.is_string(), "{v}");
    assert!(v["ttm_seconds"].as_i64().unwrap() >= v["tta_seconds"].as_i64().unwrap());
    assert!(v["ttr_seconds"].is_null());
    let v = set_status(&app, id, "resolved").await;
    assert_eq!(
        v["mitigated_at"], mitigated,
        "mitigation keeps its first time"
    );
    assert!(v["ttr_seconds"].as_i64().unwrap() >= v["ttm_seconds"].as_i64().unwrap());
    // Reopened: no longer mitigated or resolved.
    let v = set_status(&app, id, "investigating").await;
    assert!(
        v["mitigated_at"].is_null() && v["resolved_at"].is_null(),
        "{v}"
    );
    assert!(v["ttm_seconds"].is_null() && v["ttr_seconds"].is_null());
    assert!(v["tta_seconds"].is_i64(), "acknowledgement stays");
    // Resolved straight from triggered: mitigated then too.
    let other = app.incident("flap").await;
    let v = set_status(&app, other, "resolved").await;
    assert_eq!(v["mitigated_at"], v["resolved_at"]);
    // Created already mitigated.
    let v = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "late", "status": "mitigated"}),
        )
        .await;
    assert!(
        v["mitigated_at"].is_string() && v["resolved_at"].is_null(),
        "{v}"
    );
}

#[tokio::test]
async fn the_list_can_show_open_incidents_only() {
    let app = TestApp::spawn().await;
    let open = app.incident("open one").await;
    let done = app.incident("done one").await;
    set_status(&app, done, "closed").await;
    let all = app.get_json("/api/v1/incidents").await;
    assert_eq!(all["total"], 2);
    let only = app.get_json("/api/v1/incidents?open=true").await;
    assert_eq!(only["total"], 1);
    assert_eq!(only["items"][0]["id"], open);
    let res = app.get("/api/v1/incidents?open=maybe").await;
    assert_eq!(res.status(), 400);
    let spec = app.get_json("/openapi.json").await;
    let props = &spec["components"]["schemas"]["Incident"]["properties"];
    for k in ["mitigated_at", "tta_seconds", "ttm_seconds", "ttr_seconds"] {
        assert!(props[k].is_object(), "{k} missing from the spec");
    }
}
