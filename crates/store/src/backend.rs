//! The store the core talks to: one interface, two backends chosen at start.
//!
//! A laptop install keeps its SQLite file ([`SqliteStore`]); a team server runs on a shared
//! PostgreSQL ([`crate::pg::PgStore`], issue 17). Every public call is listed once in
//! [`dispatch!`] below, which writes the `Store` method (a `match` on the backend) and a
//! default for the PostgreSQL side that answers `Unsupported` until it is written there, so a
//! method added to the SQLite side without a line here is a compile error at the caller, and
//! one missing on PostgreSQL is a clear error at run time (see `PG_STATUS.md`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use opslens_domain::*;

use crate::analysis::OthersProgress;
use crate::objects::BlobConfig;
use crate::pg::PgStore;
use crate::{
    AnalysisUpdate, CorpusIncident, DeliveryAction, FeedSink, FinishedAnalysis, MergeCounts,
    Narrator, NewImageEvidence, NewIncidentRow, NewOutbox, NewTextEvidence, Notifier, OutboxResult,
    PersonRow, Result, SearchRequest, ShotEmbedding, ShotPrint, SqliteStore, StatusUpdateRow,
    StoreError, StoredPostmortem, TimelineEdit, UploadFiling,
};

/// Environment variable naming the PostgreSQL database of a team server; unset (or empty),
/// the store is the SQLite file in the data dir.
pub const DATABASE_URL_ENV: &str = "OPSLENS_DATABASE_URL";

/// Handle to the database and blob directory; cheap to share behind an `Arc`.
pub struct Store {
    backend: Backend,
}

// One per process: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Sqlite(s) => s.fmt(f),
            Backend::Postgres(p) => p.fmt(f),
        }
    }
}

