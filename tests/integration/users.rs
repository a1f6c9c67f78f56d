//! People's own tokens (issue 17.3): `users add` prints a token once and keeps only its hash,
//! each token's person is the author of what it writes, viewers read but cannot write (403,
//! nothing written), only admins manage users, and a revoked token answers 401 — at once in
//! this process, within a second when revoked behind its back.

use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

/// A request with `token` instead of the install token.
fn with(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

async fn add_user(app: &TestApp, name: &str, role: &str) -> (Value, String) {
    let res = app
        .post("/api/v1/users", &json!({"name": name, "role": role}))
        .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("olu_") && token.len() == 68, "{token}");
    (v["user"].clone(), token)
}

#[tokio::test]
async fn each_persons_token_writes_under_their_name() {
    let app = TestApp::spawn().await;
    let (ana, token) = add_user(&app, "Ana Lima", "member").await;
    assert_eq!(ana["person"]["name"], "Ana Lima");
    assert_eq!(ana["role"], "member");

    let me: Value = with(&app, &token, Method::GET, "/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Ana Lima");
    assert_eq!(me["local_user"], false);

    let res = with(&app, &token, Method::POST, "/api/v1/incidents")
        .json(&json!({"title": "checkout p99 spike after deploy v2.41.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let inc = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for (path, body) in [
        (
            format!("/api/v1/incidents/{inc}/timeline"),
            json!({"message": "paged"}),
        ),
        (
            format!("/api/v1/evidence/incident/{inc}"),
            json!({"evidence_type": "log", "title": "l", "content": "503 upstream"}),
        ),
        (
            format!("/api/v1/incidents/{inc}/hypotheses"),
            json!({"statement": "pool exhaustion"}),
        ),
        (
            format!("/api/v1/incidents/{inc}/actions"),
            json!({"title": "roll back"}),
        ),
        (
            format!("/api/v1/incidents/{inc}/updates"),
            json!({"text": "investigating"}),
        ),
    ] {
        let res = with(&app, &token, Method::POST, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["author"], "Ana Lima", "{path}: {v}");
    }
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let authors: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    assert!(authors.iter().all(|a| *a == "Ana Lima"), "{authors:?}");

    // The install token still writes as the local user.
    let local = app.get_json("/api/v1/me").await["name"].clone();
    let h = app
        .create(
            &format!("/api/v1/incidents/{inc}/hypotheses"),
            &json!({"statement": "dns"}),
        )
        .await;
    assert_eq!(h["author"], local);

    // Only the hash is stored: the token appears nowhere in the database.
    assert!(
        !app.database_contains(&token),
        "plaintext token in the database"
    );
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write_and_only_admins_manage_users() {
    let app = TestApp::spawn().await;
    let inc = app.incident("checkout p99").await;
    let (_, viewer) = add_user(&app, "Vic", "viewer").await;
    let (_, member) = add_user(&app, "Mo", "member").await;

    let res = with(
        &app,
        &viewer,
        Method::GET,
        &format!("/api/v1/incidents/{inc}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let before = app.get_json("/api/v1/incidents").await["total"].clone();
    for (method, path) in [
        (Method::POST, "/api/v1/incidents".to_string()),
        (Method::PATCH, format!("/api/v1/incidents/{inc}")),
        (Method::DELETE, format!("/api/v1/incidents/{inc}")),
    ] {
        let res = with(&app, &viewer, method.clone(), &path)
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(res, 403).await,
            "forbidden_role",
            "{method} {path}"
        );
    }
    assert_eq!(app.get_json("/api/v1/incidents").await["total"], before);
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{inc}")).await["title"],
        "checkout p99"
    );

    for token in [&viewer, &member] {
        let res = with(&app, token, Method::GET, "/api/v1/users")
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(res, 403).await, "forbidden_role");
    }
    let res = with(&app, &member, Method::POST, "/api/v1/users")
        .json(&json!({"name": "Eve", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 403).await, "forbidden_role");

    let list = app.get_json("/api/v1/users").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["person"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Mo", "Vic"]);
    assert!(
        list.to_string().find("olu_").is_none(),
        "tokens are never listed"
    );
}

#[tokio::test]
async fn revoked_tokens_answer_401_and_bad_input_is_named() {
    let app = TestApp::spawn().await;
    let (_, ana) = add_user(&app, "Ana Lima", "admin").await;
    let ok = with(&app, &ana, Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "an admin's own token manages users");

    // A live token cannot be doubled; unknown people and wrong roles are named.
    let res = app
        .post("/api/v1/users", &json!({"name": "ana lima"}))
        .await;
    assert_eq!(error_code(res, 409).await, "conflict");
    let res = app
        .post("/api/v1/users", &json!({"name": "Bo", "role": "owner"}))
        .await;
    assert_eq!(res.status(), 422);
    let res = app.post("/api/v1/users", &json!({"name": "  "})).await;
    assert_eq!(res.status(), 422);
    let res = app
        .req(Method::DELETE, "/api/v1/users/Nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 404).await, "not_found");

    let res = app
        .req(Method::DELETE, "/api/v1/users/Ana%20Lima")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = with(&app, &ana, Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res, 401).await,
        "unauthorized",
        "revoked here: at once"
    );

    // A token revoked behind the server's back (another process, another replica) stops
    // working within a second.
    let (_, bo) = add_user(&app, "Bo", "member").await;
    let res = with(&app, &bo, Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.sql_exec(
        "UPDATE api_token SET revoked_at = '2026-11-30T00:00:00Z' WHERE revoked_at IS NULL",
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = with(&app, &bo, Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await, "unauthorized");

    // After a revocation the person can get a new token.
    let (again, _) = add_user(&app, "Ana Lima", "member").await;
    assert_eq!(again["person"]["name"], "Ana Lima");
}
