//! The PostgreSQL backend (issue 17) where only it applies: two servers on one database see
//! each other's writes, through the API and the change feed (LISTEN/NOTIFY); a database of a
//! newer OpsLens is refused; a wrong database URL at start is one clear line. The tests that
//! need a server skip (saying so) unless `OPSLENS_TEST_DATABASE_URL` names one
//! (`scripts/pg-cluster start`); the rest of the suite runs on it too with that variable set.

use std::process::Command;

use opslens::server::Server;
use serde_json::json;

use crate::app::TestApp;
use crate::events::Feed;

fn database_set() -> bool {
    let set = std::env::var("OPSLENS_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
    if !set {
        eprintln!("skipped: OPSLENS_TEST_DATABASE_URL is not set (scripts/pg-cluster start)");
    }
    set
}

/// A second server (replica) on `a`'s database: its own data dir and install token.
async fn replica_of(a: &TestApp) -> TestApp {
    let url = a.database.clone().expect("on PostgreSQL");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    opslens_store::use_database_for(&data, &url);
    let server = Server::start_with(&data, "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    TestApp {
        database: Some(url),
        server: Some(server),
        dir,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

/// `token`'s request to `app`.
fn as_person(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

/// Issue 17.3 across replicas: a person added on A writes on B under their own name, a
/// viewer's write on B is 403 with nothing written, and a token revoked on A answers 401 on B
/// within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_and_revocations_hold_on_every_replica() {
    if !database_set() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = replica_of(&a).await;
    let mut tokens = Vec::new();
    for (name, role) in [("Ana Lima", "member"), ("Vic", "viewer")] {
        let res = a
            .post("/api/v1/users", &json!({"name": name, "role": role}))
            .await;
        assert_eq!(res.status(), 201);
        let v: serde_json::Value = res.json().await.unwrap();
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    let (ana, vic) = (&tokens[0], &tokens[1]);
    let res = as_person(&b, ana, reqwest::Method::POST, "/api/v1/incidents")
        .json(&json!({"title": "opened on B by Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let inc: serde_json::Value = res.json().await.unwrap();
    let tl = a
        .get_json(&format!("/api/v1/incidents/{}/timeline", inc["id"]))
        .await;
    assert_eq!(tl[0]["author"], "Ana Lima", "{tl}");
    let before = a.snapshot();
    let res = as_person(&b, vic, reqwest::Method::POST, "/api/v1/incidents")
        .json(&json!({"title": "a viewer's write"}))
        .send()
        .await
        .unwrap();
    assert_eq!(crate::app::error_code(res, 403).await, "forbidden_role");
    assert_eq!(
        a.snapshot(),
        before,
        "a viewer's refused write wrote something"
    );
    // Revoked on A: B refuses the token within a second.
    let res = a
        .req(reqwest::Method::DELETE, "/api/v1/users/Ana%20Lima")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = as_person(&b, ana, reqwest::Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(crate::app::error_code(res, 401).await, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_sees_the_first_ones_writes_and_feed() {
    if !database_set() {
        return;
    }
    let a = TestApp::spawn().await;
    let b_app = replica_of(&a).await;
    // B's feed is open before A writes.
    let mut feed = Feed::open(&b_app, "").await;
    let id = a.incident("written on A").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = feed.next().await;
        if ev["incident_id"] == id {
            seen.push(ev["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["incident.created", "timeline.created"]);
    // And through the API.
    let got = b_app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(got["title"], "written on A", "{got}");
    // A write on B is on A's timeline.
    let res = b_app
        .post(
            &format!("/api/v1/incidents/{id}/timeline"),
            &json!({"message": "from B"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let tl = a
        .get_json(&format!("/api/v1/incidents/{id}/timeline"))
        .await;
    let msgs: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(msgs.contains(&"from B"), "{msgs:?}");
}

/// The other replica's feed keeps up while writes keep coming: with A writing every 50 ms
/// (never a 500 ms pause), B's feed shows A's first change while A is still writing — not
/// only once the writes stop, as when the listener collected notifications until a quiet gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replicas_feed_keeps_up_while_writes_keep_coming() {
    if !database_set() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = replica_of(&a).await;
    let mut feed = Feed::open(&b, "").await;
    let first = a.incident("first of a steady stream").await;
    let watcher = tokio::spawn(async move {
        loop {
            let ev = feed.next().await;
            if ev["type"] == "incident.created" && ev["id"] == first {
                return std::time::Instant::now();
            }
        }
    });
    let mut last = std::time::Instant::now();
    for i in 0..60 {
        a.incident(&format!("steady {i}")).await;
        last = std::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = watcher.await.unwrap();
    assert!(
        seen < last,
        "B's feed showed A's first change {:?} after A's last write",
        seen - last
    );
}

#[test]
fn a_database_of_a_newer_opslens_is_refused() {
    if !database_set() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = crate::app::on_test_database(&dir.path().join("data")).unwrap();
    drop(opslens_store::Store::open(&dir.path().join("data")).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute("UPDATE opslens_schema SET version = 99", &[])
        .unwrap();
    let err = opslens_store::Store::open(&dir.path().join("data")).unwrap_err();
    assert!(
        matches!(err, opslens_store::StoreError::TooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn an_unreachable_database_is_one_line_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database",
            "postgres://opslens@127.0.0.1:1/opslens",
        ])
        .env_remove("OPSLENS_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("127.0.0.1:1"), "{err}");
    assert!(lines[0].contains("refused"), "{err}");
    // Nothing was created for a server that never started.
    assert!(!dir.path().join("data").join("opslens.db").exists());
}

/// A cluster of this test's own (it is restarted, which the shared one must not be), stopped
/// and removed when dropped.
struct OwnCluster {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL runs as `postgres` when the tests run as root: it must reach its folder.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let out = Self::script(&dir, "start");
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        OwnCluster { dir, url }
    }

    fn script(dir: &tempfile::TempDir, what: &str) -> std::process::Output {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .arg(what)
            .env("OPSLENS_PG_DIR", dir.path().join("pg"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg-cluster {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .arg("stop")
            .env("OPSLENS_PG_DIR", self.dir.path().join("pg"))
            .output();
    }
}

/// Issue 17, faults: the database restarted under load. Requests meanwhile fail with a 503
/// JSON error and `Retry-After` within a bound (never hang), the server reconnects by itself,
/// and every acknowledged create is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_is_503_then_recovered_losing_nothing() {
    if !database_set() {
        return;
    }
    let cluster = OwnCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    opslens_store::use_database_for(&data, &cluster.url);
    let server = Server::start_with(&data, "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let app = TestApp {
        database: Some(cluster.url.clone()),
        server: Some(server),
        dir,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    let app = std::sync::Arc::new(app);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Longest any request may take: the pool's wait for a connection (10 s) and some slack.
    let bound = std::time::Duration::from_secs(15);
    let mut loads = Vec::new();
    for w in 0..6 {
        let app = app.clone();
        let stop = stop.clone();
        loads.push(tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0usize);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let title = format!("load {w}-{n}");
                let started = std::time::Instant::now();
                let res = app
                    .req(reqwest::Method::POST, "/api/v1/incidents")
                    .json(&json!({"title": title, "severity": "high"}))
                    .timeout(bound)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{title}: no answer within {bound:?}: {e}"));
                let took = started.elapsed();
                assert!(took < bound, "{title} took {took:?}");
                match res.status().as_u16() {
                    201 => {
                        let body: serde_json::Value = res.json().await.unwrap();
                        acked.push((body["id"].as_i64().unwrap(), title));
                    }
                    503 => {
                        assert!(
                            res.headers().contains_key("retry-after"),
                            "503 without Retry-After"
                        );
                        let body: serde_json::Value = res.json().await.unwrap();
                        assert!(body["error"]["code"].is_string(), "{body}");
                        assert!(body["error"]["message"].is_string(), "{body}");
                        refused += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    other => panic!("{title}: {other} {}", res.text().await.unwrap()),
                }
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let restarted_at = std::time::Instant::now();
    tokio::task::spawn_blocking({
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");
        let pg_dir = cluster.dir.path().join("pg");
        move || {
            let out = Command::new(script)
                .arg("restart")
                .env("OPSLENS_PG_DIR", pg_dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
    .await
    .unwrap();
    // The server finds the database again by itself: a create succeeds within a few seconds.
    let recovered = loop {
        let res = app
            .post("/api/v1/incidents", &json!({"title": "after the restart"}))
            .await;
        if res.status() == 201 {
            break restarted_at.elapsed();
        }
        assert_eq!(res.status(), 503, "{}", res.text().await.unwrap());
        assert!(
            restarted_at.elapsed() < std::time::Duration::from_secs(20),
            "no successful write 20 s after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut acked, mut refused) = (Vec::new(), 0);
    for l in loads {
        let (a, r) = l.await.unwrap();
        acked.extend(a);
        refused += r;
    }
    eprintln!(
        "{} creates acknowledged, {refused} answered 503, first write {recovered:?} after the restart began",
        acked.len()
    );
    assert!(acked.len() > 10, "too little load to mean anything");
    // Every acknowledged create is there, with its title.
    for (id, title) in &acked {
        let got = app.get_json(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(got["title"], *title, "{got}");
    }
    drop(app);
    drop(cluster);
}
