//! Image files in an S3-compatible bucket (issue 17.2), so that several servers share them.
//!
//! The bucket holds the same content-addressed names as `blobs/` (`<sha256>.<ext>` under a
//! prefix), and `blobs/` becomes a read-through cache of it: content-addressed objects never
//! change, so a cached copy is never stale and each reader keeps working on a local file. An
//! object is written (and the local copy synced) before the row naming it commits; objects no
//! row names are removed at start-up once older than [`ORPHAN_GRACE`], so another server
//! between its upload and its commit does not lose its object. Deleting rows leaves the
//! objects to that sweep: S3 has no conditional delete, and another server may be storing the
//! same image (same name) for a row of its own at that moment. Every upload writes its object
//! again, even when present, so its age restarts and the sweep cannot take it mid-upload.
//!
//! The store is synchronous (its calls run on blocking threads); the object store client is
//! async, so it runs on a small runtime of its own and the store waits for each call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use crate::{Result, StoreError};

/// Objects no row names are left alone this long, in case a row naming one is about to commit
/// on another server.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(15 * 60);

/// Where image files live.
#[derive(Debug, Clone, Default)]
pub enum BlobConfig {
    /// Only `blobs/` in the data dir, as a single-user install always did.
    #[default]
    Local,
    /// An S3-compatible bucket, with `blobs/` as a cache.
    S3(S3Config),
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, moto…).
#[derive(Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (e.g. `opslens/`), so one bucket can serve several
    /// installs; empty for the bucket's root.
    pub prefix: String,
    /// Endpoint URL for other services than AWS (`http://minio:9000`); `None`: AWS.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when not given.
    pub region: Option<String>,
    /// Access key id; with the secret, else AWS's usual sources (instance profile…).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// How old an object no row names must be before the start-up sweep removes it;
    /// `None`: [`ORPHAN_GRACE`].
    pub orphan_grace: Option<Duration>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("orphan_grace", &self.orphan_grace)
            .finish()
    }
}

impl S3Config {
    /// What the bucket is called in messages: `s3://bucket/prefix` and the endpoint.
    pub fn describe(&self) -> String {
        let at = self
            .endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        format!("s3://{}/{}{at}", self.bucket, self.prefix)
    }
}

/// An object store failure, as the store's error (an I/O error naming the object store).
fn object_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    // One line: the client's errors can span several.
    let cause = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    StoreError::Io(std::io::Error::other(format!(
        "object store: {what}: {cause}"
    )))
}

/// The connected bucket.
pub(crate) struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    /// See [`S3Config::orphan_grace`].
    pub(crate) orphan_grace: Duration,
    prefix: String,
    describe: String,
    /// Runs the client's futures; shut down without waiting when the store goes.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ObjectBlobs {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Dropping a runtime blocks, which is not allowed on an async thread.
            rt.shutdown_background();
        }
    }
}

impl ObjectBlobs {
    /// Connects and checks that the bucket answers (one listing), so a wrong endpoint,
    /// bucket or key stops the start with one line instead of failing every upload.
    pub(crate) fn connect(config: &S3Config) -> Result<Self> {
        let describe = config.describe();
        // Bounded: a dead endpoint fails the start (or an upload) in seconds, not minutes.
        let plain_http = config
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let options = object_store::ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60))
            .with_allow_http(plain_http);
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_client_options(options)
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..Default::default()
            });
        if let Some(e) = &config.endpoint {
            // MinIO, moto and most self-hosted services want path-style URLs.
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let store = b
            .build()
            .map_err(|e| object_error(&format!("{describe} is not usable"), e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("opslens-objects")
            .enable_all()
            .build()?;
        let prefix = config.prefix.trim_matches('/').to_string();
        let blobs = ObjectBlobs {
            store: Arc::new(store),
            orphan_grace: config.orphan_grace.unwrap_or(ORPHAN_GRACE),
            prefix,
            describe,
            runtime: Some(runtime),
        };
        let store = blobs.store.clone();
        let prefix = (!blobs.prefix.is_empty()).then(|| ObjectPath::from(blobs.prefix.as_str()));
        blobs
            .wait(async move { store.list_with_delimiter(prefix.as_ref()).await })?
            .map_err(|e| object_error(&format!("cannot reach the bucket {}", blobs.describe), e))?;
        Ok(blobs)
    }

    /// Runs `f` on the client's runtime and waits for it, from any thread (async or not).
    fn wait<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let rt = self.runtime.as_ref().expect("runtime until dropped");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| object_error("call", "the object store client stopped"))
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Stores `bytes` as `name`, also when present (the same content): the write restarts the
    /// object's age, which the sweep's grace period counts from.
    pub(crate) fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let store = self.store.clone();
        let path = self.path(name);
        let payload = PutPayload::from(bytes.to_vec());
        self.wait(async move { store.put(&path, payload).await.map(|_| ()) })?
            .map_err(|e| object_error(&format!("cannot store {name}"), e))
    }

    /// The bytes of `name`, `None` when the bucket has no such object.
    pub(crate) fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let store = self.store.clone();
        let path = self.path(name);
        let got = self.wait(async move {
            match store.get(&path).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        got.map_err(|e| object_error(&format!("cannot read {name}"), e))
    }

    /// Removes `name`; an absent object is fine.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let store = self.store.clone();
        let path = self.path(name);
        self.wait(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?
        .map_err(|e| object_error(&format!("cannot delete {name}"), e))
    }

    /// Every object under the prefix: its name (without the prefix) and age.
    pub(crate) fn list(&self) -> Result<Vec<(String, Duration)>> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed =
            self.wait(async move { store.list(prefix.as_ref()).try_collect::<Vec<_>>().await })?;
        let now = chrono::Utc::now();
        let items = listed.map_err(|e| object_error("cannot list the bucket", e))?;
        Ok(items
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                // Only our own names, directly under the prefix.
                if m.location != self.path(&name) || !crate::blobs::is_blob_name(&name) {
                    return None;
                }
                let age = (now - m.last_modified).to_std().unwrap_or_default();
                Some((name, age))
            })
            .collect())
    }
}
