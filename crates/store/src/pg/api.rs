//! The PostgreSQL side of every call in `dispatch!` (crates/store/src/backend.rs): each one
//! hands on to the module of its table group, so this file is the index of what the backend
//! implements, and `mod.rs` keeps the pool, migrations, transactions and the change feed.

use super::*;

impl PgApi for PgStore {
    fn schema_version(&self) -> Result<usize> {
        self.read(|c| {
            let v: i64 = c
                .query_one("SELECT version FROM opslens_schema", &[])?
                .get(0);
            Ok(v as usize)
        })
    }

    fn create_incident(&self, new: crate::NewIncidentRow) -> Result<opslens_domain::Incident> {
        self.write(|tx| incidents::insert(tx, &new, &now()))
    }

    fn ensure_incident(&self, id: i64) -> Result<()> {
        self.read(|c| row::ensure_incident(c, id))
    }

    fn incident(&self, id: i64) -> Result<opslens_domain::Incident> {
        self.read(|c| row::incident_in(c, id))
    }

    fn latest_open_incident(&self) -> Result<Option<opslens_domain::Incident>> {
        self.latest_open_incident_pg()
    }

    fn list_incidents(
        &self,
        filter: &opslens_domain::IncidentFilter,
    ) -> Result<opslens_domain::Page<opslens_domain::Incident>> {
        self.list_incidents_pg(filter)
    }

    fn update_incident(
        &self,
        id: i64,
        patch: &opslens_domain::IncidentPatch,
    ) -> Result<opslens_domain::Incident> {
        self.update_incident_pg(id, patch)
    }

    fn delete_incident(&self, id: i64) -> Result<()> {
        self.delete_incident_pg(id)
    }

    fn incident_by_external(
        &self,
        source: opslens_domain::IncidentSource,
        external_id: &str,
    ) -> Result<Option<opslens_domain::Incident>> {
        self.incident_by_external_pg(source, external_id)
    }

    fn people(&self) -> Result<Vec<opslens_domain::Person>> {
        self.people_pg()
    }

    fn add_person(&self, p: &crate::PersonRow) -> Result<opslens_domain::Person> {
        self.add_person_pg(p)
    }

    fn person(&self, id: i64) -> Result<opslens_domain::Person> {
        self.read(|c| people::person_in(c, id))
    }

    fn set_person(&self, id: i64, p: &crate::PersonRow) -> Result<opslens_domain::Person> {
        self.set_person_pg(id, p)
    }

    fn local_user(&self) -> Result<Option<opslens_domain::Person>> {
        self.local_user_pg()
    }

    fn set_local_user(&self, p: &crate::PersonRow) -> Result<opslens_domain::Person> {
        self.set_local_user_pg(p)
    }

    fn timeline(&self, incident_id: i64) -> Result<Vec<opslens_domain::TimelineEvent>> {
        self.timeline_pg(incident_id)
    }

    fn add_timeline_event(
        &self,
        incident_id: i64,
        new: &opslens_domain::NewTimelineEvent,
        at: Option<Timestamp>,
    ) -> Result<opslens_domain::TimelineEvent> {
        self.add_timeline_event_pg(incident_id, new, at)
    }

    fn add_text_evidence(
        &self,
        incident_id: i64,
        evidence_type: opslens_domain::EvidenceType,
        title: &str,
        content: &str,
        source: &str,
    ) -> Result<opslens_domain::Evidence> {
        let new = crate::NewTextEvidence {
            evidence_type,
            title,
            content,
            source,
            occurred_at: None,
        };
        self.add_text_evidence_at_pg(incident_id, &new)
    }

    fn add_text_evidence_at(
        &self,
        incident_id: i64,
        new: &crate::NewTextEvidence<'_>,
    ) -> Result<opslens_domain::Evidence> {
        self.add_text_evidence_at_pg(incident_id, new)
    }

    fn add_image_evidence(
        &self,
        incident_id: i64,
        new: crate::NewImageEvidence,
    ) -> Result<opslens_domain::Evidence> {
        self.add_image_evidence_pg(incident_id, new)
    }

    fn evidence_by_upload_key(&self, key: &str) -> Result<Option<opslens_domain::Evidence>> {
        self.evidence_by_upload_key_pg(key)
    }

