//! The desktop against a team server: a "team" server and a "laptop" server (a fake screen,
//! pointed at the team one), both real servers on real sockets. A capture on the laptop lands
//! on the team server; with the team server down captures spool on the laptop and arrive once,
//! in order, when it is back; a repeated idempotency key makes one row; findings made by the
//! laptop's model (the tiny checkpoint) arrive with the upload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opslens::server::Server;
use opslens_core::uplink::{TeamConfig, Uplink};
use opslens_domain::{CaptureError, CaptureTarget, ScreenSource, Shot};
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{error_code, png, TestApp};

/// A screen whose every grab is a new picture: grab n is (10 + n)×20 pixels, so the order of
/// arrival can be read from the widths. `fixed` returns those bytes instead (a real panel).
#[derive(Debug, Default)]
struct CountingScreen {
    grabs: AtomicU32,
    fixed: Option<Vec<u8>>,
}

impl ScreenSource for CountingScreen {
    fn grab(&self, target: &CaptureTarget) -> Result<Shot, CaptureError> {
        let n = self.grabs.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(bytes) = &self.fixed {
            let img = image::load_from_memory(bytes).unwrap();
            return Ok(Shot {
                png: bytes.clone(),
                width: img.width(),
                height: img.height(),
                label: target.to_string(),
            });
        }
        let (w, h) = (10 + n, 20);
        Ok(Shot {
            png: png(w, h),
            width: w,
            height: h,
            label: target.to_string(),
        })
    }
}

/// The laptop's link to `team_addr`, spooling in `spool_root`, retrying every 200 ms at most.
fn uplink_to(team_addr: SocketAddr, token: &str, spool_root: &Path) -> Arc<Uplink> {
    let mut cfg = TeamConfig::new(&format!("http://{team_addr}/"), token, spool_root).unwrap();
    cfg.retry_max = Duration::from_millis(200);
    Uplink::open(cfg).unwrap()
}

/// A laptop server: the fake screen, captures going to the team server through `uplink`.
async fn laptop(
    screen: Arc<CountingScreen>,
    uplink: Arc<Uplink>,
    analysis: Option<opslens_core::analysis::AnalysisConfig>,
) -> TestApp {
    TestApp::spawn_opts(|root| opslens::server::StartOptions {
        secrets_from_env: false,
        extras: opslens_api::Extras {
            screen: Some(screen),
            uplink: Some(uplink),
            ..Default::default()
        },
        next_free_port: false,
        analysis: Some(
            analysis.unwrap_or_else(|| opslens_core::analysis::AnalysisConfig::isolated(root)),
        ),
        blobs: Default::default(),
    })
    .await
}

