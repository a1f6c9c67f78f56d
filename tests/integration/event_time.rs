//! Event time (issue 12): `occurred_at` beside `created_at` on timeline entries and evidence,
//! given by a person, read from the content, or recorded; the timeline in event order.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

fn at(v: &Value) -> DateTime<Utc> {
    v["occurred_at"].as_str().unwrap().parse().unwrap()
}

/// The error message of a 422, asserting the shape.
async fn invalid(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 422);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_timeline_reads_in_event_order_with_the_deploy_first() {
    let app = TestApp::spawn().await;
    let inc = app
        .incident("checkout p99 spike after deploy v2.41.0")
        .await;
    let now = Utc::now();
    let deploy = now - Duration::hours(1);
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // Logs: the earliest stamp is when it happened, marked derived.
    let log = format!(
        "{} ERROR upstream timeout\n{} INFO deploy v2.41.0 finished\n",
        stamp(deploy + Duration::seconds(7)),
        stamp(deploy)
    );
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "log", "title": "api logs", "content": log}),
        )
        .await;
    assert_eq!(ev["occurred_at_source"], "derived");
    assert_eq!(at(&ev), deploy.with_nanosecond0());
    assert_ne!(ev["occurred_at"], ev["created_at"]);
    // A note with a person's time, with offset.
    let note_time = (deploy + Duration::minutes(2)).with_nanosecond0();
    let note = app
        .create(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": "rolled back", "occurred_at": note_time.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap()).to_rfc3339()}),
        )
        .await;
    assert_eq!(note["occurred_at_source"], "user");
    assert!(note.get("assumed_zone").is_none(), "{note}");
    assert_eq!(at(&note), note_time);
    // Evidence without stamps in its text happened when it was recorded.
    let plain = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "note", "title": "slack thread", "content": "customers report errors"}),
        )
        .await;
    assert_eq!(plain["occurred_at_source"], "recorded");
    assert_eq!(plain["occurred_at"], plain["created_at"]);

    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let messages: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "log evidence added: api logs", "{messages:?}");
    assert_eq!(messages[1], "rolled back", "{messages:?}");
    assert_eq!(tl[0]["occurred_at_source"], "derived");
    assert_eq!(tl[0]["occurred_at"], ev["occurred_at"]);
    let times: Vec<DateTime<Utc>> = tl.as_array().unwrap().iter().map(at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Evidence lists in event order too.
    let list = app
        .get_json(&format!("/api/v1/evidence/incident/{inc}"))
        .await;
    assert_eq!(list[0]["id"], ev["id"]);
}

trait Truncate {
    fn with_nanosecond0(self) -> Self;
}

impl Truncate for DateTime<Utc> {
    fn with_nanosecond0(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

#[tokio::test]
async fn a_zone_less_time_is_utc_and_the_answer_says_so() {
    let app = TestApp::spawn().await;
    let inc = app.incident("t").await;
    let note = app
        .create(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": "paged", "occurred_at": "00:00"}),
        )
        .await;
    assert_eq!(note["assumed_zone"], "UTC");
    let t = at(&note);
    assert_eq!(t.format("%H:%M:%S").to_string(), "00:00:00");
    assert!(t <= Utc::now() && Utc::now() - t < Duration::days(1));
    // Not stored: a later read has no assumption to report.
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let stored = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == note["id"])
        .unwrap();
    assert!(stored.get("assumed_zone").is_none());
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "deployment", "title": "v2.41.0", "content": "", "occurred_at": "00:00:01Z"}),
        )
        .await;
    assert!(ev.get("assumed_zone").is_none());
    assert_eq!(ev["occurred_at_source"], "user");
}

#[tokio::test]
async fn a_person_overrides_a_derived_time_and_the_entry_moves_with_it() {
    let app = TestApp::spawn().await;
    let inc = app.incident("t").await;
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "log", "title": "nginx", "content": "10.0.0.1 - - [30/Nov/2026:08:12:40 +0100] \"GET / HTTP/1.1\" 502"}),
        )
        .await;
    assert_eq!(ev["occurred_at"], "2026-11-30T07:12:40Z");
    assert_eq!(ev["occurred_at_source"], "derived");
    let res = app
        .patch(
            &format!("/api/v1/evidence/{}", ev["id"]),
            &json!({"occurred_at": "2026-11-30T07:10:00Z"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["occurred_at_source"], "user");
    assert_eq!(v["occurred_at"], "2026-11-30T07:10:00Z");
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let entry = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["evidence_id"] == ev["id"])
        .unwrap();
    assert_eq!(entry["occurred_at"], "2026-11-30T07:10:00Z");
    assert_eq!(entry["occurred_at_source"], "user");
    // Unknown evidence: 404.
    let res = app
        .patch("/api/v1/evidence/9999", &json!({"occurred_at": "07:00Z"}))
        .await;
    assert_eq!(error_code(res, 404).await, "not_found");
}

#[tokio::test]
async fn bad_times_are_422_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let inc = app.incident("t").await;
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "note", "title": "n", "content": ""}),
        )
        .await;
    let before = app.snapshot();
    let ahead = (Utc::now() + Duration::hours(25)).to_rfc3339();
    for bad in ["soon", "25:61", "", ahead.as_str()] {
        let msg = invalid(
            app.post(
                &format!("/api/v1/incidents/{inc}/timeline"),
                &json!({"message": "m", "occurred_at": bad}),
            )
            .await,
        )
        .await;
        assert!(msg.starts_with("occurred_at:"), "{bad}: {msg}");
        let msg = invalid(
            app.post(
                &format!("/api/v1/evidence/incident/{inc}"),
                &json!({"evidence_type": "log", "title": "l", "content": "x", "occurred_at": bad}),
            )
            .await,
        )
        .await;
        assert!(msg.starts_with("occurred_at:"), "{bad}: {msg}");
        let msg = invalid(
            app.patch(
                &format!("/api/v1/evidence/{}", ev["id"]),
                &json!({"occurred_at": bad}),
            )
            .await,
        )
        .await;
        assert!(msg.starts_with("occurred_at:"), "{bad}: {msg}");
    }
    let msg = invalid(
        app.post(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": "m", "occurred_at": ahead}),
        )
        .await,
    )
    .await;
    assert!(msg.contains("future"), "{msg}");
    assert_eq!(app.snapshot(), before, "nothing written");
    let got = app
        .get_json(&format!("/api/v1/evidence/{}", ev["id"]))
        .await;
    assert_eq!(got["occurred_at"], ev["occurred_at"]);
}

#[tokio::test]
async fn the_spec_documents_the_evidence_patch() {
    let app = TestApp::spawn().await;
    let spec = app.get_json("/openapi.json").await;
    let patch = &spec["paths"]["/api/v1/evidence/{id}"]["patch"];
    for code in ["200", "404", "422"] {
        assert!(patch["responses"][code].is_object(), "{code}: {patch}");
    }
    let schema = &spec["components"]["schemas"]["TimelineEvent"]["properties"];
    assert!(schema["occurred_at_source"].is_object());
}
