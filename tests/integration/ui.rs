//! The web UI's files at `/` (public, under a CSP) and the one-time sign-in code that hands the
//! token to a browser.

use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

#[tokio::test]
async fn ui_files_are_served_without_the_token_under_a_csp() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = res.text().await.unwrap();
    assert!(body.contains("/assets/main.js"), "{body}");

    let js = app
        .http
        .get(app.url("/assets/main.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    let missing = app
        .http
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(missing, 404).await, "not_found");
}

#[tokio::test]
async fn ui_paths_open_nothing_else() {
    let app = TestApp::spawn().await;
    let port = app.server().addr.port();
    // Only GET/HEAD of UI files skip the token.
    let res = app.http.post(app.url("/")).send().await.unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");
    // A dot-dot path under /assets/ is not the API.
    let (status, _, body) = app
        .raw(&format!(
            "GET /assets/../api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_ne!(status, 200, "{body}");
    assert!(!body.contains("\"items\""), "{body}");
    // The Host check still applies to the UI (DNS rebinding).
    let (status, _, _) = app
        .raw("GET / HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_sign_in_code_trades_for_the_token_once() {
    let app = TestApp::spawn().await;
    let no_auth = app
        .http
        .post(app.url("/api/v1/auth/code"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(no_auth, 401).await, "unauthorized");

    let res = app
        .req(Method::POST, "/api/v1/auth/code")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    let code = v["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 64);
    let port = app.server().addr.port();
    assert_eq!(
        v["url"],
        format!("http://127.0.0.1:{port}/#code={code}").as_str()
    );

    let trade = |body: Value| {
        app.http
            .post(app.url("/api/v1/auth/exchange"))
            .json(&body)
            .send()
    };
    let res = trade(json!({ "code": code })).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["token"], app.token().as_str());

    let again = trade(json!({ "code": code })).await.unwrap();
    assert_eq!(error_code(again, 401).await, "invalid_code");
    let wrong = trade(json!({ "code": "00" })).await.unwrap();
    assert_eq!(error_code(wrong, 401).await, "invalid_code");
    let foreign = app
        .http
        .post(app.url("/api/v1/auth/exchange"))
        .header("Origin", "https://evil.example")
        .json(&json!({ "code": "00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(foreign, 403).await, "forbidden_origin");
}

#[tokio::test]
async fn info_tells_the_settings_screen_where_things_are() {
    let app = TestApp::spawn().await;
    let v = app.get_json("/api/v1/info").await;
    assert_eq!(v["port"], app.server().addr.port());
    assert_eq!(v["data_dir"], app.data_dir().display().to_string().as_str());
    assert_eq!(v["hotkey"], "Ctrl+Shift+O");
    assert_eq!(v["region_hotkey"], "Ctrl+Shift+R");
}

#[tokio::test]
async fn info_warns_before_the_disk_fills() {
    let app = TestApp::spawn_with_extras(opslens_api::Extras {
        low_disk_bytes: 0,
        ..Default::default()
    })
    .await;
    let v = app.get_json("/api/v1/info").await;
    let st = &v["storage"];
    assert!(st["free_bytes"].as_u64().unwrap() > 0, "{st}");
    assert!(st["total_bytes"].as_u64().unwrap() >= st["free_bytes"].as_u64().unwrap());
    assert_eq!(st["low"], false, "{st}");
    assert!(st["warning"].is_null(), "{st}");

    // A threshold above any disk: the same dir now counts as nearly full.
    let full = TestApp::spawn_with_extras(opslens_api::Extras {
        low_disk_bytes: u64::MAX,
        ..Default::default()
    })
    .await;
    let v = full.get_json("/api/v1/info").await;
    let st = &v["storage"];
    assert_eq!(st["low"], true, "{st}");
    let w = st["warning"].as_str().unwrap();
    assert!(w.contains(&full.data_dir().display().to_string()), "{w}");
    assert!(w.contains(" free (warning under "), "{w}");
}

#[tokio::test]
async fn issue_12_an_unknown_page_is_a_not_found_page_not_a_401() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/incidents/42/nope"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.headers().contains_key("content-security-policy"));
    let body = res.text().await.unwrap();
    assert!(body.contains("Page not found"), "{body}");
    // Markup in the path is shown, never run.
    let res = app
        .http
        .get(app.url("/%3Cscript%3E"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(!res.text().await.unwrap().contains("<script>"));
    // Scripts still get JSON, and the API still needs the token.
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(error_code(res, 404).await, "not_found");
    let res = app
        .http
        .get(app.url("/api/v1/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");
}