    fn add_image_evidence_filed(
        &self,
        incident_id: i64,
        new: crate::NewImageEvidence,
        filing: &crate::UploadFiling,
    ) -> Result<(opslens_domain::Evidence, bool)> {
        self.add_image_evidence_filed_pg(incident_id, new, filing)
    }

    fn evidence(&self, id: i64) -> Result<opslens_domain::Evidence> {
        self.read(|c| evidence::evidence_in(c, id))
    }

    fn list_evidence(&self, incident_id: i64) -> Result<Vec<opslens_domain::Evidence>> {
        self.list_evidence_pg(incident_id)
    }

    fn evidence_image(&self, id: i64) -> Result<(PathBuf, String)> {
        self.evidence_image_pg(id)
    }

    fn sweep_orphan_blobs(&self) -> Result<usize> {
        self.sweep_orphan_blobs_pg()
    }

    fn similar_heads(&self, always: i64, limit: u32) -> Result<Vec<crate::CorpusIncident>> {
        self.similar_heads_pg(always, limit)
    }

    fn similar_texts(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, Vec<String>>> {
        self.similar_texts_pg(ids)
    }

    fn open_corpus(&self, always: i64) -> Result<Vec<crate::CorpusIncident>> {
        self.open_corpus_pg(always)
    }

    fn shot_prints(&self, always: i64, open_only: bool) -> Result<Vec<crate::ShotPrint>> {
        self.shot_prints_pg(always, open_only)
    }

    fn unprinted_images(&self, limit: u32) -> Result<Vec<(String, PathBuf)>> {
        self.unprinted_images_pg(limit)
    }

    fn put_fingerprint(&self, sha256: &str, thumb: &[u8]) -> Result<()> {
        self.put_fingerprint_pg(sha256, thumb)
    }

    fn put_embedding(&self, sha256: &str, model: &str, vector: &[f32]) -> Result<()> {
        self.put_embedding_pg(sha256, model, vector)
    }

    fn shot_embeddings(&self, always: i64, open_only: bool) -> Result<Vec<crate::ShotEmbedding>> {
        self.shot_embeddings_pg(always, open_only)
    }

    fn unembedded_shots(&self, id: i64, model: &str) -> Result<Vec<(i64, String, PathBuf)>> {
        self.unembedded_shots_pg(id, model)
    }

    fn postmortem_and_actions(&self, id: i64) -> Result<(bool, Vec<String>)> {
        self.postmortem_and_actions_pg(id)
    }

    fn merge_incident(
        &self,
        from: i64,
        into: i64,
    ) -> Result<(crate::MergeCounts, opslens_domain::Incident)> {
        self.merge_incident_pg(from, into)
    }

    fn set_redaction(
        &self,
        id: i64,
        png: &[u8],
        boxes: &[opslens_domain::RedactionBox],
    ) -> Result<opslens_domain::Evidence> {
        self.set_redaction_pg(id, png, boxes)
    }

    fn redacted_image(&self, id: i64) -> Result<Option<PathBuf>> {
        self.redacted_image_pg(id)
    }

    fn enqueue_analysis(
        &self,
        evidence_id: i64,
        question: Option<&str>,
        model_present: bool,
    ) -> Result<opslens_domain::AnalysisJob> {
        self.enqueue_analysis_pg(evidence_id, question, model_present)
    }

    fn take_analysis_job(
        &self,
        worker: &str,
        lease: Duration,
        max_attempts: i64,
    ) -> Result<Option<opslens_domain::AnalysisJob>> {
        self.take_analysis_job_pg(worker, lease, max_attempts)
    }

    fn claim_analysis_job(&self) -> Result<Option<opslens_domain::AnalysisJob>> {
        self.take_analysis_job_pg("local", Duration::from_secs(3600), i64::MAX)
    }

    fn renew_analysis_lease(&self, job_id: i64, worker: &str, lease: Duration) -> Result<bool> {
        self.renew_analysis_lease_pg(job_id, worker, lease)
    }

    fn finish_analysis_job(
        &self,
        job_id: i64,
        done: &crate::FinishedAnalysis,
    ) -> Result<opslens_domain::AnalysisJob> {
        self.finish_analysis_job_pg(job_id, done)
    }

    fn requeue_interrupted_analyses(
        &self,
        worker: &str,
        max_attempts: i64,
    ) -> Result<(usize, usize)> {
        self.requeue_interrupted_analyses_pg(worker, max_attempts)
    }

    fn set_analysis_waiting(&self, waiting: bool) -> Result<usize> {
        self.set_analysis_waiting_pg(waiting)
    }

    fn analysis_job(&self, id: i64) -> Result<opslens_domain::AnalysisJob> {
        self.analysis_job_pg(id)
    }

    fn analysis_jobs_of(&self, evidence_id: i64) -> Result<Vec<opslens_domain::AnalysisJob>> {
        self.analysis_jobs_of_pg(evidence_id)
    }

    fn has_pending_analysis(&self) -> Result<bool> {
        self.has_pending_analysis_pg()
    }

    fn analyses_by_others_since(
        &self,
        me: &str,
        since: Option<&str>,
    ) -> Result<crate::analysis::OthersProgress> {
        self.analyses_by_others_since_pg(me, since)
    }

    fn pending_analysis_count(&self) -> Result<i64> {
        self.pending_analysis_count_pg()
    }

    fn last_finished_analysis(&self) -> Result<Option<opslens_domain::AnalysisJob>> {
        self.last_finished_analysis_pg()
    }

    fn update_analysis(
        &self,
        id: i64,
        u: &crate::AnalysisUpdate,
    ) -> Result<opslens_domain::Evidence> {
        self.update_analysis_pg(id, u)
    }

    fn analysis_backlog(&self) -> Result<Vec<(opslens_domain::AnalysisState, i64)>> {
        self.analysis_backlog_pg()
    }

    fn update_evidence(
        &self,
        id: i64,
        title: Option<&str>,
        occurred_at: Option<Timestamp>,
    ) -> Result<opslens_domain::Evidence> {
        self.update_evidence_pg(id, title, occurred_at)
    }

    fn enqueue_outbox(&self, rows: &[NewOutbox]) -> Result<Vec<opslens_domain::OutboxMessage>> {
        self.enqueue_outbox_pg(rows)
    }

    fn due_outbox(&self, at: &Timestamp, limit: u32) -> Result<Vec<opslens_domain::OutboxMessage>> {
        self.due_outbox_pg(at, limit)
    }

    fn next_outbox_due(&self) -> Result<Option<Timestamp>> {
        self.next_outbox_due_pg()
    }

    fn record_outbox_attempt(
        &self,
        id: i64,
        result: &crate::OutboxResult,
    ) -> Result<opslens_domain::OutboxMessage> {
        self.record_outbox_attempt_pg(id, result)
    }

    fn list_outbox(
        &self,
        status: Option<opslens_domain::OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<opslens_domain::OutboxMessage>> {
        self.list_outbox_pg(status, limit)
    }

    fn retry_outbox(&self, id: i64) -> Result<opslens_domain::OutboxMessage> {
        self.retry_outbox_pg(id)
    }

    fn outbox_counts(&self) -> Result<Vec<(opslens_domain::OutboxStatus, i64)>> {
        self.outbox_counts_pg()
    }

    fn hypotheses(&self, incident_id: i64) -> Result<Vec<opslens_domain::Hypothesis>> {
        self.hypotheses_pg(incident_id)
    }

    fn add_hypothesis(
        &self,
        incident_id: i64,
        new: &opslens_domain::NewHypothesis,
    ) -> Result<opslens_domain::Hypothesis> {
        self.add_hypothesis_pg(incident_id, new)
    }

    fn update_hypothesis(
        &self,
        id: i64,
        patch: &opslens_domain::HypothesisPatch,
    ) -> Result<opslens_domain::Hypothesis> {
        self.update_hypothesis_pg(id, patch)
    }

    fn actions(&self, incident_id: i64) -> Result<Vec<opslens_domain::Action>> {
        self.actions_pg(incident_id)
    }

    fn add_action(
        &self,
        incident_id: i64,
        new: &opslens_domain::NewAction,
    ) -> Result<opslens_domain::Action> {
        self.add_action_pg(incident_id, new)
    }

    fn update_action(
        &self,
        id: i64,
        patch: &opslens_domain::ActionPatch,
    ) -> Result<opslens_domain::Action> {
        self.update_action_pg(id, patch)
    }

    fn roles(&self, incident_id: i64) -> Result<opslens_domain::IncidentRoles> {
        self.roles_pg(incident_id)
    }

    fn assign_role(
        &self,
        incident_id: i64,
        role: opslens_domain::Role,
        who: &str,
    ) -> Result<Option<opslens_domain::IncidentRoles>> {
        self.assign_role_pg(incident_id, role, who)
    }

    fn unassign_role(
        &self,
        incident_id: i64,
        role: opslens_domain::Role,
        person_id: i64,
    ) -> Result<opslens_domain::IncidentRoles> {
        self.unassign_role_pg(incident_id, role, person_id)
    }

    fn add_user_token(
        &self,
        name: &str,
        role: opslens_domain::UserRole,
        sha256: &str,
    ) -> Result<opslens_domain::User> {
        self.add_user_token_pg(name, role, sha256)
    }

    fn users(&self) -> Result<Vec<opslens_domain::User>> {
        self.users_pg()
    }

    fn revoke_user(&self, who: &str) -> Result<Option<opslens_domain::User>> {
        self.revoke_user_pg(who)
    }

    fn user_by_token(&self, sha256: &str) -> Result<Option<opslens_domain::User>> {
        self.user_by_token_pg(sha256)
    }

    fn touch_user_token(&self, id: i64) -> Result<()> {
        self.touch_user_token_pg(id)
    }

    fn status_updates(&self, incident_id: i64) -> Result<Vec<opslens_domain::StatusUpdate>> {
        self.status_updates_pg(incident_id)
    }

    fn add_status_update(
        &self,
        incident_id: i64,
        new: &crate::StatusUpdateRow,
    ) -> Result<opslens_domain::StatusUpdate> {
        self.add_status_update_pg(incident_id, new)
    }

    fn postmortem(&self, incident_id: i64) -> Result<Option<crate::StoredPostmortem>> {
        self.postmortem_pg(incident_id)
    }

    fn save_postmortem(
        &self,
        incident_id: i64,
        expected: i64,
        sections: &str,
        author: Option<&str>,
    ) -> Result<std::result::Result<crate::StoredPostmortem, crate::StoredPostmortem>> {
        self.save_postmortem_pg(incident_id, expected, sections, author)
    }

    fn edit_timeline_event(
        &self,
        id: i64,
        edit: &crate::TimelineEdit,
    ) -> Result<opslens_domain::TimelineEvent> {
        self.edit_timeline_event_pg(id, edit)
    }

    fn delete_timeline_event(&self, id: i64) -> Result<()> {
        self.delete_timeline_event_pg(id)
    }

    fn apply_external(
        &self,
        inc: &opslens_domain::ExternalIncident,
        items: &[opslens_domain::ExternalItem],
    ) -> Result<opslens_domain::ApplyOutcome> {
        self.apply_external_pg(inc, items)
    }

    fn attach_external(
        &self,
        incident_id: i64,
        items: &[opslens_domain::ExternalItem],
    ) -> Result<usize> {
        self.attach_external_pg(incident_id, items)
    }

    fn ingest_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event_type: &str,
        body: &str,
        action: &crate::DeliveryAction,
    ) -> Result<Option<Vec<opslens_domain::ApplyOutcome>>> {
        self.ingest_delivery_pg(provider, delivery_id, event_type, body, action)
    }

    fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        self.delivery_counts_pg()
    }

    fn signals(&self, incident_id: i64) -> Result<Vec<opslens_domain::StoredSignal>> {
        self.signals_pg(incident_id)
    }

    fn add_correlation(
        &self,
        incident_id: i64,
        key: &str,
        statement: &str,
        evidence_ids: &[i64],
    ) -> Result<Option<i64>> {
        self.add_correlation_pg(incident_id, key, statement, evidence_ids)
    }

    fn incidents_for_changes(&self, since: &Timestamp) -> Result<Vec<opslens_domain::Incident>> {
        self.incidents_for_changes_pg(since)
    }

    fn record_sync(
        &self,
        name: &str,
        outcome: std::result::Result<(Option<String>, i64), String>,
    ) -> Result<()> {
        self.record_sync_pg(name, outcome)
    }

    fn integration_states(&self) -> Result<Vec<opslens_domain::IntegrationState>> {
        self.integration_states_pg()
    }

    fn integration_errors(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<opslens_domain::IntegrationError>> {
        self.integration_errors_pg(name, limit)
    }

    fn search(&self, req: &crate::SearchRequest) -> Result<opslens_domain::SearchResults> {
        self.search_pg(req)
    }
}
