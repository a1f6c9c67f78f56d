//! People and roles (issue 12): the local user as default author, people, incident roles
//! recorded on the timeline, and the bad-input cases (unknown role, unknown person).

use serde_json::{json, Value};

use crate::app::{error_code, TestApp};

async fn put(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.req(reqwest::Method::PUT, path)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The message of a 422, asserting the shape.
async fn invalid(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 422);
    let v: Value = res.json().await.unwrap();
    v["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_local_user_is_the_author_of_what_the_token_writes() {
    let app = TestApp::spawn().await;
    let me = app.get_json("/api/v1/me").await;
    assert_eq!(me["local_user"], true);
    assert!(
        !me["name"].as_str().unwrap().is_empty(),
        "named after the OS account"
    );
    let res = put(
        &app,
        "/api/v1/me",
        &json!({"name": "Ana Lima", "handle": "@ana"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["handle"].as_str()),
        (Some("Ana Lima"), Some("ana"))
    );
    assert_eq!(
        me["id"],
        app.get_json("/api/v1/me").await["id"],
        "one local user"
    );

    let inc = app.incident("checkout p99").await;
    let note = app
        .create(
            &format!("/api/v1/incidents/{inc}/timeline"),
            &json!({"message": "paged"}),
        )
        .await;
    assert_eq!(note["author"], "Ana Lima");
    let ev = app
        .create(
            &format!("/api/v1/evidence/incident/{inc}"),
            &json!({"evidence_type": "note", "title": "n", "content": "x"}),
        )
        .await;
    assert_eq!(ev["author"], "Ana Lima");
    let h = app
        .create(
            &format!("/api/v1/incidents/{inc}/hypotheses"),
            &json!({"statement": "pool"}),
        )
        .await;
    assert_eq!(h["author"], "Ana Lima");
    let a = app
        .create(
            &format!("/api/v1/incidents/{inc}/actions"),
            &json!({"title": "roll back"}),
        )
        .await;
    assert_eq!(a["author"], "Ana Lima");
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    assert!(
        tl.as_array()
            .unwrap()
            .iter()
            .all(|e| e["author"] == "Ana Lima"),
        "{tl}"
    );
}

#[tokio::test]
async fn roles_change_hands_on_the_timeline() {
    let app = TestApp::spawn().await;
    put(
        &app,
        "/api/v1/me",
        &json!({"name": "Ana Lima", "handle": "ana"}),
    )
    .await;
    let bo = app
        .create(
            "/api/v1/people",
            &json!({"name": "Bo Chen", "handle": "bo", "email": "bo@example.com"}),
        )
        .await;
    let people = app.get_json("/api/v1/people").await;
    assert_eq!(people[0]["name"], "Ana Lima", "local user first");
    assert_eq!(people.as_array().unwrap().len(), 2);
    let inc = app.incident("checkout p99").await;

    let res = put(
        &app,
        &format!("/api/v1/incidents/{inc}/roles/commander"),
        &json!({"person": "@ana"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = put(
        &app,
        &format!("/api/v1/incidents/{inc}/roles/commander"),
        &json!({"person": "Bo Chen"}),
    )
    .await;
    let roles: Value = res.json().await.unwrap();
    assert_eq!(roles["commander"]["id"], bo["id"]);
    let bo_id = bo["id"].to_string();
    for (role, who) in [
        ("communications", "ana"),
        ("scribe", "bo"),
        ("participant", "ana"),
        ("participant", bo_id.as_str()),
    ] {
        let res = put(
            &app,
            &format!("/api/v1/incidents/{inc}/roles/{role}"),
            &json!({"person": who}),
        )
        .await;
        assert_eq!(res.status(), 200, "{role} {who}");
    }
    let roles = app
        .get_json(&format!("/api/v1/incidents/{inc}/roles"))
        .await;
    assert_eq!(roles["communications"]["name"], "Ana Lima");
    assert_eq!(roles["scribe"]["name"], "Bo Chen");
    assert_eq!(roles["participants"].as_array().unwrap().len(), 2);
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let lines: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "role_changed")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(lines[0], "Ana Lima is now incident commander");
    assert_eq!(lines[1], "Bo Chen is now incident commander (was Ana Lima)");
    assert_eq!(lines.len(), 6, "{lines:?}");
    // Assigning again what someone already holds records nothing.
    put(
        &app,
        &format!("/api/v1/incidents/{inc}/roles/scribe"),
        &json!({"person": "bo"}),
    )
    .await;
    let res = app
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/incidents/{inc}/roles/participant/{}", bo["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let roles: Value = res.json().await.unwrap();
    assert_eq!(roles["participants"].as_array().unwrap().len(), 1);
    let res = app
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/incidents/{inc}/roles/participant/{}", bo["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 404).await, "not_found");
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let n = tl
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "role_changed")
        .count();
    assert_eq!(n, 7, "one for the removal, none for the repeat");
}

#[tokio::test]
async fn unknown_roles_422_and_unknown_people_404_name_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let inc = app.incident("t").await;
    app.create("/api/v1/people", &json!({"name": "Bo", "handle": "bo"}))
        .await;
    let before = app.snapshot();
    let tl = app
        .get_json(&format!("/api/v1/incidents/{inc}/timeline"))
        .await;
    let msg = invalid(
        put(
            &app,
            &format!("/api/v1/incidents/{inc}/roles/captain"),
            &json!({"person": "bo"}),
        )
        .await,
    )
    .await;
    assert!(msg.starts_with("role must be one of"), "{msg}");
    // Nobody by that id, handle or name: not found, naming the field.
    let res = put(
        &app,
        &format!("/api/v1/incidents/{inc}/roles/scribe"),
        &json!({"person": "nobody"}),
    )
    .await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.starts_with("person:"), "{msg}");
    // Nobody by that id, handle or name: not found, naming the field.
    let res = put(
        &app,
        &format!("/api/v1/incidents/{inc}/roles/scribe"),
        &json!({"person": "999"}),
    )
    .await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.starts_with("person:"), "{msg}");
    let msg = invalid(
        put(
            &app,
            &format!("/api/v1/incidents/{inc}/roles/scribe"),
            &json!({"person": " "}),
        )
        .await,
    )
    .await;
    assert!(msg.starts_with("person"), "{msg}");
    let res = put(
        &app,
        "/api/v1/incidents/999/roles/scribe",
        &json!({"person": "bo"}),
    )
    .await;
    assert_eq!(error_code(res, 404).await, "not_found");
    // People: a name is needed, handles are unique, emails look like emails.
    let msg = invalid(app.post("/api/v1/people", &json!({"name": " "})).await).await;
    assert!(msg.starts_with("name"), "{msg}");
    let msg = invalid(
        app.post("/api/v1/people", &json!({"name": "x", "email": "nope"}))
            .await,
    )
    .await;
    assert!(msg.starts_with("email"), "{msg}");
    let msg = invalid(
        app.post("/api/v1/people", &json!({"name": "x", "handle": "a b"}))
            .await,
    )
    .await;
    assert!(msg.starts_with("handle"), "{msg}");
    let res = app
        .post(
            "/api/v1/people",
            &json!({"name": "Other Bo", "handle": "BO"}),
        )
        .await;
    assert_eq!(error_code(res, 409).await, "conflict");
    assert_eq!(app.snapshot(), before);
    assert_eq!(
        app.get_json(&format!("/api/v1/incidents/{inc}/timeline"))
            .await,
        tl
    );
    assert_eq!(
        app.get_json("/api/v1/people")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn the_spec_documents_people_and_roles_with_their_errors() {
    let app = TestApp::spawn().await;
    let spec = app.get_json("/openapi.json").await;
    let paths = &spec["paths"];
    for (path, method, codes) in [
        ("/api/v1/people", "post", &["201", "409", "422"][..]),
        ("/api/v1/me", "put", &["200", "422"][..]),
        (
            "/api/v1/incidents/{id}/roles/{role}",
            "put",
            &["200", "404", "422"][..],
        ),
        (
            "/api/v1/incidents/{id}/roles/{role}/{person_id}",
            "delete",
            &["200", "404"][..],
        ),
    ] {
        for c in codes {
            assert!(
                paths[path][method]["responses"][c].is_object(),
                "{method} {path} {c}"
            );
        }
    }
}