async fn wait_until(what: &str, secs: u64, mut ok: impl AsyncFnMut() -> Option<Value>) -> Value {
    let start = Instant::now();
    loop {
        if let Some(v) = ok().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshots(team: &TestApp, incident: i64) -> Vec<Value> {
    let v = team
        .get_json(&format!("/api/v1/evidence/incident/{incident}"))
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["evidence_type"] == "screenshot")
        .cloned()
        .collect()
}

/// The laptop's link status once `n` captures are up and none waits.
async fn uploaded(laptop: &TestApp, n: u64) -> Value {
    wait_until("the spool to drain", 60, async || {
        let s = laptop.get_json("/api/v1/team").await;
        (s["waiting"] == 0 && s["uploaded"] == n).then_some(s)
    })
    .await
}

fn spool_entries(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("team-spool"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && !n.ends_with(".analysis.json")
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_capture_on_the_laptop_is_filed_on_the_team_server() {
    let team = TestApp::spawn().await;
    let older = team.incident("Checkout 5xx").await;
    let named = team.incident("API latency").await;
    let spool = tempfile::tempdir().unwrap();
    let screen = Arc::new(CountingScreen::default());
    let up = uplink_to(team.server().addr, &team.token(), spool.path());
    let laptop = laptop(screen.clone(), up, None).await;

    // Not configured on the team server itself.
    let s = team.get_json("/api/v1/team").await;
    assert_eq!(s["configured"], false, "{s}");

    // Named incident.
    let res = laptop
        .post("/api/v1/capture", &json!({"incident_id": named}))
        .await;
    assert_eq!(res.status(), 202);
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["incident_id"], named, "{q}");
    assert_eq!(q["width"], 11);
    assert!(q["capture_id"].as_str().unwrap().len() >= 16, "{q}");
    assert_eq!(
        q["server_url"],
        format!("http://{}", team.server().addr),
        "{q}"
    );
    let s = uploaded(&laptop, 1).await;
    assert_eq!(s["reachable"], true, "{s}");
    assert_eq!(s["last"]["capture_id"], q["capture_id"], "{s}");
    assert_eq!(s["last"]["with_findings"], false, "{s}");
    let shots = screenshots(&team, named).await;
    assert_eq!(shots.len(), 1, "{shots:?}");
    let ev = &shots[0];
    assert_eq!(ev["source"], "capture");
    assert_eq!(ev["image"]["width"], 11);
    assert_eq!(ev["id"], s["last"]["evidence_id"]);
    // No local model: the team's queue takes it (its workers; none here, so it waits).
    assert_eq!(ev["analysis_state"], "waiting-for-model", "{ev}");
    let img = team
        .get(&format!("/api/v1/evidence/{}/image", ev["id"]))
        .await;
    assert_eq!(img.status(), 200);
    assert_eq!(img.bytes().await.unwrap().to_vec(), png(11, 20));

    // No incident named: the team server's rule (the open incident changed most recently).
    let res = laptop.post("/api/v1/capture", &json!({})).await;
    assert_eq!(res.status(), 202);
    uploaded(&laptop, 2).await;
    assert_eq!(screenshots(&team, named).await.len(), 2);
    assert_eq!(screenshots(&team, older).await.len(), 0);
    // The spool is empty and nothing was stored on the laptop itself.
    assert!(spool_entries(spool.path()).is_empty());
    let local = laptop.get_json("/api/v1/incidents").await;
    assert_eq!(local.as_array().map_or(0, Vec::len), 0, "{local}");
}

#[tokio::test]
async fn with_the_team_server_down_captures_spool_and_arrive_once_in_order() {
    let mut team = TestApp::spawn().await;
    let inc = team.incident("Checkout 5xx").await;
    let addr = team.server().addr;
    let token = team.token();
    let spool = tempfile::tempdir().unwrap();
    let screen = Arc::new(CountingScreen::default());
    let laptop = laptop(screen, uplink_to(addr, &token, spool.path()), None).await;

    // One arrives while the server is up.
    let res = laptop
        .post("/api/v1/capture", &json!({"incident_id": inc}))
        .await;
    assert_eq!(res.status(), 202);
    uploaded(&laptop, 1).await;

    // The team server goes away; captures are acknowledged once they are on the laptop's disk.
    team.server.take().unwrap().stop().await.unwrap();
    let mut keys = Vec::new();
    for n in 1..=4 {
        let res = laptop
            .post("/api/v1/capture", &json!({"incident_id": inc}))
            .await;
        assert_eq!(res.status(), 202);
        let q: Value = res.json().await.unwrap();
        assert!(q["waiting"].as_u64().unwrap() >= 1, "{q}");
        keys.push(q["capture_id"].as_str().unwrap().to_string());
        // On disk (record and image) when the answer came.
        let on_disk = spool_entries(spool.path());
        assert!(
            on_disk
                .iter()
                .any(|p| p.to_string_lossy().contains(&keys[n - 1])),
            "{on_disk:?}"
        );
    }
    let s = wait_until("the laptop to notice", 30, async || {
        let s = laptop.get_json("/api/v1/team").await;
        (s["reachable"] == false && s["waiting"] == 4).then_some(s)
    })
    .await;
    assert!(
        s["last_error"].as_str().unwrap().contains("cannot reach"),
        "{s}"
    );
    assert_eq!(spool_entries(spool.path()).len(), 4);

    // Back on the same address: all four arrive, in capture order, once.
    let server = Server::start_with(&team.data_dir(), addr, false)
        .await
        .unwrap();
    team.server = Some(server);
    let s = uploaded(&laptop, 5).await;
    assert_eq!(s["reachable"], true);
    assert_eq!(s["last"]["capture_id"], keys[3].as_str(), "{s}");
    // Give a duplicate the time to show up, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shots = screenshots(&team, inc).await;
    let widths: Vec<i64> = shots
        .iter()
        .map(|e| e["image"]["width"].as_i64().unwrap())
        .collect();
    assert_eq!(widths, [11, 12, 13, 14, 15], "{shots:?}");
    let ids: Vec<i64> = shots.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(spool_entries(spool.path()).is_empty());
}

#[tokio::test]
async fn a_restarted_laptop_uploads_what_its_spool_kept() {
    let team = TestApp::spawn().await;
    let inc = team.incident("Checkout 5xx").await;
    let spool = tempfile::tempdir().unwrap();
    // Spooled while nothing listens (port 9, discard), then the laptop "restarts" pointed at
    // the real server: the entries left on disk go up.
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    {
        let up = uplink_to(dead, &team.token(), spool.path());
        for n in 1..=2u32 {
            let shot = Shot {
                png: png(30 + n, 10),
                width: 30 + n,
                height: 10,
                label: "monitor".into(),
            };
            up.spool(Some(inc), shot).await.unwrap();
        }
        assert_eq!(up.status().waiting, 2);
    }
    let screen = Arc::new(CountingScreen::default());
    let up = uplink_to(team.server().addr, &team.token(), spool.path());
    assert_eq!(up.status().waiting, 2);
    let laptop = laptop(screen, up, None).await;
    uploaded(&laptop, 2).await;
    let widths: Vec<i64> = screenshots(&team, inc)
        .await
        .iter()
        .map(|e| e["image"]["width"].as_i64().unwrap())
        .collect();
    assert_eq!(widths, [31, 32]);
}

fn capture_form(bytes: Vec<u8>, fields: &[(&str, String)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("c.png"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.clone());
    }
    form
}

async fn post_capture(
    team: &TestApp,
    key: Option<&str>,
    bytes: Vec<u8>,
    fields: &[(&str, String)],
) -> reqwest::Response {
    let mut req = team
        .req(Method::POST, "/api/v1/captures")
        .multipart(capture_form(bytes, fields));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_row() {
    let team = TestApp::spawn().await;
    let inc = team.incident("Checkout 5xx").await;
    let id = [("incident_id", inc.to_string())];

    let first = post_capture(&team, Some("cap-1"), png(8, 8), &id).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post_capture(&team, Some("cap-1"), png(8, 8), &id).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["created_at"], again["created_at"]);

    // Racing repeats of a new key: one row.
    let racers = (0..4).map(|_| post_capture(&team, Some("cap-2"), png(9, 9), &id));
    let answers = futures_util::future::join_all(racers).await;
    let mut ids = Vec::new();
    let mut created = 0;
    for r in answers {
        assert!(matches!(r.status().as_u16(), 200 | 201), "{}", r.status());
        created += usize::from(r.status() == 201);
        ids.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_eq!(created, 1);
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");

    // The screenshot upload takes the same key, and keys are shared across both routes.
    let up = |key: &'static str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("d.png"),
        );
        team.req(
            Method::POST,
            &format!("/api/v1/evidence/incident/{inc}/upload-screenshot"),
        )
        .header("Idempotency-Key", key)
        .multipart(form)
        .send()
    };
    let a = up("up-1", png(7, 7)).await.unwrap();
    assert_eq!(a.status(), 201);
    let b = up("up-1", png(7, 7)).await.unwrap();
    assert_eq!(b.status(), 200);
    assert_eq!(
        a.json::<Value>().await.unwrap()["id"],
        b.json::<Value>().await.unwrap()["id"]
    );
    assert_eq!(screenshots(&team, inc).await.len(), 3);
    let tl = team
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let added = tl
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap_or("")
                .contains("Screenshot added")
        })
        .count();
    assert_eq!(added, 3, "{tl}");

    // The same key for another image is a conflict; bad keys and fields are named.
    let before = team.snapshot();
    let res = post_capture(&team, Some("cap-1"), png(5, 5), &id).await;
    assert_eq!(error_code(res, 409).await, "conflict");
    let res = post_capture(&team, Some("has space"), png(5, 5), &id).await;
    assert_eq!(error_code(res, 422).await, "invalid");
    let res = post_capture(&team, None, png(5, 5), &[("analysis", "{}".into())]).await;
    assert_eq!(error_code(res, 422).await, "invalid");
    let res = post_capture(
        &team,
        None,
        png(5, 5),
        &[("captured_at", "yesterday".into())],
    )
    .await;
    assert_eq!(error_code(res, 422).await, "invalid");
    let res = post_capture(&team, None, png(5, 5), &[("incident_id", "999".into())]).await;
    assert_eq!(error_code(res, 404).await, "not_found");
    let res = post_capture(&team, None, png(5, 5), &[("other", "x".into())]).await;
    assert_eq!(error_code(res, 422).await, "invalid");
    assert_eq!(
        team.snapshot(),
        before,
        "nothing written by refused uploads"
    );
}

