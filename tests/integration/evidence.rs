//! Evidence: the seed's text evidence and screenshot upload, and every bad upload refused
//! with the right 4xx and nothing written.

use serde_json::{json, Value};

use crate::app::{error_code, png, png_bomb_header, TestApp};

#[tokio::test]
async fn seed_text_evidence_and_screenshot_flow() {
    let app = TestApp::spawn().await;
    let id = app.incident("Payments down").await;
    let log = app
        .create(
            &format!("/api/v1/evidence/incident/{id}"),
            &json!({"evidence_type": "log", "title": "payment-svc logs",
                    "content": "2026-11-27T03:01Z ERROR upstream timeout", "source": "kubectl logs"}),
        )
        .await;
    assert_eq!(log["evidence_type"], "log");
    assert_eq!(log["content"], "2026-11-27T03:01Z ERROR upstream timeout");
    assert!(
        log["analysis_state"].is_null(),
        "text evidence is not analysed"
    );

    let res = app.upload(id, png(320, 200), "grafana.png").await;
    assert_eq!(res.status(), 201);
    let shot: Value = res.json().await.unwrap();
    assert_eq!(shot["evidence_type"], "screenshot");
    assert_eq!(
        shot["content"], "",
        "content fills when the analysis is done"
    );
    assert_eq!(shot["analysis_state"], "waiting-for-model");
    assert_eq!(shot["image"]["width"], 320);
    assert_eq!(shot["image"]["mime"], "image/png");
    assert_eq!(shot["sha256"].as_str().unwrap().len(), 64);

    let polled = app
        .get_json(&format!("/api/v1/evidence/{}", shot["id"]))
        .await;
    assert_eq!(polled["analysis_state"], "waiting-for-model");
    let list = app
        .get_json(&format!("/api/v1/evidence/incident/{id}"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let img = app
        .get(&format!("/api/v1/evidence/{}/image", shot["id"]))
        .await;
    assert_eq!(img.headers()["content-type"], "image/png");
    assert_eq!(img.headers()["x-content-type-options"], "nosniff");
    // Streamed from its file, yet with its length, and its hash as a strong validator.
    let etag = format!("\"{}\"", shot["sha256"].as_str().unwrap());
    assert_eq!(img.headers()["etag"], etag.as_str());
    assert_eq!(
        img.headers()["content-length"],
        png(320, 200).len().to_string().as_str()
    );
    assert_eq!(img.bytes().await.unwrap().to_vec(), png(320, 200));
    let image_path = format!("/api/v1/evidence/{}/image", shot["id"]);
    let cached = app
        .req(reqwest::Method::GET, &image_path)
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert!(cached.bytes().await.unwrap().is_empty());
    let stale = app
        .req(reqwest::Method::GET, &image_path)
        .header("if-none-match", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap().to_vec(), png(320, 200));
    error_code(
        app.get(&format!("/api/v1/evidence/{}/image", log["id"]))
            .await,
        404,
    )
    .await;

    let status = app.get_json("/api/v1/test/vlm/status").await;
    assert_eq!(status["state"], "missing");
    assert_eq!(status["queue_length"], 1);
    assert_eq!(status["queue"]["waiting-for-model"], 1);

    let integ = app.get_json("/api/v1/integrations/test/all").await;
    let names: Vec<&str> = integ["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"pagerduty") && names.contains(&"github"));

    let tl = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let added: Vec<&Value> = tl
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "evidence_added")
        .collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[1]["evidence_id"], shot["id"]);
}

#[tokio::test]
async fn bad_evidence_bodies_get_clear_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let path = format!("/api/v1/evidence/incident/{id}");
    let before = app.snapshot();
    let raw = |body: &'static str| {
        app.req(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    assert_eq!(
        error_code(raw("{\"evidence_type\": \"log\",").await.unwrap(), 400).await,
        "invalid_json"
    );
    assert_eq!(
        error_code(
            raw("{\"evidence_type\": 5, \"title\": \"t\"}")
                .await
                .unwrap(),
            422
        )
        .await,
        "invalid_body"
    );
    assert_eq!(
        error_code(
            raw("{\"evidence_type\": \"poem\", \"title\": \"t\"}")
                .await
                .unwrap(),
            422
        )
        .await,
        "invalid_body"
    );
    assert_eq!(
        error_code(
            raw("{\"evidence_type\": \"log\", \"title\": \"\"}")
                .await
                .unwrap(),
            422
        )
        .await,
        "invalid"
    );
    assert_eq!(
        error_code(
            raw("{\"evidence_type\": \"log\", \"title\": \"t\", \"extra\": 1}")
                .await
                .unwrap(),
            422
        )
        .await,
        "invalid_body"
    );
    let res = app
        .post(&path, &json!({"evidence_type": "screenshot", "title": "t"}))
        .await;
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("upload-screenshot"));
    // wrong content type
    let res = app
        .req(reqwest::Method::POST, &path)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 415).await, "unsupported_media_type");
    // huge body
    let huge = format!(
        "{{\"evidence_type\":\"log\",\"title\":\"t\",\"content\":\"{}\"}}",
        "a".repeat(9 * 1024 * 1024)
    );
    let res = app
        .req(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 413).await, "payload_too_large");
    // unknown incident, non-numeric id
    error_code(
        app.post(
            "/api/v1/evidence/incident/424242",
            &json!({"evidence_type": "log", "title": "t"}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(
        error_code(
            app.post(
                "/api/v1/evidence/incident/abc",
                &json!({"evidence_type": "log", "title": "t"})
            )
            .await,
            400
        )
        .await,
        "invalid_path"
    );
    error_code(app.get("/api/v1/evidence/777").await, 404).await;
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn bad_uploads_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let before = app.snapshot();

    let code = error_code(
        app.upload(id, b"#!/bin/sh\nrm -rf /\n".to_vec(), "evil.png")
            .await,
        415,
    )
    .await;
    assert_eq!(code, "unsupported_media_type");
    // a GIF is an image, but not one we accept
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    error_code(app.upload(id, gif, "a.gif").await, 415).await;
    let mut truncated = png(200, 200);
    truncated.truncate(truncated.len() / 2);
    error_code(app.upload(id, truncated, "t.png").await, 415).await;
    // decompression bombs: refused from the header, before any pixel is decoded
    let t = std::time::Instant::now();
    assert_eq!(
        error_code(
            app.upload(id, png_bomb_header(20_000, 20_000), "bomb.png")
                .await,
            413
        )
        .await,
        "payload_too_large"
    );
    assert_eq!(
        error_code(
            app.upload(id, png_bomb_header(11_000, 11_000), "bomb.png")
                .await,
            413
        )
        .await,
        "payload_too_large"
    );
    eprintln!("two bomb uploads refused in {:?}", t.elapsed());
    // over the size limit
    let mut big = png(8, 8);
    big.resize(26 * 1024 * 1024, 0);
    error_code(app.upload(id, big, "big.png").await, 413).await;
    // empty file, missing field, not multipart, unknown incident
    error_code(app.upload(id, Vec::new(), "e.png").await, 422).await;
    let form = reqwest::multipart::Form::new().text("other", "x");
    let res = app
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/evidence/incident/{id}/upload-screenshot"),
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    error_code(res, 422).await;
    let res = app
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/evidence/incident/{id}/upload-screenshot"),
        )
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    error_code(app.upload(999, png(10, 10), "a.png").await, 404).await;
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn the_client_file_name_is_a_label_never_a_path() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let res = app
        .upload(id, png(30, 30), "../../../../tmp/owned.png")
        .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["image"]["original_name"], "../../../../tmp/owned.png");
    let files: Vec<String> = std::fs::read_dir(app.data_dir().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("{}.png", v["sha256"].as_str().unwrap())]);
    assert!(!std::path::Path::new("/tmp/owned.png").exists());
}