impl Store {
    /// Opens the store of `data_dir`, migrating forward: the PostgreSQL database named by
    /// `OPSLENS_DATABASE_URL` when set (images stay in `data_dir`), else `opslens.db` and
    /// `blobs/` in `data_dir`, created if needed. The variable (which `opslens serve
    /// --database` sets) keeps the core unaware of which backend it runs on.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, true, &BlobConfig::Local)
    }

    /// Opens the store of a data dir that another process (the app) owns, as an analysis
    /// worker does: the same as [`Store::open`] but without sweeping image files no row names
    /// (the owner may be between writing a file and committing its row).
    pub fn open_shared(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, false, &BlobConfig::Local)
    }

    /// As [`Store::open`], with the image files where `blobs` says (an S3-compatible bucket,
    /// checked reachable before anything else is opened).
    pub fn open_with_blobs(data_dir: &Path, blobs: &BlobConfig) -> Result<Self> {
        Self::open_with(data_dir, true, blobs)
    }

    fn open_with(data_dir: &Path, sweep: bool, blobs: &BlobConfig) -> Result<Self> {
        match database_for(data_dir) {
            Some(url) => Self::open_postgres(&url, data_dir, sweep, blobs),
            None => Ok(Store {
                backend: Backend::Sqlite(SqliteStore::open_with(data_dir, sweep, blobs)?),
            }),
        }
    }

    /// Opens the PostgreSQL database at `url` (migrating it), with images in
    /// `data_dir/blobs` or the bucket; `sweep` as in [`Store::open`].
    pub fn open_postgres(
        url: &str,
        data_dir: &Path,
        sweep: bool,
        blobs: &BlobConfig,
    ) -> Result<Self> {
        let pg = PgStore::open(url, data_dir, blobs)?;
        let store = Store {
            backend: Backend::Postgres(pg),
        };
        if sweep {
            // Best effort, as on SQLite: a failure here must not keep the server down.
            if let Err(e) = store.sweep_orphan_blobs() {
                tracing::warn!(error = %e, "could not sweep orphan image files");
            }
        }
        Ok(store)
    }

    /// Ends the write batches that writes made inside [`crate::deferring`] were left open in:
    /// commits them and returns how they ended. On PostgreSQL each write commits itself, so
    /// nothing is deferred.
    pub fn settle(&self, deferred: crate::Deferred) -> crate::BatchOutcome {
        match &self.backend {
            Backend::Sqlite(s) => s.settle(deferred),
            Backend::Postgres(_) => crate::BatchOutcome::committed(),
        }
    }

    /// After the write thread has answered a batch ([`Store::settle`]): indexes the search
    /// entries its commits left waiting once there are enough for a bulk write, in a
    /// transaction of its own, so no batch's requests wait for the indexing. On PostgreSQL
    /// nothing waits.
    pub fn index_search_if_many(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.index_search_if_many(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Indexes the search entries recent commits left waiting (SQLite indexes them in bulk;
    /// searches do this first anyway). For a moment when writes pause, so the waiting is not
    /// paid by the next search. PostgreSQL indexes each row as it is written.
    pub fn index_waiting_search(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.index_noted(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Which backend this is: `sqlite` or `postgres` (logs, health).
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Path of the database file (on PostgreSQL, where it would be in the data dir: callers
    /// use its parent to name the disk that holds the images).
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite(s) => s.path(),
            Backend::Postgres(p) => p.path(),
        }
    }

    /// Directory of the content-addressed image files.
    pub fn blob_dir(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite(s) => s.blob_dir(),
            Backend::Postgres(p) => p.blob_dir(),
        }
    }

    /// Sets who hears about committed changes (the change feed); without one, nobody does.
    /// On PostgreSQL it also hears the other replicas' changes (`LISTEN`).
    pub fn set_feed(&mut self, sink: Arc<dyn FeedSink>) {
        match &mut self.backend {
            Backend::Sqlite(s) => s.set_feed(sink),
            Backend::Postgres(p) => p.set_feed(sink),
        }
    }

    /// Sets who turns announced changes into outbox rows; without one, nothing is queued.
    pub fn set_notifier(&mut self, notifier: Arc<dyn Notifier>) {
        match &mut self.backend {
            Backend::Sqlite(s) => s.set_notifier(notifier),
            Backend::Postgres(p) => p.set_notifier(notifier),
        }
    }

    /// Sets who words facts for the timeline and announcements; without one, facts put
    /// nothing on the timeline.
    pub fn set_narrator(&mut self, narrator: Arc<dyn Narrator>) {
        match &mut self.backend {
            Backend::Sqlite(s) => s.set_narrator(narrator),
            Backend::Postgres(p) => p.set_narrator(narrator),
        }
    }
}

/// Data dirs whose store is a given PostgreSQL database, set by [`use_database_for`].
static ROUTES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// Makes [`Store::open`] of `data_dir` open the PostgreSQL database at `url`, for this
/// process only: how a test harness runs many servers, each on its own database, in one
/// process (where one environment variable cannot tell them apart).
pub fn use_database_for(data_dir: &Path, url: &str) {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    routes.retain(|(d, _)| d != data_dir);
    routes.push((data_dir.to_path_buf(), url.to_string()));
}

/// The PostgreSQL database of `data_dir`: one set by [`use_database_for`], else the
/// environment's; `None`: the SQLite file. What a test passes on to a process it starts on
/// the same data dir (`opslens worker`).
pub fn database_for(data_dir: &Path) -> Option<String> {
    let routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    routes
        .iter()
        .find(|(d, _)| d == data_dir)
        .map(|(_, u)| u.clone())
        .or_else(database_url)
}

/// The PostgreSQL URL from the environment, if one is set.
pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Writes, for each listed call, the `Store` method that dispatches to the backend, and the
/// PostgreSQL side's default (`Unsupported`) that [`PgApi`] implementations override.
macro_rules! dispatch {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Sqlite(s) => s.$name($($arg),*),
                        Backend::Postgres(p) => PgApi::$name(p $(, $arg)*),
                    }
                }
            )*
        }

        /// The store calls as the PostgreSQL backend answers them; each not yet written there
        /// answers [`StoreError::Unsupported`] naming the call.
        #[allow(unused_variables)]
        pub(crate) trait PgApi {
            $(
                fn $name(&self $(, $arg: $ty)*) -> $ret {
                    Err(StoreError::Unsupported(stringify!($name)))
                }
            )*
        }
    };
}

