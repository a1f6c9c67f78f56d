//! Leaving loopback safely (issue 17.4): a non-loopback address only with TLS or a named
//! reverse proxy (and a public URL), refused in one line otherwise with nothing written; HTTPS
//! with a certificate made here; the public URL in the Host and Origin checks; only the proxy
//! may connect and only its forwarded headers count; too many failed authentications → 429.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use opslens::server::{Server, StartOptions};
use opslens_api::exposure::{AuthLimit, Exposure, PublicUrl};
use reqwest::Response;
use serde_json::{json, Value};

use crate::app::error_code;

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files under `dir`.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = ck.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key, cert_pem)
}

fn options(exposure: Exposure) -> StartOptions {
    StartOptions {
        secrets_from_env: false,
        extras: opslens_api::Extras {
            exposure,
            ..Default::default()
        },
        next_free_port: false,
        analysis: None,
        blobs: Default::default(),
    }
}

/// An HTTPS client that trusts `cert_pem` and nothing else.
fn https_client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn code_of(res: Response, status: u16) -> String {
    error_code(res, status).await
}

#[tokio::test]
async fn off_loopback_without_tls_or_proxy_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let err = Server::start_opts(
        &data,
        "0.0.0.0:0".parse().unwrap(),
        options(Exposure::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--tls-cert") && err.contains("--behind-proxy"),
        "{err}"
    );
    assert!(!data.exists(), "a refused start leaves no data dir behind");
    // TLS alone is not enough without the name clients use
    let (cert, key, _) = self_signed(dir.path());
    let exposure = Exposure {
        tls: Some(opslens_api::tls::load(&cert, &key).unwrap()),
        ..Exposure::default()
    };
    let err = Server::start_opts(&data, "0.0.0.0:0".parse().unwrap(), options(exposure))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("--public-url"), "{err}");
    assert!(!data.exists());
}

#[test]
fn the_cli_refuses_in_one_line_and_names_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_opslens"))
            .args(args)
            .env("OPSLENS_DATA_DIR", &data)
            .env_remove("OPSLENS_ADDR")
            .env_remove("OPSLENS_TLS_CERT")
            .env_remove("OPSLENS_TLS_KEY")
            .env_remove("OPSLENS_BEHIND_PROXY")
            .env_remove("OPSLENS_PUBLIC_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    };
    let err = run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(
        err.contains("--tls-cert") && err.contains("--behind-proxy"),
        "{err}"
    );
    let missing = dir.path().join("nowhere.pem");
    let missing = missing.to_str().unwrap();
    let err = run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
        "--public-url",
        "https://ops.example.com",
    ]);
    assert!(err.contains("nowhere.pem"), "{err}");
    let (cert, _, _) = self_signed(dir.path());
    // the certificate given as the key: no key in it
    let cert = cert.to_str().unwrap();
    let err = run(&["serve", "--tls-cert", cert, "--tls-key", cert]);
    assert!(
        err.contains("no private key") && err.contains("cert.pem"),
        "{err}"
    );
    let err = run(&["serve", "--public-url", "ops.example.com"]);
    assert!(err.contains("--public-url"), "{err}");
    assert!(!data.exists(), "nothing written by refused starts");
}

