//! The services of OpsLens, one per use-case, opened together over one store. Each owns its
//! state; the API hands each handler the one it uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opslens_store::{Store, StoreError};

use crate::access::AccessService;
use crate::analysis::{AnalysisConfig, AnalysisService};
use crate::command::CommandService;
use crate::db::Db;
use crate::evidence::EvidenceService;
use crate::feed::Feed;
use crate::incidents::IncidentService;
use crate::integrations::IntegrationService;
use crate::work::WorkService;
use crate::CoreError;

/// Where the services keep their state.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Data dir holding `opslens.db`, `blobs/`, `api-token`, `secrets.env`.
    pub data_dir: PathBuf,
    /// Whether integration keys are also looked up in the process environment and the OS
    /// keychain, before `secrets.env` (true in the app; tests turn it off so a developer's
    /// `GITHUB_TOKEN` or keychain cannot leak into them).
    pub secrets_from_env: bool,
    /// Which model analyses screenshots and where models live.
    pub analysis: AnalysisConfig,
    /// Where image files live: `blobs/` only, or an S3-compatible bucket shared by servers.
    pub blobs: opslens_store::objects::BlobConfig,
}

/// Every use-case of one process over one store. Cheap to clone (each service is shared);
/// the background workers (outbox, analysis) end when the last clone of their service goes.
#[derive(Debug, Clone)]
pub struct Services {
    /// Incidents, their timeline, search and export.
    pub incidents: Arc<IncidentService>,
    /// Evidence, screenshots, captures.
    pub evidence: Arc<EvidenceService>,
    /// Hypotheses and action items.
    pub work: Arc<WorkService>,
    /// The analysis queue, the model, pulls.
    pub analysis: Arc<AnalysisService>,
    /// Integrations: status, syncs, webhooks, the outbox, snapshots.
    pub integrations: Arc<IntegrationService>,
    /// Incident command: people and roles, status updates, the postmortem.
    pub command: Arc<CommandService>,
    /// Per-person tokens and who a request comes from.
    pub access: Arc<AccessService>,
    /// Committed changes, for `GET /api/v1/events`.
    pub feed: Feed,
    /// The data dir (shared: the server clones the services for every request).
    pub data_dir: Arc<Path>,
}

impl Services {
    /// Opens the store in the data dir (migrating it) on a blocking thread, wires the core's
    /// wording, notifier and change feed into it, and starts the background workers.
    pub async fn open(cfg: ServicesConfig) -> Result<Self, CoreError> {
        let dir = cfg.data_dir.clone();
        let blobs = cfg.blobs.clone();
        let mut store = tokio::task::spawn_blocking(move || Store::open_with_blobs(&dir, &blobs))
            .await?
            .map_err(|e| match e {
                StoreError::TooNew { .. } => CoreError::Conflict(e.to_string()),
                // An unreachable or refused bucket: one line naming it and the cause.
                StoreError::Io(ref io) if io.to_string().starts_with("object store:") => {
                    CoreError::Upstream(io.to_string())
                }
                e => CoreError::internal(
                    format!("cannot open the database in {}", cfg.data_dir.display()),
                    e,
                ),
            })?;
        crate::people::ensure_local_user(&store)?;
        let integ_cfg = opslens_integrations::Config::load(&cfg.data_dir, cfg.secrets_from_env);
        let wake = Arc::new(tokio::sync::Notify::new());
        store.set_narrator(Arc::new(crate::narrate::Plain));
        store.set_notifier(Arc::new(crate::notify::Announcer::new(
            &integ_cfg,
            wake.clone(),
        )));
        let feed = Feed::default();
        store.set_feed(Arc::new(feed.clone()));
        let mut analysis_cfg = cfg.analysis;
        if let Some(r) = analysis_cfg.remote.as_mut() {
            r.key = r.key.take().or_else(|| integ_cfg.analysis_key.clone());
        }
        let db = Db::new(store);
        let incidents = Arc::new(IncidentService::new(db.clone()));
        let analysis = Arc::new(AnalysisService::new(
            db.clone(),
            cfg.data_dir.clone(),
            analysis_cfg,
        ));
        let evidence = Arc::new(EvidenceService::new(
            db.clone(),
            analysis.clone(),
            incidents.clone(),
            feed.clone(),
        ));
        let integrations = Arc::new(IntegrationService::new(
            db.clone(),
            integ_cfg,
            wake,
            evidence.clone(),
            cfg.data_dir.clone(),
            cfg.secrets_from_env,
        ));
        let command = Arc::new(CommandService {
            db: db.clone(),
            incidents: incidents.clone(),
            evidence: evidence.clone(),
        });
        crate::outbox::spawn_worker(&integrations);
        analysis.set_feed(feed.clone());
        crate::analysis::spawn_worker(&analysis);
        crate::similar_service::spawn_backfill(&incidents);
        spawn_sweeper(&incidents);
        Ok(Services {
            access: Arc::new(AccessService::new(db.clone())),
            incidents,
            evidence,
            work: Arc::new(WorkService { db }),
            analysis,
            integrations,
            command,
            feed,
            data_dir: cfg.data_dir.into(),
        })
    }
}

/// How often a running server removes the image files (and bucket objects) no row names; it
/// also does at start. Orphans come from crashes between a file and its row and from deleted
/// incidents' shared objects, so they are rare: a few sweeps a day keep the disk honest.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Sweeps every [`SWEEP_EVERY`] until the services are dropped.
fn spawn_sweeper(incidents: &Arc<IncidentService>) {
    let weak = Arc::downgrade(incidents);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(s) = weak.upgrade() else { break };
            match s.db.run(|st| st.sweep_orphan_blobs()).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed image files no evidence names"),
                Err(e) => tracing::warn!(error = %e.chain(), "could not sweep orphan image files"),
            }
        }
    });
}
