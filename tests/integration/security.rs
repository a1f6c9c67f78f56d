//! The local API's guards: token, Host, Origin, no CORS, token file mode, loopback only.

use serde_json::Value;

use crate::app::{error_code, TestApp};

/// Every route of the spec, with ids filled in.
fn routes(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let p = path.replace("{id}", "1").replace("{incident_id}", "1");
            out.push((method.to_uppercase(), p));
        }
    }
    out
}

#[tokio::test]
async fn every_route_but_health_code_exchange_and_webhooks_needs_the_token() {
    let app = TestApp::spawn().await;
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = routes(&spec);
    assert!(routes.len() >= 20, "{routes:?}");
    for (method, path) in routes {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let no_token = app
            .http
            .request(m.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        let wrong = app
            .http
            .request(m.clone(), app.url(&path))
            .bearer_auth("0".repeat(64))
            .send()
            .await
            .unwrap();
        let in_query = app
            .http
            .request(m, app.url(&format!("{path}?token={}", app.token())))
            .send()
            .await
            .unwrap();
        if path == "/api/v1/health" {
            assert_eq!(no_token.status(), 200);
            continue;
        }
        if path == "/api/v1/auth/exchange" {
            // Public, but it only answers a fresh one-time code (ui.rs tests it).
            assert_eq!(no_token.status(), 415, "{method} {path}");
            continue;
        }
        if path.starts_with("/api/v1/webhooks/") {
            // Signed by the sender instead of the token: unsigned requests are never accepted.
            for res in [no_token, wrong, in_query] {
                assert!(
                    !res.status().is_success(),
                    "{method} {path}: {}",
                    res.status()
                );
            }
            continue;
        }
        for res in [no_token, wrong, in_query] {
            assert_eq!(
                res.headers()["www-authenticate"],
                "Bearer",
                "{method} {path}"
            );
            assert_eq!(
                error_code(res, 401).await,
                "unauthorized",
                "{method} {path}"
            );
        }
    }
    // docs and spec are public and served by the binary itself
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(!html.contains("https://"), "no CDN assets");
    let js = app
        .http
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
}

#[tokio::test]
async fn a_foreign_host_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let before = app.snapshot();
    let body = r#"{"title":"rebound"}"#;
    let req = format!(
        "POST /api/v1/incidents HTTP/1.1\r\nHost: evil.example:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.server().addr.port(),
        app.token(),
        body.len()
    );
    let (status, _, resp) = app.raw(&req).await;
    assert_eq!(status, 403);
    assert!(resp.contains("forbidden_host"));
    // a loopback name on another port is foreign too
    let req = "GET /api/v1/health HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n";
    assert_eq!(app.raw(req).await.0, 403);
    // the allowed spellings
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let req = format!(
            "GET /api/v1/health HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            app.server().addr.port()
        );
        assert_eq!(app.raw(&req).await.0, 200, "{host}");
    }
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_without_cors_headers() {
    let app = TestApp::spawn().await;
    let before = app.snapshot();
    let res = app
        .req(reqwest::Method::POST, "/api/v1/incidents")
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"title": "csrf"}))
        .send()
        .await
        .unwrap();
    assert!(res
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
    assert_eq!(error_code(res, 403).await, "forbidden_origin");
    let pre = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/incidents"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(pre
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
    assert_eq!(pre.status(), 403);
    // a form post (no preflight in browsers) without the token does nothing either
    let form = app
        .http
        .post(app.url("/api/v1/incidents"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("title=csrf")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);
    assert_eq!(app.snapshot(), before);
    // the UI's own origin is fine
    let own = format!("http://127.0.0.1:{}", app.server().addr.port());
    let res = app
        .req(reqwest::Method::GET, "/api/v1/incidents")
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn token_file_is_owner_only_and_never_logged() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let path = app.data_dir().join("api-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(app.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(app.token().len() >= 64, "at least 256 bits");
    assert!(format!("{:?}", app.server()).contains("ApiToken(***)"));
}

#[test]
fn only_loopback_addresses_are_accepted() {
    assert!(opslens::config::listen_addr("0.0.0.0:8000").is_err());
    assert!(opslens::config::listen_addr("192.168.1.2:8000").is_err());
    assert!(opslens::config::listen_addr("127.0.0.1:8000").is_ok());
    assert!(opslens::config::listen_addr("[::1]:8000").is_ok());
}
