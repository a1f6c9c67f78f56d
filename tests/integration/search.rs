//! `GET /api/v1/search` over every kind of entry, through the real server: each kind found by
//! a word that occurs only there, tokens kept whole, marks, filters, grouping, bad input.

use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

fn kinds(r: &Value) -> Vec<String> {
    r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap().to_string())
        .collect()
}

/// One incident with one entry of every kind, each holding a word found nowhere else.
async fn seeded(app: &TestApp) -> i64 {
    let id = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "Checkout errors after deploy v2.41.0",
                    "description": "checkout-api answers HTTP 503 from 14:07:32; quokka", "severity": "high"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "log", "title": "gateway log",
                    "content": "upstream db-1.prod.internal (10.0.3.7:5432) refused: narwhal"}),
        )
        .await;
    app.create(
        &format!("/api/v1/incidents/{id}/hypotheses"),
        &json!({"statement": "Connection pool exhaustion after the ocelot release"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{id}/actions"),
        &json!({"title": "Add pool saturation alert", "owner": "Wilhelmina"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{id}/timeline"),
        &json!({"message": "Started rollback; pangolin dashboards look calmer."}),
    )
    .await;
    let res = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({"text": "Rollback in progress, axolotl team engaged", "impact": "EU checkout degraded",
                    "status": "mitigated"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .req(
            reqwest::Method::PUT,
            &format!("/api/v1/incidents/{id}/postmortem"),
        )
        .json(&json!({"version": 0, "sections": {"summary": "Bad deploy", "root_cause": "a capybara config flag"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Findings are written by the analysis worker (a model run); here the same UPDATE it makes
    // is done on the database itself (the SQLite file or the PostgreSQL database), so the index
    // triggers see what they see in production.
    let findings = json!({"summary": "Error rate spike", "panels": [{"title": "Requests", "metric": "wombat_errors_total",
                   "anomalies": [{"description": "spike", "start": "14:05"}]}],
                   "errors": [{"message": "upstream timeout", "code": "ECONNRESET"}],
                   "raw": "raw text never indexed: platypus", "parse": "json"})
    .to_string();
    let ev = ev["id"].as_i64().unwrap();
    match &app.database {
        Some(url) => {
            let url = url.clone();
            // The blocking client runs its own runtime: not inside this test's.
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.execute(
                    "UPDATE evidence SET findings = $1 WHERE id = $2",
                    &[&findings, &ev],
                )
                .unwrap();
            })
            .join()
            .unwrap();
        }
        None => {
            let c = rusqlite::Connection::open(app.data_dir().join("opslens.db")).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            c.execute(
                "UPDATE evidence SET findings = ?1 WHERE id = ?2",
                rusqlite::params![findings, ev],
            )
            .unwrap();
        }
    }
    id
}

#[tokio::test]
async fn every_kind_is_found_by_a_word_only_it_holds() {
    let app = TestApp::spawn().await;
    let id = seeded(&app).await;
    for (word, kind) in [
        ("quokka", "incident"),
        ("narwhal", "evidence"),
        ("wombat_errors_total", "finding"),
        ("econnreset", "finding"),
        ("ocelot", "hypothesis"),
        ("wilhelmina", "action"),
        ("pangolin", "note"),
        ("axolotl", "status_update"),
        ("capybara", "postmortem"),
    ] {
        let r = app.get_json(&format!("/api/v1/search?q={word}")).await;
        assert_eq!(kinds(&r), [kind], "{word}: {r}");
        let hit = &r["hits"][0];
        assert_eq!(hit["incident_id"], id);
        assert!(
            hit["snippet"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&format!("[{word}]")),
            "{word}: {hit}"
        );
        assert_eq!(r["groups"][0]["incident_id"], id);
        assert_eq!(r["groups"][0]["status"], "mitigated");
    }
    // The model's raw text is not indexed (it repeats the rest, unparsed).
    let r = app.get_json("/api/v1/search?q=platypus").await;
    assert_eq!(kinds(&r), Vec::<String>::new());
    // "rollback" is in the note and the status update: both, grouped under the incident.
    let r = app.get_json("/api/v1/search?q=rollback").await;
    let mut k = kinds(&r);
    k.sort();
    assert_eq!(k, ["note", "status_update"], "{r}");
    assert_eq!(r["groups"].as_array().unwrap().len(), 1);
    assert_eq!(r["groups"][0]["hits"].as_array().unwrap().len(), 2);
    assert_eq!(r["complete"], true);
}

#[tokio::test]
async fn tokens_stay_whole_and_are_marked_whole() {
    let app = TestApp::spawn().await;
    let id = seeded(&app).await;
    let snippet = |r: &Value| r["hits"][0]["snippet"].as_str().unwrap().to_string();
    for (q, mark) in [
        ("v2.41.0", "[v2.41.0]"),
        ("checkout-api", "[checkout-api]"),
        ("%22HTTP%20503%22", "[HTTP 503]"),
        ("db-1.prod.internal", "[db-1.prod.internal]"),
        ("10.0.3.7", "[10.0.3.7:5432]"),
    ] {
        let r = app
            .get_json(&format!("/api/v1/search?q={q}&kind=incident,evidence"))
            .await;
        assert!(snippet(&r).contains(mark), "{q}: {r}");
        assert_eq!(r["hits"][0]["incident_id"], id);
    }
    // Pieces of a token are not words of their own: no `07` inside 14:07:32, no `41`.
    for piece in ["07", "41", "prod"] {
        let r = app.get_json(&format!("/api/v1/search?q={piece}")).await;
        assert_eq!(kinds(&r), Vec::<String>::new(), "{piece}: {r}");
    }
    // An edit re-indexes: the old word is gone, the new one found.
    app.patch(
        &format!("/api/v1/incidents/{id}"),
        &json!({"description": "now about a dingo"}),
    )
    .await;
    assert_eq!(
        kinds(&app.get_json("/api/v1/search?q=quokka").await),
        Vec::<String>::new()
    );
    assert_eq!(
        kinds(&app.get_json("/api/v1/search?q=dingo").await),
        ["incident"]
    );
}

#[tokio::test]
async fn filters_and_grouping() {
    let app = TestApp::spawn().await;
    let a = seeded(&app).await;
    let b = app
        .create(
            "/api/v1/incidents",
            &json!({"title": "Rollback of search-svc", "severity": "low"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = app.get_json("/api/v1/search?q=rollback").await;
    let groups: Vec<i64> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["incident_id"].as_i64().unwrap())
        .collect();
    assert_eq!(groups.len(), 2, "{r}");
    assert!(groups.contains(&a) && groups.contains(&b));
    // Every hit sits in the group of its incident.
    for g in r["groups"].as_array().unwrap() {
        for h in g["hits"].as_array().unwrap() {
            assert_eq!(h["incident_id"], g["incident_id"]);
        }
    }
    let only = |r: &Value| -> Vec<i64> {
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["incident_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        only(&app.get_json("/api/v1/search?q=rollback&severity=low").await),
        [b]
    );
    assert_eq!(
        only(
            &app.get_json("/api/v1/search?q=rollback&status=mitigated")
                .await
        ),
        [a]
    );
    assert_eq!(
        kinds(&app.get_json("/api/v1/search?q=rollback&kind=note").await),
        ["note"]
    );
    // A status change moves the incident's entries to the new status.
    app.patch(
        &format!("/api/v1/incidents/{b}"),
        &json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(
        only(
            &app.get_json("/api/v1/search?q=rollback&status=resolved")
                .await
        ),
        [b]
    );
    let year_ago = (chrono::Utc::now() - chrono::Duration::days(365)).to_rfc3339();
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = app
        .get_json(&format!(
            "/api/v1/search?q=rollback&from={}&to={}",
            urlencode(&year_ago),
            urlencode(&soon)
        ))
        .await;
    assert_eq!(only(&r).len(), 2, "{r}");
    let r = app
        .get_json(&format!(
            "/api/v1/search?q=rollback&to={}",
            urlencode(&year_ago)
        ))
        .await;
    assert_eq!(only(&r), Vec::<i64>::new(), "{r}");
    // Deleting an incident takes its entries out of the index.
    let res = app
        .req(reqwest::Method::DELETE, &format!("/api/v1/incidents/{a}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(only(&app.get_json("/api/v1/search?q=rollback").await), [b]);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn bad_queries_are_4xx_naming_the_problem() {
    let app = TestApp::spawn().await;
    seeded(&app).await;
    let long = "a".repeat(10 * 1024);
    for (q, what) in [
        ("", "required"),
        ("%22", "no words"),
        ("*", "no words"),
        ("NEAR(", ""),
        ("%28%29%5E%2D", "no words"),
        (long.as_str(), "characters"),
        ("x*", "prefix"),
        ("rollback&kind=notes", "kind"),
        ("rollback&colour=red", "colour"),
        ("rollback&status=asleep", "status"),
        ("rollback&from=yesterday", "from"),
        (
            "rollback&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "time range",
        ),
        ("rollback&limit=0", "limit"),
        ("rollback&limit=500", "limit"),
    ] {
        let res = app.get(&format!("/api/v1/search?q={q}")).await;
        if q == "NEAR(" {
            // A word, not an operator.
            assert_eq!(res.status(), 200);
            continue;
        }
        let status = res.status().as_u16();
        assert_eq!(status, 400, "{q}");
        let v: Value = res.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(what), "{q}: {msg}");
    }
    error_code(app.get("/api/v1/search").await, 400).await;
}

#[test]
fn the_cli_prints_hits_by_incident() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::app::wait_for_serve(&data);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
            .args(args)
            .env("OPSLENS_DATA_DIR", &data)
            .env_remove("OPSLENS_ADDR")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&["incident", "create", "checkout errors after v2.41.0"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["note", "rolled back checkout-api to v2.40.3"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["search", "checkout-api"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("#1 checkout errors after v2.41.0  [triggered, medium]"),
        "{out}"
    );
    assert!(
        out.contains("  note          Note: rolled back [checkout-api] to v2.40.3"),
        "{out}"
    );
    let (ok, out, err) = run(&["search", "v2.41.0", "--kind", "incident", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hits"][0]["snippet"], "checkout errors after [v2.41.0]");
    let (ok, _, err) = run(&["search", "\""]);
    assert!(!ok);
    assert!(err.contains("no words to search for"), "{err}");
    server.kill().ok();
    server.wait().ok();
}

#[tokio::test]
async fn a_phrase_deep_in_a_long_text_is_found() {
    // Past the 16,384th word and after a word seen hundreds of times: where a PostgreSQL
    // tsvector keeps no positions (the entry is then checked on its text).
    let app = TestApp::spawn().await;
    let id = app.incident("Long log").await;
    let content = format!(
        "{} lorem ipsum. zebra quagga ended here",
        "filler lorem ".repeat(9_000)
    );
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "log", "title": "huge log", "content": content}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = app.get_json("/api/v1/search?q=%22zebra%20quagga%22").await;
    assert_eq!(kinds(&r), ["evidence"], "{r}");
    assert_eq!(r["hits"][0]["id"], ev);
    let r = app.get_json("/api/v1/search?q=%22ipsum%20zebra%22").await;
    assert_eq!(kinds(&r), ["evidence"], "{r}");
    // Words that are there, but not next to each other: no hit.
    for q in [
        "%22quagga%20zebra%22",
        "%22filler%20zebra%22",
        "%22ended%20lorem%22",
    ] {
        let r = app.get_json(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(kinds(&r), Vec::<String>::new(), "{q}: {r}");
    }
    let l = app
        .get_json("/api/v1/incidents?q=%22zebra%20quagga%22")
        .await;
    assert_eq!(l["total"], 1);
}
