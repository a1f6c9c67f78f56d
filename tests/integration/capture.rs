//! `POST /api/v1/capture` with a fake screen: body validation, where the capture lands, and
//! that it is stored exactly like an upload. The real screen (xcap under Xvfb) is in
//! `desktop.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opslens_domain::{CaptureError, CaptureTarget, ScreenSource, Shot, WindowSelector};
use serde_json::{json, Value};

use reqwest::Method;

use crate::app::{error_code, TestApp};
use crate::events::Feed;

/// A screen of 64×48 solid pixels; regions come back at their size; window "missing" does not
/// exist; counts the grabs so tests can tell a refused request never reached the screen.
#[derive(Debug, Default)]
struct FakeScreen {
    grabs: AtomicUsize,
    headless: bool,
}

impl ScreenSource for FakeScreen {
    fn grab(&self, target: &CaptureTarget) -> Result<Shot, CaptureError> {
        self.grabs.fetch_add(1, Ordering::SeqCst);
        if self.headless {
            return Err(CaptureError::NoDisplay("no display in this test".into()));
        }
        let (w, h) = match target {
            CaptureTarget::Monitor => (64, 48),
            CaptureTarget::Region(r) => (r.width, r.height),
            CaptureTarget::Window(WindowSelector::Title(t)) if t == "missing" => {
                return Err(CaptureError::NotFound("no window like \"missing\"".into()))
            }
            CaptureTarget::Window(_) => (40, 30),
        };
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 30, 30, 255]));
        Ok(Shot {
            png: opslens_capture::encode_png(&img).unwrap(),
            width: w,
            height: h,
            label: target.to_string(),
        })
    }
}

async fn app_with(screen: Arc<FakeScreen>) -> TestApp {
    TestApp::spawn_with_screen(Some(screen)).await
}

async fn capture(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/api/v1/capture", body).await
}

