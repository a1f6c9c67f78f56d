//! Image files in an S3-compatible bucket (issue 17.2), against moto's S3 server (PyPI
//! `moto[server]`, installed by scripts/test into target/venv-moto; `OPSLENS_MOTO_SERVER`
//! names another). The object is in the bucket when the upload answers; `blobs/` is a cache
//! refilled from the bucket; objects no row names (an upload's leftovers, a deleted incident's)
//! are swept at start; an unreachable bucket stops the start in one line naming it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opslens::server::{Server, StartOptions};
use opslens_store::objects::{BlobConfig, S3Config};

use crate::app::png;

/// moto's `moto_server`, if installed.
fn moto_server() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("OPSLENS_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv-moto/bin/moto_server");
    p.exists().then_some(p)
}

/// A moto S3 server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Option<Moto> {
        let Some(bin) = moto_server() else {
            eprintln!(
                "skipped: moto_server not found (scripts/test installs it into target/venv-moto; \
                 or set OPSLENS_MOTO_SERVER)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: "team/".into(),
            endpoint: Some(self.url.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            orphan_grace: Some(Duration::ZERO),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(blobs: BlobConfig) -> StartOptions {
    StartOptions {
        secrets_from_env: false,
        extras: opslens_api::Extras::default(),
        next_free_port: false,
        analysis: None,
        blobs,
    }
}

/// The bucket as another server sees it: `get` is `None` for an absent object.
struct Bucket(object_store::aws::AmazonS3);

impl Bucket {
    fn new(moto: &Moto, bucket: &str) -> Bucket {
        Bucket(
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_endpoint(&moto.url)
                .with_allow_http(true)
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .build()
                .unwrap(),
        )
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStore;
        match self.0.get(&key.into()).await {
            Ok(r) => Some(r.bytes().await.unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{key}: {e}"),
        }
    }

    async fn put(&self, key: &str, body: &'static [u8]) {
        use object_store::ObjectStore;
        self.0
            .put(&key.into(), object_store::PutPayload::from_static(body))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn screenshots_live_in_the_bucket_and_blobs_is_only_a_cache() {
    let Some(moto) = Moto::start() else { return };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // moto makes a bucket for a plain PUT
    let res = http
        .put(format!("{}/opslens", moto.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bucket = Bucket::new(&moto, "opslens");
    let cfg = BlobConfig::S3(moto.config("opslens"));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_opts(&data, "127.0.0.1:0".parse().unwrap(), options(cfg.clone()))
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", server.addr);
    let token = server.token.expose().to_string();
    let inc: serde_json::Value = http
        .post(format!("{base}/incidents"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "bucket"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inc = inc["id"].as_i64().unwrap();
    let image = png(64, 48);
    let sha = opslens_store::blobs::sha256_hex(&image);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(image.clone()).file_name("graph.png"),
    );
    let res = http
        .post(format!("{base}/evidence/incident/{inc}/upload-screenshot"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let ev: serde_json::Value = res.json().await.unwrap();
    let ev = ev["id"].as_i64().unwrap();

    // in the bucket, under the prefix, by its content hash, when the upload answered
    let object = format!("team/{sha}.png");
    assert_eq!(bucket.get(&object).await.as_deref(), Some(&image[..]));

    // an orphan (no row names it) and a stranger's file in the same bucket
    let orphan = format!("team/{}.png", "ab".repeat(32));
    let stranger = "team/notes.txt";
    bucket.put(&orphan, b"x").await;
    bucket.put(stranger, b"x").await;

    // the local copy lost (another replica never had it): refilled from the bucket
    server.stop().await.unwrap();
    std::fs::remove_file(data.join(format!("blobs/{sha}.png"))).unwrap();
    let server = Server::start_opts(&data, "127.0.0.1:0".parse().unwrap(), options(cfg.clone()))
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", server.addr);
    let res = http
        .get(format!("{base}/evidence/{ev}/image"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), image);
    assert!(
        data.join(format!("blobs/{sha}.png")).exists(),
        "cached again"
    );
    // the start swept the orphan (grace 0 here), not the stranger's file nor ours
    assert!(bucket.get(&orphan).await.is_none());
    assert!(bucket.get(stranger).await.is_some());
    assert!(bucket.get(&object).await.is_some());

    // deleting the incident removes the cached copy at once; the object waits for the sweep
    // (another server may be storing the same image for a row of its own)
    let res = http
        .delete(format!("{base}/incidents/{inc}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert!(!data.join(format!("blobs/{sha}.png")).exists());
    assert!(bucket.get(&object).await.is_some(), "left to the sweep");
    server.stop().await.unwrap();
    let server = Server::start_opts(&data, "127.0.0.1:0".parse().unwrap(), options(cfg))
        .await
        .unwrap();
    assert!(bucket.get(&object).await.is_none(), "swept");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_bucket_or_dead_endpoint_stops_the_start_in_one_line() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = Server::start_opts(
        &dir.path().join("a"),
        "127.0.0.1:0".parse().unwrap(),
        options(BlobConfig::S3(moto.config("no-such-bucket"))),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("s3://no-such-bucket/team/"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let dead = S3Config {
        endpoint: Some("http://127.0.0.1:9".into()),
        ..moto.config("opslens")
    };
    let err = Server::start_opts(
        &dir.path().join("b"),
        "127.0.0.1:0".parse().unwrap(),
        options(BlobConfig::S3(dead)),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
}