/// Findings as the laptop's parser makes them, by hand.
fn findings_json(machine: &str) -> Value {
    json!({
        "findings": {
            "summary": "p99 latency spiked",
            "screen": "dashboard",
            "panels": [{"title": "p99 latency", "metric": "latency", "unit": "ms",
                        "current": "900", "peak": "2100", "trend": "spiky",
                        "anomalies": [{"description": "spike", "start": "14:05", "end": null}]}],
            "errors": [],
            "timestamps": ["14:05"],
            "timezone": "UTC",
            "parse": "json",
            "raw": "{\"summary\": \"p99 latency spiked\"}"
        },
        "model": "qwen3-vl-2b-instruct",
        "machine": machine,
        "device": "cpu",
        "ms": 41000
    })
}

#[tokio::test]
async fn findings_made_elsewhere_are_recorded_as_that_machines_analysis() {
    let team = TestApp::spawn().await;
    let inc = team.incident("API latency").await;
    let fields = [
        ("incident_id", inc.to_string()),
        ("captured_at", "2026-11-30T14:10:00Z".to_string()),
        ("analysis", findings_json("laptop@alice").to_string()),
    ];
    let res = post_capture(&team, Some("f-1"), png(12, 12), &fields).await;
    assert_eq!(res.status(), 201);
    let ev: Value = res.json().await.unwrap();
    assert_eq!(ev["analysis_state"], "done", "{ev}");
    assert_eq!(ev["analysis_model"], "qwen3-vl-2b-instruct");
    assert_eq!(ev["findings"]["summary"], "p99 latency spiked");
    assert!(
        ev["content"].as_str().unwrap().contains("p99 latency"),
        "{ev}"
    );
    // The anomaly's time, placed on the capture's day.
    assert!(
        ev["occurred_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-30T14:05"),
        "{ev}"
    );
    let jobs = team
        .get_json(&format!("/api/v1/evidence/{}/analyses", ev["id"]))
        .await;
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "done");
    assert_eq!(jobs[0]["worker"], "laptop@alice");
    assert_eq!(jobs[0]["device"], "cpu");
    let tl = team
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    assert!(
        tl.to_string()
            .contains(&format!("Seen on screenshot #{}", ev["id"])),
        "{tl}"
    );
    // The screenshot upload carries them too.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(png(13, 13)).file_name("d.png"),
        )
        .text("analysis", findings_json("laptop@bob").to_string());
    let res = team
        .req(
            Method::POST,
            &format!("/api/v1/evidence/incident/{inc}/upload-screenshot"),
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let ev: Value = res.json().await.unwrap();
    assert_eq!(ev["analysis_state"], "done", "{ev}");
    // A bad machine name is refused with the field named.
    let mut bad = findings_json("");
    bad["machine"] = json!("  ");
    let res = post_capture(&team, None, png(5, 5), &[("analysis", bad.to_string())]).await;
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("analysis.machine"),
        "{v}"
    );
}