#[tokio::test]
async fn capture_lands_on_the_open_incident_changed_last_and_is_stored_like_an_upload() {
    let screen = Arc::new(FakeScreen::default());
    let app = app_with(screen.clone()).await;
    let older = app.incident("API latency").await;
    let newer = app.incident("Checkout 5xx").await;
    // Touching the older one makes it the one being worked on.
    let res = app
        .patch(
            &format!("/api/v1/incidents/{older}"),
            &json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let ev = app.create("/api/v1/capture", &json!({})).await;
    assert_eq!(ev["incident_id"], older, "{ev}");
    assert_eq!(ev["evidence_type"], "screenshot");
    assert_eq!(ev["source"], "capture");
    assert_eq!(ev["image"]["width"], 64);
    assert_eq!(ev["image"]["height"], 48);
    assert_eq!(ev["image"]["mime"], "image/png");

    // Same analysis bookkeeping as an upload of the same kind of image.
    let up = app
        .upload(newer, crate::app::png(8, 8), "dashboard.png")
        .await;
    let up: Value = up.json().await.unwrap();
    assert_eq!(ev["analysis_state"], up["analysis_state"]);
    assert!(!ev["analysis_state"].is_null());

    // The stored bytes are the screen's, and the timeline says so.
    let res = app
        .get(&format!("/api/v1/evidence/{}/image", ev["id"]))
        .await;
    assert_eq!(res.status(), 200);
    let img = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .to_rgba8();
    assert_eq!(img.dimensions(), (64, 48));
    assert_eq!(img.get_pixel(10, 10).0, [200, 30, 30, 255]);
    let tl = app
        .get_json(&format!("/api/v1/incidents/{older}/timeline"))
        .await;
    assert!(tl.to_string().contains("Screenshot added"), "{tl}");

    // Named incident wins over the active one.
    let ev = app
        .create("/api/v1/capture", &json!({"incident_id": newer}))
        .await;
    assert_eq!(ev["incident_id"], newer);
    assert_eq!(screen.grabs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn capture_without_an_open_incident_opens_an_untriaged_one() {
    let app = app_with(Arc::new(FakeScreen::default())).await;
    let done = app.incident("Yesterday's outage").await;
    let res = app
        .patch(
            &format!("/api/v1/incidents/{done}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ev = app.create("/api/v1/capture", &json!({})).await;
    let id = ev["incident_id"].as_i64().unwrap();
    assert_ne!(id, done);
    let inc = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(inc["title"], "Untriaged capture");
    assert_eq!(inc["evidence_count"], 1);
    // The next capture goes to the same (now active) incident.
    let ev = app.create("/api/v1/capture", &json!({})).await;
    assert_eq!(ev["incident_id"], id);
}

async fn put_focus(app: &TestApp, body: &Value) -> reqwest::Response {
    app.req(Method::PUT, "/api/v1/focus")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn capture_goes_to_the_incident_a_window_shows_and_the_feed_says_where() {
    let app = app_with(Arc::new(FakeScreen::default())).await;
    let shown = app.incident("Checkout p99 spike").await;
    // Opened later: by the old rule (the open incident changed last) captures went here.
    let newer = app.incident("DB replica lag").await;
    assert_eq!(
        app.get_json("/api/v1/focus").await,
        json!({"incident_id": null})
    );

    // A window opens `shown`: a bare capture (what the shortcut does) goes there, and the
    // feed announces it with where it went.
    let res = put_focus(&app, &json!({"incident_id": shown})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"incident_id": shown})
    );
    let mut feed = Feed::open(&app, "").await;
    let ev = app.create("/api/v1/capture", &json!({})).await;
    assert_eq!(ev["incident_id"], shown, "{ev}");
    let seen = feed
        .until("capture.created", ev["id"].as_i64().unwrap())
        .await;
    let note = seen.last().unwrap();
    assert_eq!(
        (note["kind"].as_str(), note["incident_id"].as_i64()),
        (Some("capture"), Some(shown)),
        "{note}"
    );
    assert!(
        seen.iter()
            .any(|e| e["type"] == "evidence.created" && e["id"] == ev["id"]),
        "the evidence itself is announced first: {seen:?}"
    );

    // A named incident wins over the window's.
    let ev = app
        .create("/api/v1/capture", &json!({"incident_id": newer}))
        .await;
    assert_eq!(ev["incident_id"], newer);

    // An unknown incident is refused, naming it, and the focus stays.
    let res = put_focus(&app, &json!({"incident_id": 4711})).await;
    assert_eq!(error_code(res, 404).await, "not_found");
    let res = put_focus(&app, &json!({"incident": shown})).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let res = put_focus(&app, &json!({"incident_id": "three"})).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(
        app.get_json("/api/v1/focus").await,
        json!({"incident_id": shown})
    );

    // The incident on screen is deleted: the focus is gone, captures fall back to the old
    // rule, and the feed says where they went.
    let res = app
        .req(Method::DELETE, &format!("/api/v1/incidents/{shown}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get_json("/api/v1/focus").await,
        json!({"incident_id": null})
    );
    let ev = app.create("/api/v1/capture", &json!({})).await;
    assert_eq!(ev["incident_id"], newer);
    let seen = feed
        .until("capture.created", ev["id"].as_i64().unwrap())
        .await;
    assert_eq!(seen.last().unwrap()["incident_id"], newer);

    // A window leaving its incident page says so (null): back to the old rule.
    let third = app.incident("Cache stampede").await;
    put_focus(&app, &json!({"incident_id": newer})).await;
    let res = put_focus(&app, &json!({"incident_id": null})).await;
    assert_eq!(res.status(), 200);
    let ev = app.create("/api/v1/capture", &json!({})).await;
    assert_eq!(ev["incident_id"], third, "the open incident changed last");
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_never_reach_the_screen() {
    let screen = Arc::new(FakeScreen::default());
    let app = app_with(screen.clone()).await;
    let inc = app.incident("x").await;
    let cases: &[(Value, u16, &str)] = &[
        (json!({"target": "desktop"}), 422, "invalid_body"),
        (json!({"target": "window"}), 422, "invalid_target"),
        (json!({"target": "region"}), 422, "invalid_target"),
        (
            json!({"target": "region", "region": {"x": 0, "y": 0, "width": 0, "height": 5}}),
            422,
            "invalid_target",
        ),
        (
            json!({"target": "region", "region": {"x": 0, "y": 0, "width": 20000, "height": 5}}),
            422,
            "invalid_target",
        ),
        (
            json!({"target": "region", "region": {"x": 0, "y": 0, "width": -1, "height": 5}}),
            422,
            "invalid_body",
        ),
        (
            json!({"region": {"x": 0, "y": 0, "width": 5, "height": 5}}),
            422,
            "invalid_target",
        ),
        (json!({"incident": inc}), 422, "invalid_body"),
        (json!({"incident_id": 999_999}), 404, "not_found"),
    ];
    for (body, status, code) in cases {
        let res = capture(&app, body).await;
        assert_eq!(&error_code(res, *status).await, code, "{body}");
    }
    let res = app
        .req(reqwest::Method::POST, "/api/v1/capture")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await, "invalid_json");
    assert_eq!(screen.grabs.load(Ordering::SeqCst), 0);

    // Well-formed targets reach the screen with what was asked.
    let ev = app
        .create(
            "/api/v1/capture",
            &json!({"target": "region", "region": {"x": -100, "y": 5, "width": 30, "height": 20}}),
        )
        .await;
    assert_eq!(
        (
            ev["image"]["width"].as_i64(),
            ev["image"]["height"].as_i64()
        ),
        (Some(30), Some(20))
    );
    let ev = app
        .create(
            "/api/v1/capture",
            &json!({"target": "window", "window": 4194305}),
        )
        .await;
    assert_eq!(ev["image"]["width"], 40);
    let res = capture(&app, &json!({"target": "window", "window": "missing"})).await;
    assert_eq!(error_code(res, 404).await, "not_found");
}

#[tokio::test]
async fn capture_without_a_screen_is_503_and_opens_nothing() {
    let app = app_with(Arc::new(FakeScreen {
        headless: true,
        ..Default::default()
    }))
    .await;
    let res = capture(&app, &json!({})).await;
    assert_eq!(error_code(res, 503).await, "no_display");
    let list = app.get_json("/api/v1/incidents").await;
    assert_eq!(
        list["total"], 0,
        "a failed capture must not open an incident"
    );

    let app = TestApp::spawn_with_screen(None).await;
    let res = capture(&app, &json!({})).await;
    assert_eq!(error_code(res, 503).await, "capture_unavailable");
    let res = app
        .req(reqwest::Method::POST, "/api/v1/capture")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415, "a body is required");
}

#[tokio::test]
async fn capture_is_in_the_openapi_spec_and_needs_the_token() {
    let app = app_with(Arc::new(FakeScreen::default())).await;
    let spec = app.get_json("/openapi.json").await;
    let op = &spec["paths"]["/api/v1/capture"]["post"];
    assert!(op.is_object(), "no POST /api/v1/capture in the spec");
    for status in ["201", "422", "503"] {
        assert!(
            op["responses"][status].is_object(),
            "no {status} documented"
        );
    }
    let res = app
        .http
        .post(app.url("/api/v1/capture"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_capture_goes_through_the_server() {
    let app = app_with(Arc::new(FakeScreen::default())).await;
    let inc = app.incident("CLI capture").await;
    let data = app.data_dir();
    let addr = app.server().addr.to_string();
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_opslens"))
            .arg("capture")
            .args(["--addr", &addr])
            .args(&args)
            .env("OPSLENS_DATA_DIR", &data)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let r = run.clone();
    let args = vec![
        "--incident".to_string(),
        inc.to_string(),
        "--region".into(),
        "5,5,32,16".into(),
    ];
    let (ok, out, err) = tokio::task::spawn_blocking(move || r(args)).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("captured 32×16"), "{out}");
    assert!(out.contains(&format!("incident #{inc}")), "{out}");
    let args = vec!["--window".to_string(), "missing".into()];
    let (ok, _, err) = tokio::task::spawn_blocking(move || run(args))
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("404") && err.contains("missing"), "{err}");
}
