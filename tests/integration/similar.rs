//! Memory across incidents (issue 16 parts 2 and 4), through the real HTTP API: similar
//! incidents ranked by text and by screenshots, duplicates flagged, merging (all or nothing,
//! with a redirect), and redaction burnt into a new image that the exports use.

use std::io::Cursor;

use base64::Engine;
use image::{ImageFormat, Rgba, RgbaImage};
use serde_json::{json, Value};

use crate::app::{error_code, png, TestApp};

/// A synthetic Grafana-like panel: dark background, grid, a title bar, and `series` (0..1 over
/// 0..1) drawn as a 3-pixel line. `noise` perturbs every pixel (deterministically by `seed`);
/// `shift` brightens.
fn dashboard(series: impl Fn(f64) -> f64, noise: u8, shift: i16, seed: u32) -> Vec<u8> {
    let (w, h) = (480u32, 270u32);
    let mut img = RgbaImage::from_pixel(w, h, Rgba([24, 27, 31, 255]));
    for x in 0..w {
        for y in 0..24 {
            img.put_pixel(x, y, Rgba([40, 44, 52, 255]));
        }
    }
    for gx in (40..w).step_by(60) {
        for y in 30..h - 20 {
            img.put_pixel(gx, y, Rgba([50, 54, 60, 255]));
        }
    }
    for gy in (40..h - 20).step_by(40) {
        for x in 30..w - 10 {
            img.put_pixel(x, gy, Rgba([50, 54, 60, 255]));
        }
    }
    let (top, bottom) = (34.0, f64::from(h) - 24.0);
    for x in 30..w - 10 {
        let t = f64::from(x - 30) / f64::from(w - 40);
        let y = bottom - series(t).clamp(0.0, 1.0) * (bottom - top);
        for dy in -1..=1 {
            let yy = (y as i64 + dy).clamp(0, i64::from(h) - 1) as u32;
            img.put_pixel(x, yy, Rgba([115, 191, 105, 255]));
        }
    }
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for p in img.pixels_mut() {
        for c in 0..3 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let n = if noise == 0 {
                0
            } else {
                (state % (2 * u32::from(noise) + 1)) as i16 - i16::from(noise)
            };
            p.0[c] = (i16::from(p.0[c]) + n + shift).clamp(0, 255) as u8;
        }
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn spike_at(at: f64) -> impl Fn(f64) -> f64 {
    move |t| 0.15 + 0.8 * (-((t - at) * 18.0).powi(2)).exp()
}

async fn open(app: &TestApp, title: &str, description: &str) -> i64 {
    app.create(
        "/api/v1/incidents",
        &json!({"title": title, "description": description, "severity": "high"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn shot(app: &TestApp, incident: i64, bytes: Vec<u8>) -> i64 {
    let res = app.upload(incident, bytes, "grafana.png").await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn note(app: &TestApp, incident: i64, text: &str) {
    app.create(
        &format!("/api/v1/evidence/incident/{incident}"),
        &json!({"evidence_type": "log", "title": "log excerpt", "content": text}),
    )
    .await;
}

async fn similar(app: &TestApp, id: i64) -> Value {
    app.get_json(&format!("/api/v1/incidents/{id}/similar"))
        .await
}

fn first(v: &Value) -> i64 {
    v["items"][0]["incident_id"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn the_planted_partner_ranks_first_by_text_or_by_screenshot() {
    let app = TestApp::spawn().await;
    // Distractors: same dashboard template, other shapes; other words.
    let d1 = open(
        &app,
        "Disk full on logging node",
        "logrotate stopped, /var at 100%",
    )
    .await;
    shot(&app, d1, dashboard(|_| 0.3, 0, 0, 1)).await;
    let d2 = open(
        &app,
        "DNS resolution failures",
        "coredns timeouts in eu-west",
    )
    .await;
    shot(&app, d2, dashboard(spike_at(0.75), 0, 0, 2)).await;
    let d3 = open(
        &app,
        "Kafka consumer lag growing on orders-worker",
        "rebalance storm",
    )
    .await;
    shot(&app, d3, dashboard(|t| t * 0.8, 0, 0, 3)).await;
    let d4 = open(
        &app,
        "Certificate expiry warning for edge-proxy",
        "cert renews in 3 days",
    )
    .await;
    note(&app, d4, "cert-manager: renewal failed, ACME rate limited").await;
    let d5 = open(&app, "Redis memory high on cache-01", "evictions rising").await;
    shot(
        &app,
        d5,
        dashboard(|t| 0.5 + 0.3 * (t * 12.0).sin(), 0, 0, 5),
    )
    .await;

    // Alike in text only: their screenshots differ (flat vs ramp).
    let a1 = open(
        &app,
        "checkout-api HTTP 503 after deploy v2.41.0",
        "connection pool exhausted; payments calls time out",
    )
    .await;
    note(
        &app,
        a1,
        "ERROR HikariPool-1 - Connection is not available, request timed out after 30000ms",
    )
    .await;
    shot(&app, a1, dashboard(|_| 0.2, 0, 0, 11)).await;
    app.patch(
        &format!("/api/v1/incidents/{a1}"),
        &json!({"status": "resolved"}),
    )
    .await;
    app.create(
        &format!("/api/v1/incidents/{a1}/actions"),
        &json!({"title": "Raise pool size and alert on saturation", "owner": "ana"}),
    )
    .await;

    // Alike in screenshots only: a perturbed copy of one spike dashboard, no shared words.
    let b1 = open(&app, "Login latency elevated", "auth p99 above SLO").await;
    shot(&app, b1, dashboard(spike_at(0.3), 0, 0, 21)).await;

    let a2 = open(
        &app,
        "Checkout returning 503s",
        "HikariPool connection pool exhausted again on checkout-api",
    )
    .await;
    shot(&app, a2, dashboard(|t| 0.1 + 0.7 * t, 0, 0, 12)).await;
    let b2 = open(
        &app,
        "Support says pages are slow",
        "customers report sluggish UI",
    )
    .await;
    shot(&app, b2, dashboard(spike_at(0.3), 12, 10, 22)).await;

    let s = similar(&app, a2).await;
    assert_eq!(first(&s), a1, "text partner first: {s:#}");
    let hit = &s["items"][0];
    assert!(hit["text_score"].as_f64().unwrap() > 0.1, "{hit}");
    let reasons = hit["reasons"].to_string();
    assert!(reasons.contains("same service checkout-api"), "{reasons}");
    assert!(
        reasons.contains("shares:") && reasons.contains("exhausted") && !reasons.contains(".png"),
        "{reasons}"
    );
    assert_eq!(hit["has_postmortem"], false);
    assert_eq!(hit["actions"][0], "Raise pool size and alert on saturation");
    assert_eq!(hit["link"], format!("#/incident/{a1}"));
    assert_eq!(
        hit["postmortem_link"],
        format!("#/incident/{a1}/postmortem")
    );

    for (q, partner) in [(b2, b1), (b1, b2)] {
        let s = similar(&app, q).await;
        assert_eq!(
            first(&s),
            partner,
            "screenshot partner of #{q} first: {s:#}"
        );
        let hit = &s["items"][0];
        assert!(hit["image_score"].as_f64().unwrap() > 0.95, "{hit}");
        assert!(
            hit["reasons"][0]
                .as_str()
                .unwrap()
                .ends_with(&format!("similar to #{partner}'s")),
            "{hit}"
        );
        // The same template with the spike elsewhere is not a near-duplicate.
        let other = s["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["incident_id"] == d2);
        if let Some(o) = other {
            assert!(o["score"].as_f64() < hit["score"].as_f64(), "{o} vs {hit}");
        }
    }
    // Screenshots stored before fingerprints existed are fingerprinted on the next ranking.
    assert!(app.sql_exec("DELETE FROM image_fingerprint") >= 8);
    let s = similar(&app, b2).await;
    assert_eq!(first(&s), b1, "after the backfill: {s:#}");
    assert!(s["items"][0]["image_score"].as_f64().unwrap() > 0.95);

    // An incident is never similar to itself; limit bounds the list.
    let s = app
        .get_json(&format!("/api/v1/incidents/{a2}/similar?limit=2"))
        .await;
    let items = s["items"].as_array().unwrap();
    assert!(items.len() <= 2 && items.iter().all(|h| h["incident_id"] != a2));
}

#[tokio::test]
async fn a_duplicate_is_flagged_and_merging_moves_everything_and_redirects() {
    let app = TestApp::spawn().await;
    let old = open(&app, "Nightly backup slow", "older, unrelated").await;
    let target = open(
        &app,
        "checkout-api 5xx rate above 5%",
        "alertmanager: HighErrorRate",
    )
    .await;
    let dup = open(&app, "checkout-api 5xx rate above 5%", "paged again").await;
    let unrelated = open(&app, "orders-worker queue depth", "lag").await;

    let t = app.get_json(&format!("/api/v1/incidents/{dup}")).await;
    assert_eq!(t["possible_duplicate_of"]["incident_id"], target, "{t}");
    assert!(
        t["possible_duplicate_of"]["reason"]
            .as_str()
            .unwrap()
            .contains("checkout-api"),
        "{t}"
    );
    assert_eq!(
        similar(&app, dup).await["possible_duplicate_of"]["incident_id"],
        target
    );
    // The older one and an unrelated one carry no hint.
    for id in [target, unrelated, old] {
        let v = app.get_json(&format!("/api/v1/incidents/{id}")).await;
        assert!(v.get("possible_duplicate_of").is_none(), "{v}");
    }

    // A near-identical screenshot flags a duplicate whatever the words and the time.
    let shot_target = open(&app, "Grafana: API latency", "").await;
    shot(&app, shot_target, dashboard(spike_at(0.5), 0, 0, 31)).await;
    let shot_dup = open(&app, "Something looks off", "").await;
    shot(&app, shot_dup, dashboard(spike_at(0.5), 8, -6, 32)).await;
    let v = app.get_json(&format!("/api/v1/incidents/{shot_dup}")).await;
    assert_eq!(
        v["possible_duplicate_of"]["incident_id"], shot_target,
        "{v}"
    );
    assert!(v["possible_duplicate_of"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("screenshot"));

    // Give the duplicate something of everything.
    note(&app, dup, "502 from upstream checkout-api pods").await;
    let ev = shot(&app, dup, png(64, 48)).await;
    let h = app
        .create(
            &format!("/api/v1/incidents/{dup}/hypotheses"),
            &json!({"statement": "bad deploy", "evidence_ids": [ev]}),
        )
        .await;
    let a = app
        .create(
            &format!("/api/v1/incidents/{dup}/actions"),
            &json!({"title": "roll back"}),
        )
        .await;
    let dup_timeline = app
        .get_json(&format!("/api/v1/incidents/{dup}/timeline"))
        .await
        .as_array()
        .unwrap()
        .len();

    // Refused merges write nothing.
    let closed = open(&app, "closed one", "").await;
    app.patch(
        &format!("/api/v1/incidents/{closed}"),
        &json!({"status": "closed"}),
    )
    .await;
    let before = app.snapshot();
    let merge = |into: Value| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/incidents/{dup}/merge"),
                &json!({"into": into}),
            )
            .await
        }
    };
    let res = merge(json!(dup)).await;
    assert_eq!(res.status(), 409);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be merged into itself"),
        "{v}"
    );
    assert_eq!(
        error_code(merge(json!(closed)).await, 409).await,
        "conflict"
    );
    // The path's incident exists; an `into` naming none is a 422 naming the field.
    let res = merge(json!(99_999)).await;
    assert_eq!(res.status(), 422);
    let msg = res.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("into: incident 99999"), "{msg}");
    assert_eq!(merge(json!("x")).await.status().as_u16() / 100, 4);
    let res = app
        .post("/api/v1/incidents/99999/merge", &json!({"into": target}))
        .await;
    assert_eq!(error_code(res, 404).await, "not_found");
    assert_eq!(app.snapshot(), before, "refused merges wrote nothing");

    let res = merge(json!(target)).await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["merged"], dup);
    assert_eq!(out["into"]["id"], target);
    assert_eq!(out["evidence"], 2);
    assert_eq!(out["hypotheses"], 1);
    assert_eq!(out["actions"], 1);
    assert_eq!(out["timeline"].as_i64().unwrap() as usize, dup_timeline);

    // The merged id answers with where everything went.
    let gone = app.get_json(&format!("/api/v1/incidents/{dup}")).await;
    assert_eq!(gone["merged_into"], target);
    assert_eq!(gone["status"], "closed");
    assert!(gone.get("possible_duplicate_of").is_none());
    let ev_list = app
        .get_json(&format!("/api/v1/evidence/incident/{target}"))
        .await;
    assert!(ev_list.as_array().unwrap().iter().any(|e| e["id"] == ev));
    assert_eq!(
        app.get_json(&format!("/api/v1/evidence/{ev}")).await["incident_id"],
        target
    );
    let hs = app
        .get_json(&format!("/api/v1/incidents/{target}/hypotheses"))
        .await;
    assert!(hs.as_array().unwrap().iter().any(|x| x["id"] == h["id"]));
    let acts = app
        .get_json(&format!("/api/v1/incidents/{target}/actions"))
        .await;
    assert!(acts.as_array().unwrap().iter().any(|x| x["id"] == a["id"]));
    assert!(app
        .get_json(&format!("/api/v1/incidents/{dup}/hypotheses"))
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let tl = app
        .get_json(&format!("/api/v1/incidents/{target}/timeline"))
        .await;
    assert!(
        tl.as_array().unwrap().iter().any(|e| e["kind"] == "merged"
            && e["message"].as_str().unwrap().contains(&format!("#{dup}"))),
        "{tl:#}"
    );
    let tl = app
        .get_json(&format!("/api/v1/incidents/{dup}/timeline"))
        .await;
    let tl = tl.as_array().unwrap();
    assert_eq!(tl.len(), 1, "only the merge entry stays: {tl:?}");
    assert!(tl[0]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("#{target}")));

    // Merged once is merged: again, or into it, is a conflict.
    assert_eq!(
        error_code(merge(json!(target)).await, 409).await,
        "conflict"
    );
    let res = app
        .post(
            &format!("/api/v1/incidents/{old}/merge"),
            &json!({"into": dup}),
        )
        .await;
    assert_eq!(error_code(res, 409).await, "conflict");
    // A merged incident is no longer offered as similar.
    let s = similar(&app, target).await;
    assert!(s["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["incident_id"] != dup));
}

#[tokio::test]
async fn similar_refuses_unknown_and_deleted_incidents_and_bad_limits() {
    let app = TestApp::spawn().await;
    let id = open(&app, "to delete", "").await;
    let res = app.get("/api/v1/incidents/424242/similar").await;
    assert_eq!(error_code(res, 404).await, "not_found");
    let res = app
        .get(&format!("/api/v1/incidents/{id}/similar?limit=0"))
        .await;
    assert_eq!(res.status().as_u16() / 100, 4);
    let res = app
        .get(&format!("/api/v1/incidents/{id}/similar?limit=51"))
        .await;
    assert_eq!(res.status().as_u16() / 100, 4);
    let res = app
        .get(&format!("/api/v1/incidents/{id}/similar?bogus=1"))
        .await;
    assert_eq!(res.status().as_u16() / 100, 4);
    assert_eq!(
        app.req(reqwest::Method::DELETE, &format!("/api/v1/incidents/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let res = app.get(&format!("/api/v1/incidents/{id}/similar")).await;
    assert_eq!(error_code(res, 404).await, "not_found");
}

fn decode(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).unwrap().to_rgba8()
}

fn inside(b: &[(u32, u32, u32, u32)], x: u32, y: u32) -> bool {
    b.iter()
        .any(|&(bx, by, w, h)| x >= bx && x < bx + w && y >= by && y < by + h)
}

#[tokio::test]
async fn redaction_burns_boxes_into_a_new_image_that_exports_use() {
    let app = TestApp::spawn().await;
    let id = open(&app, "leaky dashboard", "").await;
    let original = dashboard(spike_at(0.4), 20, 0, 41);
    let ev = shot(&app, id, original.clone()).await;
    let boxes = [(10u32, 5u32, 120u32, 30u32), (300, 200, 179, 70)];
    let body = json!({"boxes": boxes.iter().map(|&(x, y, width, height)| json!({"x": x, "y": y, "width": width, "height": height})).collect::<Vec<_>>()});
    let res = app
        .post(&format!("/api/v1/evidence/{ev}/redactions"), &body)
        .await;
    assert_eq!(res.status(), 201);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["redaction"]["boxes"][1]["width"], 179);
    let sha = e["redaction"]["sha256"].as_str().unwrap().to_string();

    // The original is kept as it was.
    let res = app.get(&format!("/api/v1/evidence/{ev}/image")).await;
    assert_eq!(res.bytes().await.unwrap().to_vec(), original);

    let before = decode(&original);
    let check = |bytes: &[u8]| {
        let after = decode(bytes);
        assert_eq!(after.dimensions(), before.dimensions());
        for (x, y, p) in after.enumerate_pixels() {
            if inside(&boxes, x, y) {
                assert_eq!(p.0, [0, 0, 0, 255], "box pixel {x},{y} uniform black");
            } else {
                assert_eq!(
                    p,
                    before.get_pixel(x, y),
                    "pixel {x},{y} outside the boxes unchanged"
                );
            }
        }
    };
    for variant in ["redacted", "shared"] {
        let res = app
            .get(&format!("/api/v1/evidence/{ev}/image?variant={variant}"))
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        check(&res.bytes().await.unwrap());
    }

    // The HTML postmortem carries the redacted image and never the original.
    let html = app
        .get(&format!(
            "/api/v1/incidents/{id}/postmortem/export?format=html"
        ))
        .await
        .text()
        .await
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(
        !html.contains(&b64.encode(&original)),
        "original not exported"
    );
    let start = html.find("data:image/png;base64,").expect("a screenshot") + 22;
    let end = start + html[start..].find('"').unwrap();
    let exported = b64.decode(&html[start..end]).unwrap();
    check(&exported);
    // The zip too: its screenshot is the redacted PNG.
    let zip = app
        .get(&format!(
            "/api/v1/incidents/{id}/postmortem/export?format=zip"
        ))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let redacted = app
        .get(&format!("/api/v1/evidence/{ev}/image?variant=redacted"))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        exported, redacted,
        "the HTML carries the stored redacted copy"
    );
    assert!(zip
        .windows(redacted.len())
        .any(|w| w == redacted.as_slice()));
    assert!(
        !zip.windows(original.len())
            .any(|w| w == original.as_slice()),
        "original not in the zip"
    );
    // The JSON export names the redaction.
    let x = app
        .get_json(&format!("/api/v1/incidents/{id}/export"))
        .await;
    assert_eq!(x["evidence"][0]["redaction"]["sha256"], sha.as_str());
    let original_sha = x["evidence"][0]["sha256"].as_str().unwrap().to_string();
    let md = app
        .get(&format!("/api/v1/incidents/{id}/export?format=markdown"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        md.contains(&sha) && md.contains("redacted, 2 boxes"),
        "{md}"
    );
    assert!(!md.contains(&original_sha), "{md}");

    // A second redaction replaces the first; the original is still the source.
    let res = app
        .post(
            &format!("/api/v1/evidence/{ev}/redactions"),
            &json!({"boxes": [{"x": 0, "y": 0, "width": 1, "height": 1}]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let again = app
        .get(&format!("/api/v1/evidence/{ev}/image?variant=redacted"))
        .await
        .bytes()
        .await
        .unwrap();
    let again = decode(&again);
    assert_eq!(again.get_pixel(0, 0).0, [0, 0, 0, 255]);
    assert_eq!(again.get_pixel(20, 10), before.get_pixel(20, 10));
}

#[tokio::test]
async fn bad_redactions_are_refused_naming_the_problem_and_write_nothing() {
    let app = TestApp::spawn().await;
    let id = open(&app, "redaction errors", "").await;
    let ev = shot(&app, id, png(100, 50)).await;
    let text = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "log", "title": "l", "content": "user bob@example.com from 10.1.2.3"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let before = app.snapshot();
    let post = |ev: i64, body: Value| {
        let app = &app;
        async move {
            app.post(&format!("/api/v1/evidence/{ev}/redactions"), &body)
                .await
        }
    };
    let message = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 422);
        let v: Value = res.json().await.unwrap();
        v["error"]["message"].as_str().unwrap().to_string()
    };
    let m = message(
        post(
            ev,
            json!({"boxes": [{"x": 90, "y": 0, "width": 20, "height": 10}]}),
        )
        .await,
    )
    .await;
    assert!(
        m.contains("boxes[0]") && m.contains("outside the 100×50 image"),
        "{m}"
    );
    let m = message(post(ev, json!({"boxes": [{"x": 1, "y": 1, "width": 5, "height": 5}, {"x": 0, "y": 0, "width": 0, "height": 5}]})).await).await;
    assert!(m.contains("boxes[1]") && m.contains("zero size"), "{m}");
    let m = message(post(ev, json!({"boxes": []})).await).await;
    assert!(m.contains("boxes"), "{m}");
    let m = message(
        post(
            text,
            json!({"boxes": [{"x": 0, "y": 0, "width": 1, "height": 1}]}),
        )
        .await,
    )
    .await;
    assert!(m.contains("not a screenshot"), "{m}");
    let res = post(
        999_999,
        json!({"boxes": [{"x": 0, "y": 0, "width": 1, "height": 1}]}),
    )
    .await;
    assert_eq!(error_code(res, 404).await, "not_found");
    let res = post(
        ev,
        json!({"boxes": [{"x": -1, "y": 0, "width": 1, "height": 1}]}),
    )
    .await;
    assert_eq!(res.status().as_u16() / 100, 4);
    assert_eq!(app.snapshot(), before, "nothing written");
    let res = app
        .get(&format!("/api/v1/evidence/{ev}/image?variant=redacted"))
        .await;
    assert_eq!(error_code(res, 404).await, "not_found");

    // Suggestions: text-only warnings from what was read; only for screenshots.
    let s = app
        .get_json(&format!("/api/v1/evidence/{ev}/redaction-suggestions"))
        .await;
    assert!(s.as_array().unwrap().is_empty(), "{s}");
    let res = app
        .get(&format!("/api/v1/evidence/{text}/redaction-suggestions"))
        .await;
    assert_eq!(res.status(), 422);
}
