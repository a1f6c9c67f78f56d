//! The MCP server through a real MCP client (the official `rmcp` SDK): the streamable-HTTP
//! endpoint of a running server (`/mcp`, behind the API's guards) and the `opslens mcp` binary
//! on stdio, both opening the data dir itself and relaying to a running server.

use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use reqwest::Method;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::app::{png, TestApp};

type McpClient = RunningService<RoleClient, ()>;

const AGENT: &str = "agent via MCP";

async fn http_client(app: &TestApp) -> McpClient {
    let config =
        StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(app.token());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP session over HTTP")
}

async fn call(c: &McpClient, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// The JSON a successful tool answered (its first text block).
fn json_of(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {r:?}");
    let text = &r.content[0].as_text().expect("text content").text;
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The error code of a failed tool call.
fn error_code(r: &CallToolResult) -> String {
    assert_eq!(r.is_error, Some(true), "expected a tool error: {r:?}");
    let text = &r.content[0].as_text().unwrap().text;
    let v: Value = serde_json::from_str(text).unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn http_endpoint_is_guarded_like_the_api() {
    let app = TestApp::spawn().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let post = |auth: Option<String>| {
        let mut r = app
            .http
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = auth {
            r = r.bearer_auth(t);
        }
        r
    };
    let res = post(None).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(crate::app::error_code(res, 401).await, "unauthorized");
    let res = post(Some("wrong".into())).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // Another web page may not drive it, even with the token (no CORS escape via MCP).
    let res = post(Some(app.token()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(crate::app::error_code(res, 403).await, "forbidden_origin");
    let (status, _, _) = app
        .raw(&format!(
            "POST /mcp HTTP/1.1\r\nHost: rebind.example:{}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            app.server().addr.port(),
            app.token()
        ))
        .await;
    assert_eq!(status, 403, "a foreign Host is refused");
    let res = post(Some(app.token())).send().await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

#[tokio::test]
async fn an_agent_works_an_incident_over_http_and_the_api_shows_it_as_the_agents() {
    let app = TestApp::spawn().await;
    let c = http_client(&app).await;

    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in [
        "list_incidents",
        "search",
        "get_incident",
        "create_incident",
        "add_note",
        "add_evidence",
        "add_hypothesis",
        "add_action",
        "capture_screen",
        "upload_image",
        "get_screenshot",
        "ask_screenshot",
        "get_analysis_job",
        "get_postmortem",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // The schema is the REST body's, limits and enums included.
    let create = tools.iter().find(|t| t.name == "create_incident").unwrap();
    let schema = Value::Object((*create.input_schema).clone());
    assert_eq!(schema["properties"]["title"]["maxLength"], 500, "{schema}");
    assert!(
        schema.to_string().contains("critical"),
        "severity enum inlined: {schema}"
    );
    let note = tools.iter().find(|t| t.name == "add_note").unwrap();
    assert_eq!(
        note.input_schema["required"],
        json!(["incident_id", "message"])
    );

    // Create through MCP, read through REST: the agent is named as the author.
    let inc = json_of(
        &call(
            &c,
            "create_incident",
            json!({"title": "Checkout 502s", "severity": "high"}),
        )
        .await,
    );
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["severity"], "high");
    let rest = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(rest["title"], "Checkout 502s");
    let timeline = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let entries = timeline.as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["author"] == AGENT), "{timeline}");

    json_of(
        &call(
            &c,
            "add_note",
            json!({"incident_id": id, "message": "p99 doubled at 14:02"}),
        )
        .await,
    );
    let ev = json_of(
        &call(
            &c,
            "add_evidence",
            json!({"incident_id": id, "evidence_type": "log",
        "title": "nginx", "content": "upstream timed out"}),
        )
        .await,
    );
    assert_eq!(ev["author"], AGENT);
    let h = json_of(
        &call(
            &c,
            "add_hypothesis",
            json!({"incident_id": id,
        "statement": "The new pool size starves checkout", "evidence_ids": [ev["id"]]}),
        )
        .await,
    );
    assert_eq!(h["author"], AGENT);
    let a = json_of(
        &call(
            &c,
            "add_action",
            json!({"incident_id": id, "title": "Roll back pool size"}),
        )
        .await,
    );
    assert_eq!(a["author"], AGENT);
    let hyps = app
        .get_json(&format!("/api/v1/incidents/{id}/hypotheses"))
        .await;
    assert_eq!(hyps[0]["author"], AGENT);
    let acts = app
        .get_json(&format!("/api/v1/incidents/{id}/actions"))
        .await;
    assert_eq!(acts[0]["author"], AGENT);
    let timeline = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    assert!(
        timeline
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "p99 doubled at 14:02" && e["author"] == AGENT),
        "{timeline}"
    );

    // The same writes through REST stay the local user's: the agent's name does not leak.
    let other = app.incident("Typed by a person").await;
    let t = app
        .get_json(&format!("/api/v1/incidents/{other}/timeline"))
        .await;
    assert!(
        t.as_array().unwrap().iter().all(|e| e["author"] != AGENT),
        "{t}"
    );

    // Reading back: the incident with everything on it, list and search.
    let full = json_of(&call(&c, "get_incident", json!({"incident_id": id})).await);
    assert_eq!(full["incident"]["id"], id);
    assert_eq!(full["hypotheses"].as_array().unwrap().len(), 1);
    assert_eq!(full["evidence"][0]["title"], "nginx");
    let page = json_of(&call(&c, "list_incidents", json!({"open": true})).await);
    assert_eq!(page["total"], 2);
    let hits = json_of(&call(&c, "search", json!({"q": "upstream"})).await);
    assert!(!hits["hits"].as_array().unwrap().is_empty(), "{hits}");
    let pm = call(&c, "get_postmortem", json!({"incident_id": id})).await;
    assert_ne!(pm.is_error, Some(true));
    assert!(pm.content[0]
        .as_text()
        .unwrap()
        .text
        .contains("Checkout 502s"));

    // Bad input is a readable tool error and writes nothing.
    assert_eq!(
        error_code(&call(&c, "create_incident", json!({"title": " "})).await),
        "invalid"
    );
    assert_eq!(
        error_code(
            &call(
                &c,
                "create_incident",
                json!({"title": "x", "sevrity": "high"})
            )
            .await
        ),
        "invalid_arguments"
    );
    assert_eq!(
        error_code(&call(&c, "add_note", json!({"message": "no incident"})).await),
        "invalid_arguments"
    );
    assert_eq!(
        error_code(&call(&c, "get_incident", json!({"incident_id": 999})).await),
        "not_found"
    );
    let page = app.get_json("/api/v1/incidents").await;
    assert_eq!(page["total"], 2);

    // The screen is the user's: no confirmation, no capture; a headless server says so.
    assert_eq!(
        error_code(&call(&c, "capture_screen", json!({"confirm": false})).await),
        "confirmation_required"
    );
    assert_eq!(
        error_code(
            &call(
                &c,
                "capture_screen",
                json!({"confirm": true, "incident_id": id})
            )
            .await
        ),
        "no_display"
    );

    // An image uploaded as base64 is a screenshot; its resource is the image itself.
    let bytes = png(40, 30);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let shot = json_of(
        &call(
            &c,
            "upload_image",
            json!({"incident_id": id, "data_base64": b64, "filename": "grafana.png"}),
        )
        .await,
    );
    let shot_id = shot["id"].as_i64().unwrap();
    assert_eq!(shot["author"], AGENT);
    assert_eq!(shot["image"]["width"], 40);
    assert_eq!(
        error_code(
            &call(
                &c,
                "upload_image",
                json!({"incident_id": id, "data_base64": "%%%"})
            )
            .await
        ),
        "invalid_arguments"
    );
    let served = app
        .req(Method::GET, &format!("/api/v1/evidence/{shot_id}/image"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let uri = format!("opslens://evidence/{shot_id}/image");
    let read = c
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::BlobResourceContents {
            blob,
            mime_type,
            uri: u,
            ..
        } => {
            assert_eq!(u, &uri);
            assert_eq!(mime_type.as_deref(), Some("image/png"));
            let got = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap();
            assert_eq!(got, served.to_vec(), "the resource is the stored image");
        }
        other => panic!("expected an image blob, got {other:?}"),
    }
    let listed = c.list_all_resources().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|r| r.uri == uri && r.mime_type.as_deref() == Some("image/png")),
        "{listed:?}"
    );
    assert!(listed
        .iter()
        .any(|r| r.uri == format!("opslens://incidents/{id}")));
    let img = call(&c, "get_screenshot", json!({"evidence_id": shot_id})).await;
    let image = img.content[0].as_image().expect("image content");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&image.data)
            .unwrap(),
        served.to_vec()
    );
    let incident = c
        .read_resource(ReadResourceRequestParams::new(format!(
            "opslens://incidents/{id}"
        )))
        .await
        .unwrap();
    match &incident.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => {
            assert!(text.contains("Checkout 502s"))
        }
        other => panic!("expected JSON text, got {other:?}"),
    }
    assert!(c
        .read_resource(ReadResourceRequestParams::new(
            "opslens://evidence/999/image".to_string()
        ))
        .await
        .is_err());

    // No model here: the question is queued and the job comes back to poll.
    let job = json_of(
        &call(
            &c,
            "ask_screenshot",
            json!({"evidence_id": shot_id, "question": "what is red?", "wait_seconds": 0}),
        )
        .await,
    );
    assert_eq!(job["question"], "what is red?");
    let again = json_of(&call(&c, "get_analysis_job", json!({"job_id": job["id"]})).await);
    assert_eq!(again["id"], job["id"]);
    c.cancel().await.unwrap();
}