dispatch! {
    /// Queues a run over screenshot `evidence_id`: the full analysis again (`question: None`;
    /// an already pending one is returned instead of a second) or a question.
    /// `model_present` decides whether the evidence shows `queued` or `waiting-for-model`.
    fn enqueue_analysis(&self, evidence_id: i64, question: Option<&str>, model_present: bool) -> Result<AnalysisJob>;
    /// Takes the oldest queued job (or the oldest running one whose lease ran out: its worker
    /// died) for `worker`, leased until `lease` from now, and marks it running (and its
    /// screenshot, for a full analysis). The pick and the mark are one `UPDATE … RETURNING`
    /// inside the store's single write transaction (`BEGIN IMMEDIATE`, which also excludes
    /// other processes), so two workers never take the same job. Expired jobs already started
    /// `max_attempts` times fail instead, so one poisonous image cannot kill worker after
    /// worker. `None` when nothing is takeable.
    fn take_analysis_job(&self, worker: &str, lease: std::time::Duration, max_attempts: i64) -> Result<Option<AnalysisJob>>;
    /// [`Store::take_analysis_job`] for a single process that never loses its lease (tests,
    /// tools): an hour's lease, no attempt limit.
    fn claim_analysis_job(&self) -> Result<Option<AnalysisJob>>;
    /// Extends `worker`'s lease on a running job to `lease` from now (late is fine while no
    /// one has taken the job over). `false` when the job is no longer that worker's (finished, deleted, or taken over after the lease ran out):
    /// the worker then stops the run and records nothing.
    fn renew_analysis_lease(&self, job_id: i64, worker: &str, lease: std::time::Duration) -> Result<bool>;
    /// Records the end of a job, with everything it produced, in one transaction.
    fn finish_analysis_job(&self, job_id: i64, done: &FinishedAnalysis) -> Result<AnalysisJob>;
    /// After a restart of `worker`: the jobs it left `running` (and any running without a
    /// lease, from before leases existed) go back to the queue, unless they were already
    /// started `max_attempts` times (then they fail, so one poisonous image cannot crash-loop
    /// the app). Other workers' jobs are left to their leases. Returns (requeued, failed).
    fn requeue_interrupted_analyses(&self, worker: &str, max_attempts: i64) -> Result<(usize, usize)>;
    /// Shows screenshots whose full analysis is queued as `waiting-for-model` (no model) or
    /// `queued` (a model is there). Returns how many changed.
    fn set_analysis_waiting(&self, waiting: bool) -> Result<usize>;
    /// One job.
    fn analysis_job(&self, id: i64) -> Result<AnalysisJob>;
    /// The jobs of one screenshot, oldest first.
    fn analysis_jobs_of(&self, evidence_id: i64) -> Result<Vec<AnalysisJob>>;
    /// Whether any job is takeable: queued, or running on a lease that ran out. What the
    /// worker asks on every wake, answered from the pending index whatever the queue's length;
    /// jobs other workers hold do not count (this one would load its model for nothing).
    fn has_pending_analysis(&self) -> Result<bool>;
    /// Screenshots whose jobs other workers (`opslens worker` processes) started or finished
    /// after `since` (a job timestamp as stored; `None`: only find the newest), with their
    /// incidents, and the newest such timestamp: the app announces them on its change feed,
    /// which never hears another process's commits.
    fn analyses_by_others_since(&self, me: &str, since: Option<&str>) -> Result<OthersProgress>;
    /// Jobs queued or running (the status route).
    fn pending_analysis_count(&self) -> Result<i64>;
    /// The most recently finished job that succeeded (for the status route's timings).
    fn last_finished_analysis(&self) -> Result<Option<AnalysisJob>>;
    /// Removes image files that no evidence row names, and leftover temporary files.
    /// Returns how many files were removed.
    fn sweep_orphan_blobs(&self) -> Result<usize>;
    /// Adds text evidence and its timeline entry, both at the evidence's event time.
    fn add_text_evidence_at(&self, incident_id: i64, new: &NewTextEvidence<'_>) -> Result<Evidence>;
    /// Relabels a piece of evidence and/or sets its time (a person's: derived times never
    /// replace it afterwards).
    fn update_evidence(&self, id: i64, title: Option<&str>, occurred_at: Option<Timestamp>) -> Result<Evidence>;
    /// Adds a note or observation to the timeline at `at` (a person's time), else now.
    fn add_timeline_event(&self, incident_id: i64, new: &NewTimelineEvent, at: Option<Timestamp>) -> Result<TimelineEvent>;
    /// Adds text evidence (log, note, metric, …) and its timeline event, recorded now.
    fn add_text_evidence(&self, incident_id: i64, evidence_type: EvidenceType, title: &str, content: &str, source: &str) -> Result<Evidence>;
    /// Stores the image file durably, then the screenshot row and its timeline event.
    fn add_image_evidence(&self, incident_id: i64, new: NewImageEvidence) -> Result<Evidence>;
    /// The screenshot an upload with this `Idempotency-Key` filed, if any.
    fn evidence_by_upload_key(&self, key: &str) -> Result<Option<Evidence>>;
    /// [`Store::add_image_evidence`] for an upload that says more about itself (key, capture
    /// time, findings made elsewhere); also whether this call stored it (`false`: the key was
    /// used before for the same image, whose row comes back untouched).
    fn add_image_evidence_filed(&self, incident_id: i64, new: NewImageEvidence, filing: &UploadFiling) -> Result<(Evidence, bool)>;
    /// One piece of evidence.
    fn evidence(&self, id: i64) -> Result<Evidence>;
    /// Evidence of an incident in the order it happened (then the order it was gathered).
    fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>>;
    /// Path and MIME type of a screenshot's file; `NotFound` for text evidence.
    fn evidence_image(&self, id: i64) -> Result<(std::path::PathBuf, String)>;
    /// Records analysis progress or results on a screenshot.
    fn update_analysis(&self, id: i64, u: &AnalysisUpdate) -> Result<Evidence>;
    /// How many screenshots are in each not-yet-finished analysis state (for status routes).
    fn analysis_backlog(&self) -> Result<Vec<(AnalysisState, i64)>>;
    /// Creates an incident and its first timeline event in one transaction.
    fn create_incident(&self, new: NewIncidentRow) -> Result<Incident>;
    /// Fails with `NotFound` unless the incident exists; cheaper than [`Store::incident`]
    /// (no evidence count), for callers that only check.
    fn ensure_incident(&self, id: i64) -> Result<()>;
    /// One incident.
    fn incident(&self, id: i64) -> Result<Incident>;
    /// The incident a capture lands on when none is named: the open (not resolved or closed)
    /// one changed most recently, since that is the one the engineer is working on.
    fn latest_open_incident(&self) -> Result<Option<Incident>>;
    /// Incidents matching `filter`, newest first.
    fn list_incidents(&self, filter: &IncidentFilter) -> Result<Page<Incident>>;
    /// Applies the present fields of `patch`. A status, severity or title that really
    /// changed is recorded as a fact (the narrator words it); a description edit or a PATCH of
    /// current values is not.
    fn update_incident(&self, id: i64, patch: &IncidentPatch) -> Result<Incident>;
    /// Deletes an incident with everything attached to it, and its image files that no other
    /// evidence shares.
    fn delete_incident(&self, id: i64) -> Result<()>;
    /// Finds an incident by its id in a source system (for idempotent syncs).
    fn incident_by_external(&self, source: IncidentSource, external_id: &str) -> Result<Option<Incident>>;
    /// Creates or updates an incident from another system and adds its new items, in one
    /// transaction; a second call with the same data changes nothing.
    fn apply_external(&self, inc: &ExternalIncident, items: &[ExternalItem]) -> Result<ApplyOutcome>;
    /// Adds items (merges, deployments) to an existing incident; returns how many were new.
    fn attach_external(&self, incident_id: i64, items: &[ExternalItem]) -> Result<usize>;
    /// Records a verified webhook delivery and applies its action in the same transaction.
    /// `None` when the delivery id was seen before (a redelivery): nothing is changed.
    fn ingest_delivery(&self, provider: &str, delivery_id: &str, event_type: &str, body: &str, action: &DeliveryAction) -> Result<Option<Vec<ApplyOutcome>>>;
    /// Number of recorded webhook deliveries per provider.
    fn delivery_counts(&self) -> Result<Vec<(String, i64)>>;
    /// Changes and alerts stored on an incident, oldest first (input of change correlation).
    fn signals(&self, incident_id: i64) -> Result<Vec<StoredSignal>>;
    /// Proposes a correlation hypothesis once per `key`; `None` when it was proposed before.
    fn add_correlation(&self, incident_id: i64, key: &str, statement: &str, evidence_ids: &[i64]) -> Result<Option<i64>>;
    /// Incidents whose window may hold relevant changes: still open, or opened since `since`.
    fn incidents_for_changes(&self, since: &Timestamp) -> Result<Vec<Incident>>;
    /// Records the end of a sync: on success the new cursor and item count, on failure the
    /// error (the previous cursor is kept so the next sync retries the same window).
    fn record_sync(&self, name: &str, outcome: std::result::Result<(Option<String>, i64), String>) -> Result<()>;
    /// Sync state of every integration that ever synced.
    fn integration_states(&self) -> Result<Vec<IntegrationState>>;
    /// The most recent errors of integration `name`, newest first.
    fn integration_errors(&self, name: &str, limit: u32) -> Result<Vec<IntegrationError>>;
    /// Schema version of the open database.
    fn schema_version(&self) -> Result<usize>;
    /// Queues posts, due now.
    fn enqueue_outbox(&self, rows: &[NewOutbox]) -> Result<Vec<OutboxMessage>>;
    /// Pending posts due at `at`, oldest first.
    fn due_outbox(&self, at: &Timestamp, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// When the next pending post is due, if any (the worker sleeps until then).
    fn next_outbox_due(&self) -> Result<Option<Timestamp>>;
    /// Records an attempt.
    fn record_outbox_attempt(&self, id: i64, result: &OutboxResult) -> Result<OutboxMessage>;
    /// Outbox rows, newest first, optionally of one status.
    fn list_outbox(&self, status: Option<OutboxStatus>, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// Puts a dead (or pending) row back in the queue, due now, with a fresh attempt budget.
    /// Delivered rows are left alone (409).
    fn retry_outbox(&self, id: i64) -> Result<OutboxMessage>;
    /// Number of outbox rows per status.
    fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>>;
    /// Everyone known, the local user first, then by name.
    fn people(&self) -> Result<Vec<Person>>;
    /// Adds a person; a handle someone else has is a conflict.
    fn add_person(&self, p: &PersonRow) -> Result<Person>;
    /// One person.
    fn person(&self, id: i64) -> Result<Person>;
    /// Changes a person's name, handle and email; a handle someone else has is a conflict.
    fn set_person(&self, id: i64, p: &PersonRow) -> Result<Person>;
    /// The local user, if one was set.
    fn local_user(&self) -> Result<Option<Person>>;
    /// Sets the local user's name, handle and email (creating them the first time). Entries
    /// already written keep the name they were written under.
    fn set_local_user(&self, p: &PersonRow) -> Result<Person>;
    /// Who holds which role on an incident.
    fn roles(&self, incident_id: i64) -> Result<IncidentRoles>;
    /// Gives `role` to the person `who` names (id, handle or name): commander, communications
    /// and scribe change hands, participants are added. A timeline entry says so. `Ok(None)`
    /// when nobody matches `who`.
    fn assign_role(&self, incident_id: i64, role: Role, who: &str) -> Result<Option<IncidentRoles>>;
    /// Takes `role` from a person; a timeline entry says so. `NotFound` when they do not
    /// hold it.
    fn unassign_role(&self, incident_id: i64, role: Role, person_id: i64) -> Result<IncidentRoles>;
    /// The saved postmortem of an incident, if any.
    fn postmortem(&self, incident_id: i64) -> Result<Option<StoredPostmortem>>;
    /// Saves the postmortem if `expected` is its current version (0: never saved). `Ok(Err)`
    /// carries the current one when another save came first; nothing is written then.
    fn save_postmortem(&self, incident_id: i64, expected: i64, sections: &str, author: Option<&str>) -> Result<std::result::Result<StoredPostmortem, StoredPostmortem>>;
    /// Pins, rewords or moves a timeline entry. Only notes and observations may be reworded or
    /// moved (the rest is OpsLens's own record); any entry may be pinned.
    fn edit_timeline_event(&self, id: i64, edit: &TimelineEdit) -> Result<TimelineEvent>;
    /// Deletes a timeline entry; an "evidence added" entry goes only with its evidence.
    fn delete_timeline_event(&self, id: i64) -> Result<()>;
    /// Best matches for `req` across every kind of entry, best first and grouped by incident.
    /// Fails with [`crate::StoreError::Conflict`] never; a bad query is refused by
    /// [`parse_query`] before it gets here (callers parse first to answer 4xx).
    fn search(&self, req: &SearchRequest) -> Result<SearchResults>;
    /// Incidents the ranking compares against: the `limit` newest that were not merged away
    /// (plus `always`, the one asked about), without their evidence text but with a `stamp`
    /// that changes whenever the incident or any of its evidence does (so the ranking can keep
    /// what it computed from the text until then).
    fn similar_heads(&self, always: i64, limit: u32) -> Result<Vec<CorpusIncident>>;
    /// Titles and (the start of) the text of the evidence of each of `ids`.
    fn similar_texts(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>>;
    /// Open incidents not merged away (plus `always`), without their evidence text: what
    /// the duplicate check compares, cheap enough for every read of an incident.
    fn open_corpus(&self, always: i64) -> Result<Vec<CorpusIncident>>;
    /// Fingerprints of every screenshot that has one, of incidents not merged away (only of
    /// open ones, plus `always`, with `open_only`).
    fn shot_prints(&self, always: i64, open_only: bool) -> Result<Vec<ShotPrint>>;
    /// Stored images without a fingerprint yet (stored before fingerprints existed, or whose
    /// fingerprint write was lost): content hash and file path, at most `limit`.
    fn unprinted_images(&self, limit: u32) -> Result<Vec<(String, PathBuf)>>;
    /// Stores the fingerprint of the image whose content hash is `sha256` (once: the same
    /// bytes always give the same fingerprint).
    fn put_fingerprint(&self, sha256: &str, thumb: &[u8]) -> Result<()>;
    /// Stores the vision-model embedding of the image `sha256` made by `model` (once per blob
    /// and model); an empty or non-finite vector is refused.
    fn put_embedding(&self, sha256: &str, model: &str, vector: &[f32]) -> Result<()>;
    /// Embeddings of the screenshots of incidents not merged away, from the models that also
    /// embedded a screenshot of `always` (only of open incidents plus `always`, with `open_only`).
    fn shot_embeddings(&self, always: i64, open_only: bool) -> Result<Vec<ShotEmbedding>>;
    /// Screenshots of incident `id` whose image has no embedding from `model` yet: evidence
    /// id, content hash and file path.
    fn unembedded_shots(&self, id: i64, model: &str) -> Result<Vec<(i64, String, PathBuf)>>;
    /// Whether incident `id` has a postmortem, and its action items' titles.
    fn postmortem_and_actions(&self, id: i64) -> Result<(bool, Vec<String>)>;
    /// Moves the evidence, timeline, hypotheses, action items, status updates and signals of
    /// `from` into `into`, closes `from` as merged (its reads then name `into`) and records
    /// the merge on both timelines: one transaction, so a failure moves nothing.
    fn merge_incident(&self, from: i64, into: i64) -> Result<(MergeCounts, Incident)>;
    /// Stores `png` as the redacted copy of screenshot `id` (the original file is kept),
    /// replacing an earlier redaction, whose file goes if nothing else names it.
    fn set_redaction(&self, id: i64, png: &[u8], boxes: &[RedactionBox]) -> Result<opslens_domain::Evidence>;
    /// Path of a screenshot's redacted copy, `None` when it has none.
    fn redacted_image(&self, id: i64) -> Result<Option<PathBuf>>;
    /// Gives `name` (an existing person of that name or handle, else a new person) a token of
    /// `role` whose digest is `sha256`. A person who already holds a live token is a conflict:
    /// revoke it first, so an old token never stays valid by accident.
    fn add_user_token(&self, name: &str, role: UserRole, sha256: &str) -> Result<User>;
    /// Every token ever made, live ones first, newest first.
    fn users(&self) -> Result<Vec<User>>;
    /// Revokes the live token of `who` (token id, person name or handle); `None` when there is
    /// no such live token.
    fn revoke_user(&self, who: &str) -> Result<Option<User>>;
    /// The live token whose digest is `sha256`, if any (revoked ones are not found).
    fn user_by_token(&self, sha256: &str) -> Result<Option<User>>;
    /// Notes that token `id` was used now (the caller rate-limits this to once a minute).
    fn touch_user_token(&self, id: i64) -> Result<()>;
    /// Status updates of an incident, oldest first.
    fn status_updates(&self, incident_id: i64) -> Result<Vec<StatusUpdate>>;
    /// Records a status update at the incident's current status: the row, a timeline entry,
    /// the incident's next-due time, and one outgoing message per destination.
    fn add_status_update(&self, incident_id: i64, new: &StatusUpdateRow) -> Result<StatusUpdate>;
    /// Timeline of an incident in time order.
    fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEvent>>;
    /// Hypotheses of an incident, oldest first.
    fn hypotheses(&self, incident_id: i64) -> Result<Vec<Hypothesis>>;
    /// Proposes a hypothesis, linking evidence of the same incident.
    fn add_hypothesis(&self, incident_id: i64, new: &NewHypothesis) -> Result<Hypothesis>;
    /// Changes a hypothesis; the change is recorded as a fact (the narrator decides what of
    /// it is news: a status decision is, rewording and relinking evidence are housekeeping).
    fn update_hypothesis(&self, id: i64, patch: &HypothesisPatch) -> Result<Hypothesis>;
    /// Action items of an incident, oldest first.
    fn actions(&self, incident_id: i64) -> Result<Vec<Action>>;
    /// Creates an action item and its timeline event.
    fn add_action(&self, incident_id: i64, new: &NewAction) -> Result<Action>;
    /// Changes an action item; a status change goes on the timeline.
    fn update_action(&self, id: i64, patch: &ActionPatch) -> Result<Action>;

}