fn tiny_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_made_on_the_laptop_arrive_with_the_upload() {
    let team = TestApp::spawn().await;
    let inc = team.incident("Checkout latency").await;
    let spool = tempfile::tempdir().unwrap();
    let screen = Arc::new(CountingScreen {
        fixed: Some(std::fs::read(tiny_fixture().join("panel.png")).unwrap()),
        ..Default::default()
    });
    let up = uplink_to(team.server().addr, &team.token(), spool.path());
    let mut cfg = opslens_core::analysis::AnalysisConfig::isolated(spool.path());
    cfg.model_id = Some("tiny-qwen3-vl-test".into());
    cfg.models.model_dir = Some(tiny_fixture());
    cfg.max_new_tokens = 24;
    cfg.worker_id = Some("laptop-test".into());
    let laptop = laptop(screen, up, Some(cfg)).await;
    let s = laptop.get_json("/api/v1/team").await;
    assert_eq!(s["local_analysis"], true, "{s}");

    let res = laptop
        .post("/api/v1/capture", &json!({"incident_id": inc}))
        .await;
    assert_eq!(res.status(), 202);
    let s = wait_until("the analysed capture to arrive", 120, async || {
        let s = laptop.get_json("/api/v1/team").await;
        (s["uploaded"] == 1).then_some(s)
    })
    .await;
    assert_eq!(s["last"]["with_findings"], true, "{s}");
    let ev = team
        .get_json(&format!("/api/v1/evidence/{}", s["last"]["evidence_id"]))
        .await;
    assert_eq!(ev["analysis_state"], "done", "{ev}");
    assert_eq!(ev["analysis_model"], "tiny-qwen3-vl-test");
    assert!(ev["findings"]["raw"].is_string(), "{ev}");
    let jobs = team
        .get_json(&format!("/api/v1/evidence/{}/analyses", ev["id"]))
        .await;
    assert_eq!(jobs[0]["worker"], "laptop-test", "{jobs}");
    assert_eq!(jobs[0]["state"], "done");
}

