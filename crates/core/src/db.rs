//! The store as the services reach it from async code: every call runs on a blocking thread,
//! and store errors become [`CoreError`]s.

use std::sync::Arc;

use opslens_domain::Incident;
use opslens_store::{Store, StoreError};

use crate::CoreError;

/// A cheap, cloneable handle to the one store of the process.
#[derive(Debug, Clone)]
pub(crate) struct Db(Arc<Store>);

impl Db {
    pub(crate) fn new(store: Store) -> Self {
        Db(Arc::new(store))
    }

    /// Runs a store call on a blocking thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let store = self.0.clone();
        let author = crate::author::current_author();
        let out = tokio::task::spawn_blocking(move || {
            opslens_store::with_author(author.as_deref(), || f(&store))
        })
        .await?;
        // A full disk or a busy database says so (507, 503) instead of a bare 500.
        out.map_err(|e| {
            let dir = self.0.path().parent().unwrap_or(std::path::Path::new("."));
            crate::storage::store_error(e, dir)
        })
    }

    /// One incident (404 when unknown): most use-cases check their incident first.
    pub(crate) async fn incident(&self, id: i64) -> Result<Incident, CoreError> {
        self.run(move |s| s.incident(id)).await
    }
}
