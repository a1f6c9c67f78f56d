//! The similar-incidents use-case on the incident service: ranking a past incident against
//! today's, the duplicate hint, merging, and the fingerprint backfill. The scoring itself is
//! in [`crate::similar`], which needs nothing of the service.

use std::collections::HashMap;

use opslens_domain::{DuplicateHint, Incident, MergeOutcome, SimilarIncidents};

use crate::incidents::IncidentService;
use crate::similar::*;
use crate::CoreError;

impl IncidentService {
    /// Ranks against the newest incidents (`open_only`: only the open ones, without their
    /// evidence text — the cheap duplicate check).
    async fn ranked(&self, id: i64, open_only: bool, limit: usize) -> Result<Ranked, CoreError> {
        self.backfill_fingerprints(BACKFILL_PER_CALL).await?;
        let cache = self.similar.clone();
        let (corpus, texts, prints, embeds) = self
            .db
            .run(move |s| {
                s.ensure_incident(id)?;
                if open_only {
                    let corpus = s.open_corpus(id)?;
                    return Ok((
                        corpus,
                        HashMap::new(),
                        s.shot_prints(id, true)?,
                        s.shot_embeddings(id, true)?,
                    ));
                }
                let corpus = s.similar_heads(id, CORPUS)?;
                let stale: Vec<i64> = {
                    let c = cache.0.lock().unwrap_or_else(|p| p.into_inner());
                    corpus
                        .iter()
                        .filter(|x| c.docs.get(&x.id).is_none_or(|d| d.stamp != x.stamp))
                        .map(|x| x.id)
                        .collect()
                };
                let texts = s.similar_texts(&stale)?;
                Ok((
                    corpus,
                    texts,
                    s.shot_prints(id, false)?,
                    s.shot_embeddings(id, false)?,
                ))
            })
            .await?;
        if !corpus.iter().any(|c| c.id == id) {
            return Err(CoreError::NotFound(format!("incident {id} not found")));
        }
        let cache = self.similar.clone();
        Ok(tokio::task::spawn_blocking(move || {
            rank(
                &cache, id, &corpus, &texts, &prints, &embeds, limit, !open_only,
            )
        })
        .await?)
    }

    /// Past incidents like `id`, best first, each with why; and the open incident it probably
    /// duplicates. Blocking work (the ranking) runs off the async threads.
    pub async fn similar(
        &self,
        id: i64,
        limit: Option<u32>,
    ) -> Result<SimilarIncidents, CoreError> {
        let limit = limit.unwrap_or(10);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(CoreError::Invalid(format!(
                "limit must be 1 to {MAX_LIMIT}, not {limit}"
            )));
        }
        let Ranked {
            duplicate,
            mut hits,
        } = self.ranked(id, false, limit as usize).await?;
        for h in &mut hits {
            let other = h.incident_id;
            let (pm, actions) = self
                .db
                .run(move |s| s.postmortem_and_actions(other))
                .await?;
            h.has_postmortem = pm;
            h.actions = actions;
        }
        Ok(SimilarIncidents {
            incident_id: id,
            possible_duplicate_of: duplicate,
            items: hits,
        })
    }

    /// The open incident `id` probably duplicates, for the incident page's banner. Compares
    /// only against open incidents, so it stays cheap on every read.
    pub async fn duplicate_hint(&self, id: i64) -> Result<Option<DuplicateHint>, CoreError> {
        Ok(self.ranked(id, true, 0).await?.duplicate)
    }

    /// One incident with its duplicate hint (what `GET /incidents/{id}` answers).
    pub async fn get_with_hint(&self, id: i64) -> Result<Incident, CoreError> {
        let mut inc = self.get(id).await?;
        if inc.merged_into.is_none() && !inc.status.is_finished() {
            inc.possible_duplicate_of = self.duplicate_hint(id).await?;
        }
        Ok(inc)
    }

    /// Merges incident `id` into `into`: evidence, timeline, hypotheses and actions move, `id`
    /// is closed and names `into` from then on; both timelines say so. One transaction.
    pub async fn merge(&self, id: i64, into: i64) -> Result<MergeOutcome, CoreError> {
        // Unknown ids (404) and merging into itself (409) are refused by the store, in that
        // order, inside the transaction.
        let (counts, target) = self
            .db
            .run(move |s| s.merge_incident(id, into))
            .await
            .map_err(|e| match e {
                // The path's incident exists; what is missing is the one the body names.
                CoreError::NotFound(m)
                    if into != id && m.starts_with(&format!("incident {into} ")) =>
                {
                    CoreError::Invalid(format!("into: {m}"))
                }
                e => e,
            })?;
        Ok(MergeOutcome {
            merged: id,
            into: target,
            evidence: counts.evidence,
            timeline: counts.timeline,
            hypotheses: counts.hypotheses,
            actions: counts.actions,
        })
    }

    /// Computes the fingerprints of up to `max` stored images that have none (images stored
    /// before fingerprints existed); returns how many were added. An unreadable file is
    /// skipped with a warning, not fatal.
    pub async fn backfill_fingerprints(&self, max: u32) -> Result<usize, CoreError> {
        let missing = self.db.run(move |s| s.unprinted_images(max)).await?;
        if missing.is_empty() {
            return Ok(0);
        }
        let prints = tokio::task::spawn_blocking(move || {
            missing
                .into_iter()
                .map(|(sha, path)| {
                    let img = std::fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            crate::upload::validate_image(b)
                                .map(|v| v.thumb)
                                .map_err(|e| e.to_string())
                        });
                    match img {
                        Ok(thumb) => (sha, thumb),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "no fingerprint for image");
                            // An empty print (alike to nothing) stands in, so the file is not
                            // retried on every call.
                            (sha, Vec::new())
                        }
                    }
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let n = prints.len();
        self.db
            .run(move |s| {
                for (sha, thumb) in &prints {
                    s.put_fingerprint(sha, thumb)?;
                }
                Ok(())
            })
            .await?;
        Ok(n)
    }
}

/// Fingerprints the images stored before fingerprints existed, in the background and in small
/// batches (a similar-incidents request also does a batch itself, so the ranking never waits
/// for this pass), then fills the ranking's term vectors. Holds only a weak handle: it ends
/// with the services.
pub(crate) fn spawn_backfill(incidents: &std::sync::Arc<IncidentService>) {
    let weak = std::sync::Arc::downgrade(incidents);
    tokio::spawn(async move {
        while let Some(s) = weak.upgrade() {
            match s.backfill_fingerprints(32).await {
                Ok(0) => break,
                Ok(n) => tracing::info!(n, "screenshot fingerprints backfilled"),
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "fingerprint backfill stopped");
                    break;
                }
            }
        }
        // Fill the term vectors once, so the first incident page opened does not wait for
        // every incident's text to be read.
        if let Some(s) = weak.upgrade() {
            let newest = s.db.run(|st| st.similar_heads(0, 1)).await;
            if let Some(id) = newest.ok().and_then(|v| v.first().map(|x| x.id)) {
                if let Err(e) = s.ranked(id, false, 1).await {
                    tracing::debug!(error = %e.chain(), "similar-incidents warm-up skipped");
                }
            }
        }
    });
}