#[tokio::test]
async fn jpeg_and_webp_are_sniffed_from_the_bytes() {
    let app = TestApp::spawn().await;
    let id = app.incident("x").await;
    let img = image::RgbImage::from_pixel(50, 40, image::Rgb([200, 10, 10]));
    for (fmt, mime) in [
        (image::ImageFormat::Jpeg, "image/jpeg"),
        (image::ImageFormat::WebP, "image/webp"),
    ] {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        // a misleading name must not matter
        let res = app.upload(id, out.into_inner(), "shot.png").await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["image"]["mime"], mime);
        assert_eq!(
            (v["image"]["width"].as_u64(), v["image"]["height"].as_u64()),
            (Some(50), Some(40))
        );
    }
}

/// The same new image uploaded by several requests at once is stored once, and every upload
/// succeeds (each writes its own temporary file before the rename).
#[tokio::test]
async fn the_same_new_image_uploaded_at_once_by_many_is_stored_once() {
    let app = TestApp::spawn().await;
    let id = app.incident("Same screenshot from everyone").await;
    let uploads = (0..8).map(|_| app.upload(id, png(300, 170), "same.png"));
    let results = futures_util::future::join_all(uploads).await;
    let mut hashes = Vec::new();
    for res in results {
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        hashes.push(v["sha256"].as_str().unwrap().to_string());
        let img = app
            .get(&format!("/api/v1/evidence/{}/image", v["id"]))
            .await;
        assert_eq!(img.bytes().await.unwrap().to_vec(), png(300, 170));
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1);
    let blobs = app.data_dir().join("blobs");
    let files: Vec<String> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "one file, no temporary left: {files:?}");
}