/// `opslens mcp` on `data`, its stdio as the client's transport.
async fn spawn_stdio(data: &std::path::Path) -> (Child, McpClient) {
    use tokio::net::unix::pipe;
    let mut child = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .arg("mcp")
        .env("OPSLENS_DATA_DIR", data)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", data.join("no-models"))
        .env_remove("OPSLENS_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = pipe::Sender::from_owned_fd(child.stdin.take().unwrap().into()).unwrap();
    let stdout = pipe::Receiver::from_owned_fd(child.stdout.take().unwrap().into()).unwrap();
    let client = ().serve((stdout, stdin)).await.expect("MCP session over stdio");
    (child, client)
}

fn stderr_of(mut child: Child) -> String {
    use std::io::Read;
    let _ = child.wait();
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[tokio::test]
async fn opslens_mcp_on_stdio_opens_the_data_dir_or_relays_to_the_server() {
    // No server: the binary opens the data dir itself.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, c) = spawn_stdio(&data).await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "create_incident"));
    let inc = json_of(&call(&c, "create_incident", json!({"title": "Made offline"})).await);
    assert_eq!(
        error_code(&call(&c, "capture_screen", json!({"confirm": true})).await),
        "no_display"
    );
    c.cancel().await.unwrap();
    let err = stderr_of(child);
    assert!(err.contains("serving") && err.contains("directly"), "{err}");

    // The server started later on the same data dir shows it, written by the agent.
    let server = opslens::server::Server::start_with(&data, "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let t: Value = http
        .get(format!(
            "{}/incidents/{}/timeline",
            server.api_url(),
            inc["id"]
        ))
        .bearer_auth(server.token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t[0]["author"], AGENT, "{t}");
    server.stop().await.unwrap();

    // A running server: the binary relays to its /mcp with the user's token.
    let app = TestApp::spawn().await;
    app.server().write_server_file().unwrap();
    let (child, c) = spawn_stdio(&app.data_dir()).await;
    assert_eq!(
        c.peer_info().unwrap().server_info.as_ref().unwrap().name,
        "opslens"
    );
    let inc = json_of(&call(&c, "create_incident", json!({"title": "Relayed"})).await);
    let id = inc["id"].as_i64().unwrap();
    // Written by the server's own process: the REST API has it at once, by the agent.
    let t = app
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    assert_eq!(t[0]["author"], AGENT, "{t}");
    let shot = app.upload(id, png(8, 8), "s.png").await;
    let shot: Value = shot.json().await.unwrap();
    let read = c
        .read_resource(ReadResourceRequestParams::new(format!(
            "opslens://evidence/{}/image",
            shot["id"]
        )))
        .await
        .unwrap();
    assert!(
        matches!(&read.contents[0], ResourceContents::BlobResourceContents { mime_type, .. } if mime_type.as_deref() == Some("image/png"))
    );
    assert_eq!(
        error_code(&call(&c, "get_incident", json!({"incident_id": 4242})).await),
        "not_found"
    );
    c.cancel().await.unwrap();
    let err = stderr_of(child);
    assert!(err.contains("relaying to the server"), "{err}");
}