#[tokio::test]
async fn settings_store_the_team_server_for_the_next_start() {
    let app = TestApp::spawn().await;
    let put = |body: Value| app.req(Method::PUT, "/api/v1/team").json(&body).send();
    let res = put(json!({"server_url": "https://ops.example.com:8443/api/v1", "token": "tok-1"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["server_url"], "https://ops.example.com:8443", "{v}");
    assert_eq!(v["restart_needed"], true);
    // Not a desktop app: the data dir's secrets.env, never the developer's keychain.
    assert!(
        v["stored_in"].as_str().unwrap().contains("secrets.env"),
        "{v}"
    );
    let file = std::fs::read_to_string(app.data_dir().join("secrets.env")).unwrap();
    assert!(
        file.contains("OPSLENS_SERVER_URL='https://ops.example.com:8443'"),
        "{file}"
    );
    assert!(file.contains("OPSLENS_SERVER_TOKEN='tok-1'"), "{file}");

    for bad in [
        json!({"server_url": "ftp://ops.example.com", "token": "t"}),
        json!({"server_url": "https://ops.example.com", "token": " "}),
        json!({"server_url": "https://user:pw@ops.example.com", "token": "t"}),
    ] {
        let res = put(bad.clone()).await.unwrap();
        assert_eq!(error_code(res, 422).await, "invalid", "{bad}");
    }
    let unchanged = std::fs::read_to_string(app.data_dir().join("secrets.env")).unwrap();
    assert_eq!(unchanged, file);

    let res = app
        .req(Method::DELETE, "/api/v1/team")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let file = std::fs::read_to_string(app.data_dir().join("secrets.env")).unwrap_or_default();
    assert!(!file.contains("OPSLENS_SERVER"), "{file}");
}