#[tokio::test]
async fn https_with_a_self_signed_certificate_and_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, cert_pem) = self_signed(dir.path());
    let exposure = Exposure {
        tls: Some(opslens_api::tls::load(&cert, &key).unwrap()),
        public_url: Some(PublicUrl::parse("https://opslens.test").unwrap()),
        ..Exposure::default()
    };
    // every interface, as a team server would
    let server = Server::start_opts(
        &dir.path().join("data"),
        "0.0.0.0:0".parse().unwrap(),
        options(exposure),
    )
    .await
    .unwrap();
    let port = server.addr.port();
    let token = server.token.expose().to_string();
    let base = format!("https://localhost:{port}");
    let http = https_client(&cert_pem);

    let res = http
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({"title": "over TLS", "severity": "high"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let list: Value = http
        .get(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["title"], "over TLS", "{list}");
    assert!(server.api_url().starts_with("https://"));

    // a client that does not trust the certificate gets no answer
    let stranger = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = stranger
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // nor does plain HTTP on the TLS port
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = plain
        .get(format!("http://127.0.0.1:{port}/api/v1/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(res.is_err() || !res.unwrap().status().is_success());

    // the public name is a Host the server answers to, with HSTS over HTTPS
    let res = http
        .get(format!("{base}/api/v1/incidents"))
        .header("host", "opslens.test")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // a loopback name gets no HSTS (it would pin every local port of that name)
    let res = http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none());
    // another name is still refused (DNS rebinding)
    let res = http
        .get(format!("{base}/api/v1/health"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(res, 403).await, "forbidden_host");
    // the public origin may drive the API from a browser; others may not
    let res = http
        .post(format!("{base}/api/v1/incidents"))
        .header("host", "opslens.test")
        .header("origin", "https://opslens.test")
        .bearer_auth(&token)
        .json(&json!({"title": "from the web UI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    for origin in [
        "http://opslens.test",
        "https://opslens.test:8443",
        "https://evil.example",
    ] {
        let res = http
            .post(format!("{base}/api/v1/incidents"))
            .header("host", "opslens.test")
            .header("origin", origin)
            .bearer_auth(&token)
            .json(&json!({"title": "csrf"}))
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(res, 403).await, "forbidden_origin", "{origin}");
    }
    // the web UI served over TLS
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_bad_tokens_get_429_with_retry_after_until_the_window_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, cert_pem) = self_signed(dir.path());
    let exposure = Exposure {
        tls: Some(opslens_api::tls::load(&cert, &key).unwrap()),
        public_url: Some(PublicUrl::parse("https://opslens.test").unwrap()),
        auth_limit: AuthLimit {
            failures: 3,
            window: Duration::from_secs(2),
        },
        ..Exposure::default()
    };
    let server = Server::start_opts(
        &dir.path().join("data"),
        "0.0.0.0:0".parse().unwrap(),
        options(exposure),
    )
    .await
    .unwrap();
    let base = format!("https://localhost:{}/api/v1", server.addr.port());
    let token = server.token.expose().to_string();
    let http = https_client(&cert_pem);
    let get = |path: &str, bearer: Option<&str>| {
        let r = http.get(format!("{base}{path}"));
        match bearer {
            Some(b) => r.bearer_auth(b),
            None => r,
        }
    };

    // a viewer's token, made while nothing is held back
    let res = http
        .post(format!("{base}/users"))
        .bearer_auth(&token)
        .json(&json!({"name": "Vic Viewer", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let viewer = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let wrong = "olu_".to_string() + &"0".repeat(64);
    for (i, bearer) in [Some(wrong.as_str()), None, Some("nonsense")]
        .into_iter()
        .enumerate()
    {
        let res = get("/incidents", bearer).send().await.unwrap();
        assert_eq!(code_of(res, 401).await, "unauthorized", "failure {i}");
    }
    let res = get("/incidents", Some(&wrong)).send().await.unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(code_of(res, 429).await, "rate_limited");
    // held back before the token is looked at: a right token from this client waits too
    let res = get("/incidents", Some(&token)).send().await.unwrap();
    assert_eq!(res.status(), 429);
    // public routes stay open
    assert_eq!(get("/health", None).send().await.unwrap().status(), 200);

    tokio::time::sleep(Duration::from_secs(retry)).await;
    let res = get("/incidents", Some(&token)).send().await.unwrap();
    assert_eq!(res.status(), 200, "let in after Retry-After");

    // per token: a viewer's refused writes hold back that token, not the client
    for _ in 0..3 {
        let res = http
            .post(format!("{base}/incidents"))
            .bearer_auth(&viewer)
            .json(&json!({"title": "not mine to write"}))
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(res, 403).await, "forbidden_role");
    }
    let res = get("/incidents", Some(&viewer)).send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(code_of(res, 429).await, "rate_limited");
    let res = get("/incidents", Some(&token)).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the install token from the same client is not held back"
    );
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing written: {list}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn behind_a_proxy_only_the_proxy_connects_and_its_forwarded_client_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.2 stands for the proxy: Linux routes all of 127/8 to loopback.
    let proxy: IpAddr = "127.0.0.2".parse().unwrap();
    let exposure = Exposure {
        trusted_proxies: vec![proxy],
        public_url: Some(PublicUrl::parse("https://opslens.example.com").unwrap()),
        auth_limit: AuthLimit {
            failures: 2,
            window: Duration::from_secs(60),
        },
        ..Exposure::default()
    };
    // plain HTTP off loopback is fine behind a named proxy
    let server = Server::start_opts(
        &dir.path().join("data"),
        "0.0.0.0:0".parse().unwrap(),
        options(exposure),
    )
    .await
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let token = server.token.expose().to_string();
    let from = |ip: IpAddr| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(ip)
            .build()
            .unwrap()
    };
    let direct = from("127.0.0.1".parse().unwrap());
    let via_proxy = from(proxy);
    let url = |path: &str| format!("http://{addr}/api/v1{path}");

    // anyone but the proxy is turned away, with the right token too
    let res = direct
        .get(url("/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(res, 403).await, "forbidden_peer");
    // the proxy passes the public Host and the client's address and scheme
    let res = via_proxy
        .get(url("/incidents"))
        .header("host", "opslens.example.com")
        .header("x-forwarded-for", "203.0.113.5")
        .header("x-forwarded-proto", "https")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));

    let bad = |client_says: &'static str| {
        via_proxy
            .get(url("/incidents"))
            .header("host", "opslens.example.com")
            .header("x-forwarded-for", client_says)
            .bearer_auth("0".repeat(64))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(bad("203.0.113.5").await.unwrap().status(), 401);
    }
    // the client cannot dodge the limit by writing its own X-Forwarded-For: the proxy appends
    // the address it saw, and only the rightmost entry counts
    let res = bad("198.51.100.77, 203.0.113.5").await.unwrap();
    assert_eq!(code_of(res, 429).await, "rate_limited");
    // another client behind the same proxy is not held back
    assert_eq!(bad("203.0.113.6").await.unwrap().status(), 401);
    let res = via_proxy
        .get(url("/incidents"))
        .header("host", "opslens.example.com")
        .header("x-forwarded-for", "203.0.113.6")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_spec_lists_429_with_retry_after_on_token_routes_only() {
    let spec = serde_json::to_value(opslens_api::openapi()).unwrap();
    let incidents = &spec["paths"]["/api/v1/incidents"]["get"]["responses"]["429"];
    assert!(
        incidents["headers"]["Retry-After"].is_object(),
        "{incidents}"
    );
    assert!(spec["paths"]["/api/v1/health"]["get"]["responses"]["429"].is_null());
}
