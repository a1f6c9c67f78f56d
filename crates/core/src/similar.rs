//! Similar past incidents, likely duplicates, and merging.
//!
//! Text: tf-idf cosine over each incident's title (weighted ×3), description, affected service
//! (×2) and evidence (titles, log text, screenshots' analyses with their errors and panels),
//! with idf taken over the compared set — the newest [`CORPUS`] incidents, so a query costs the
//! same on a year-old database as on a fresh one. Tokens keep `checkout-api`, `v2.41.0`,
//! `10.0.3.7` whole.
//!
//! Images: each stored screenshot has a perceptual fingerprint, a 32×32 grey thumbnail (area
//! averaged, so JPEG noise, small colour shifts and rescaling wash out), compared by Pearson
//! correlation (brightness and contrast changes do not matter). Dashboards built from the
//! same template correlate highly anyway, so only the top of the scale counts: below
//! [`IMAGE_FLOOR`] the image part adds nothing. A vision-tower embedding is not used (see the
//! README).

use std::collections::{HashMap, HashSet};

use opslens_domain::{
    DuplicateHint, ImageMatch, Incident, MergeOutcome, SimilarHit, SimilarIncidents,
};
use opslens_store::{CorpusIncident, ShotPrint};

use crate::incidents::IncidentService;
use crate::CoreError;

/// Side of the fingerprint thumbnail.
pub const THUMB_SIDE: u32 = 32;
/// Incidents the ranking compares against (the newest ones).
pub const CORPUS: u32 = 5000;
/// Image similarity under which screenshots count for nothing (template look-alikes).
pub const IMAGE_FLOOR: f64 = 0.8;
/// Image similarity from which two screenshots are the same screen (a duplicate).
pub const NEAR_IDENTICAL: f64 = 0.97;
/// Hits below this blended score are noise.
const MIN_SCORE: f64 = 0.05;
/// Most hits returned.
pub const MAX_LIMIT: u32 = 50;
/// Fingerprints computed per request for images stored before fingerprints existed.
const BACKFILL_PER_CALL: u32 = 256;

/// The perceptual fingerprint of a decoded image: its 32×32 grey thumbnail, row by row.
pub fn fingerprint(img: &image::DynamicImage) -> Vec<u8> {
    let grey = img.to_luma8();
    image::imageops::resize(
        &grey,
        THUMB_SIDE,
        THUMB_SIDE,
        image::imageops::FilterType::Triangle,
    )
    .into_raw()
}

/// How alike two fingerprints are, 0..=1 (Pearson correlation, negative taken as 0). Two
/// flat images are alike when their grey levels are.
pub fn image_similarity(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let n = a.len() as f64;
    let ma = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let mb = b.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    // Flat (a blank page): no shape to correlate, so compare the levels.
    if saa < n || sbb < n {
        return if saa < n && sbb < n {
            (1.0 - (ma - mb).abs() / 255.0).powi(4)
        } else {
            0.0
        };
    }
    (sab / (saa.sqrt() * sbb.sqrt())).clamp(0.0, 1.0)
}

/// The part of the score an image similarity adds: nothing below [`IMAGE_FLOOR`], rising
/// steeply to 1 for the same screen.
fn image_part(sim: f64) -> f64 {
    (((sim - IMAGE_FLOOR) / (1.0 - IMAGE_FLOOR)).clamp(0.0, 1.0)).powi(2)
}

const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "from",
    "that",
    "this",
    "was",
    "were",
    "are",
    "is",
    "be",
    "been",
    "on",
    "in",
    "at",
    "to",
    "of",
    "a",
    "an",
    "or",
    "by",
    "as",
    "it",
    "its",
    "no",
    "not",
    "but",
    "after",
    "before",
    "into",
    "over",
    "under",
    "than",
    "then",
    "there",
    "these",
    "those",
    "has",
    "have",
    "had",
    "we",
    "our",
    "you",
    "your",
    "they",
    "them",
    "all",
    "any",
    "some",
    "when",
    "while",
    "which",
    "who",
    "what",
    "where",
    "why",
    "how",
    "can",
    "could",
    "should",
    "would",
    "will",
    "may",
    "might",
    "about",
    "also",
    "only",
    "very",
    "more",
    "most",
    "just",
    "up",
    "down",
    "out",
    "so",
    "if",
    "do",
    "does",
    "did",
    "via",
    "per",
    "new",
    "one",
    "two",
    "screenshot",
    "shows",
    "show",
    "showing",
    "screen",
    "image",
    "incident",
    "null",
    "true",
    "false",
    "none",
    "summary",
    "panels",
    "errors",
    "timestamps",
    "timezone",
    "title",
    "metric",
    "unit",
    "current",
    "peak",
    "trend",
    "anomalies",
    "description",
    "start",
    "end",
    "message",
    "code",
    "time",
    "json",
    "parse",
    "raw",
    "other",
];

/// Words of `text` as the ranking counts them: lower case, split on anything but letters,
/// digits and `-_.`, so `checkout-api`, `v2.41.0` and `10.0.3.7` stay whole.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .map(|t| t.trim_matches(|c| c == '.' || c == '-' || c == '_'))
        .filter(|t| (2..=40).contains(&t.chars().count()))
        .map(str::to_lowercase)
        .filter(|t| !STOP.contains(&t.as_str()))
        // Long bare numbers are ids and times, different in every incident.
        .filter(|t| !(t.len() > 4 && t.chars().all(|c| c.is_ascii_digit())))
        // File names of screenshots say nothing about the incident.
        .filter(|t| {
            ![".png", ".jpg", ".jpeg", ".webp"]
                .iter()
                .any(|e| t.ends_with(e))
        })
}

const SERVICE_PARTS: &[&str] = &[
    "api", "svc", "service", "server", "worker", "web", "app", "db", "gateway", "gw", "proxy",
    "frontend", "backend", "queue", "cache", "ui", "consumer", "producer", "cron", "job",
];

/// Service names in `text`: hyphenated words with a part like `api`, `svc`, `worker`
/// (`checkout-api`, `payments-worker`).
pub fn services(text: &str) -> HashSet<String> {
    tokens(text)
        .filter(|t| {
            let parts: Vec<&str> = t.split(['-', '_']).collect();
            parts.len() >= 2
                && parts[0].chars().next().is_some_and(|c| c.is_alphabetic())
                && parts.iter().any(|p| SERVICE_PARTS.contains(p))
        })
        .collect()
}

/// An incident as a weighted term vector (unit length once idf is applied).
struct Doc {
    terms: HashMap<String, f64>,
    services: HashSet<String>,
    title_words: HashSet<String>,
}

fn doc(inc: &CorpusIncident) -> Doc {
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut add = |text: &str, w: f64| {
        for t in tokens(text) {
            *counts.entry(t).or_default() += w;
        }
    };
    add(&inc.title, 3.0);
    add(&inc.description, 1.0);
    for t in &inc.evidence_text {
        add(t, 1.0);
    }
    let services = services(&format!("{} {}", inc.title, inc.description));
    for s in &services {
        *counts.entry(s.clone()).or_default() += 2.0;
    }
    let terms = counts.into_iter().map(|(t, c)| (t, 1.0 + c.ln())).collect();
    let title_words = tokens(&inc.title)
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
        .collect();
    Doc {
        terms,
        services,
        title_words,
    }
}

/// Applies idf and normalises every document to unit length.
fn weigh(docs: &mut [Doc]) {
    let n = docs.len() as f64;
    let mut df: HashMap<String, f64> = HashMap::new();
    for d in docs.iter() {
        for t in d.terms.keys() {
            *df.entry(t.clone()).or_default() += 1.0;
        }
    }
    for d in docs.iter_mut() {
        for (t, w) in d.terms.iter_mut() {
            *w *= (1.0 + n / df[t]).ln();
        }
        let norm = d.terms.values().map(|w| w * w).sum::<f64>().sqrt();
        if norm > 0.0 {
            for w in d.terms.values_mut() {
                *w /= norm;
            }
        }
    }
}

/// Cosine of two unit vectors and the terms that weighed most in it.
fn cosine(a: &Doc, b: &Doc) -> (f64, Vec<String>) {
    let (small, big) = if a.terms.len() <= b.terms.len() {
        (a, b)
    } else {
        (b, a)
    };
    let mut shared: Vec<(f64, &String)> = small
        .terms
        .iter()
        .filter_map(|(t, w)| big.terms.get(t).map(|v| (w * v, t)))
        .collect();
    let sum = shared.iter().map(|(p, _)| p).sum::<f64>();
    shared.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(y.1)));
    let top = shared.into_iter().take(6).map(|(_, t)| t.clone()).collect();
    (sum.clamp(0.0, 1.0), top)
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let inter = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    if union == 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Best screenshot pair between incidents `a` and `b`.
fn best_pair(prints: &HashMap<i64, Vec<&ShotPrint>>, a: i64, b: i64) -> Option<ImageMatch> {
    let (pa, pb) = (prints.get(&a)?, prints.get(&b)?);
    let mut best: Option<ImageMatch> = None;
    for x in pa {
        for y in pb {
            let s = image_similarity(&x.thumb, &y.thumb);
            if best.as_ref().is_none_or(|m| s > m.similarity) {
                best = Some(ImageMatch {
                    evidence_id: x.evidence_id,
                    other_evidence_id: y.evidence_id,
                    similarity: s,
                });
            }
        }
    }
    best
}

fn is_open(i: &CorpusIncident) -> bool {
    !i.status.is_finished()
}

/// Rule for "probably the same incident": the older open incident `other` names the same
/// service and alert (title) within the hour, or has a near-identical screenshot.
fn duplicate_reason(
    me: &CorpusIncident,
    my_doc: &Doc,
    other: &CorpusIncident,
    other_doc: &Doc,
    image: Option<&ImageMatch>,
) -> Option<(u8, String)> {
    let older = (other.created_at, other.id) < (me.created_at, me.id);
    if !older || !is_open(other) {
        return None;
    }
    if let Some(m) = image.filter(|m| m.similarity >= NEAR_IDENTICAL) {
        return Some((
            2,
            format!(
                "screenshot {}% identical to #{}'s",
                (m.similarity * 100.0).floor() as i64,
                other.id
            ),
        ));
    }
    let within_hour = (me.created_at - other.created_at).num_seconds().abs() <= 3600;
    if !within_hour {
        return None;
    }
    let same_title = jaccard(&my_doc.title_words, &other_doc.title_words);
    let service = my_doc
        .services
        .intersection(&other_doc.services)
        .min()
        .cloned();
    match service {
        Some(s) if same_title >= 0.4 => Some((
            1,
            format!("same service {s} and alert within the hour (#{})", other.id),
        )),
        None if same_title >= 0.7 => {
            Some((1, format!("same alert within the hour (#{})", other.id)))
        }
        _ => None,
    }
}

/// Everything the ranking needs, loaded once.
struct Ranking {
    corpus: Vec<CorpusIncident>,
    docs: Vec<Doc>,
    me: usize,
    prints: Vec<ShotPrint>,
}

impl Ranking {
    fn prints_by_incident(&self) -> HashMap<i64, Vec<&ShotPrint>> {
        let mut m: HashMap<i64, Vec<&ShotPrint>> = HashMap::new();
        for p in &self.prints {
            m.entry(p.incident_id).or_default().push(p);
        }
        m
    }

    fn duplicate(&self, prints: &HashMap<i64, Vec<&ShotPrint>>) -> Option<DuplicateHint> {
        let me = &self.corpus[self.me];
        if !is_open(me) {
            return None;
        }
        let mut best: Option<(u8, f64, usize, String)> = None;
        for (i, other) in self.corpus.iter().enumerate() {
            if i == self.me {
                continue;
            }
            let image = best_pair(prints, me.id, other.id);
            let Some((rank, reason)) = duplicate_reason(
                me,
                &self.docs[self.me],
                other,
                &self.docs[i],
                image.as_ref(),
            ) else {
                continue;
            };
            let strength =
                image.map_or(0.0, |m| m.similarity) + cosine(&self.docs[self.me], &self.docs[i]).0;
            if best.as_ref().is_none_or(|b| (rank, strength) > (b.0, b.1)) {
                best = Some((rank, strength, i, reason));
            }
        }
        best.map(|(_, _, i, reason)| DuplicateHint {
            incident_id: self.corpus[i].id,
            title: self.corpus[i].title.clone(),
            reason,
        })
    }
}

impl IncidentService {
    async fn ranking(&self, id: i64, open_only: bool) -> Result<Ranking, CoreError> {
        self.backfill_fingerprints(BACKFILL_PER_CALL).await?;
        let (corpus, prints) = self
            .db
            .run(move |s| {
                s.ensure_incident(id)?;
                let corpus = if open_only {
                    s.open_corpus(id)?
                } else {
                    s.similar_corpus(id, CORPUS)?
                };
                Ok((corpus, s.shot_prints(id, open_only)?))
            })
            .await?;
        let me = corpus
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| CoreError::NotFound(format!("incident {id} not found")))?;
        let mut docs: Vec<Doc> = corpus.iter().map(doc).collect();
        weigh(&mut docs);
        Ok(Ranking {
            corpus,
            docs,
            me,
            prints,
        })
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
        let r = self.ranking(id, false).await?;
        let (dup, mut hits) = tokio::task::spawn_blocking(move || {
            let prints = r.prints_by_incident();
            let me = &r.corpus[r.me];
            let mine = &r.docs[r.me];
            let mut hits = Vec::new();
            for (i, other) in r.corpus.iter().enumerate() {
                if i == r.me {
                    continue;
                }
                let (text, shared) = cosine(mine, &r.docs[i]);
                let image = best_pair(&prints, me.id, other.id);
                let img = image.as_ref().map_or(0.0, |m| image_part(m.similarity));
                let service = mine
                    .services
                    .intersection(&r.docs[i].services)
                    .min()
                    .cloned();
                let score =
                    (0.55 * text + 0.45 * img + if service.is_some() { 0.1 } else { 0.0 }).min(1.0);
                if score < MIN_SCORE {
                    continue;
                }
                let mut reasons = Vec::new();
                if let Some(m) = image.as_ref().filter(|m| m.similarity >= IMAGE_FLOOR) {
                    reasons.push(format!(
                        "screenshot {}% similar to #{}'s",
                        (m.similarity * 100.0).floor() as i64,
                        other.id
                    ));
                }
                if let Some(s) = &service {
                    reasons.push(format!("same service {s}"));
                }
                let shared: Vec<String> = if text > 0.0 { shared } else { Vec::new() };
                if !shared.is_empty() {
                    reasons.push(format!("shares: {}", shared.join(", ")));
                }
                hits.push(SimilarHit {
                    incident_id: other.id,
                    title: other.title.clone(),
                    status: other.status,
                    severity: other.severity,
                    created_at: other.created_at,
                    score: round3(score),
                    text_score: round3(text),
                    image_score: image.as_ref().map(|m| round3(m.similarity)),
                    shared_terms: shared,
                    same_service: service,
                    image_match: image,
                    reasons,
                    has_postmortem: false,
                    actions: Vec::new(),
                    link: format!("#/incident/{}", other.id),
                    postmortem_link: format!("#/incident/{}/postmortem", other.id),
                });
            }
            hits.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| b.created_at.cmp(&a.created_at))
            });
            hits.truncate(limit as usize);
            (r.duplicate(&prints), hits)
        })
        .await?;
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
            possible_duplicate_of: dup,
            items: hits,
        })
    }

    /// The open incident `id` probably duplicates, for the incident page's banner. Compares
    /// only against open incidents, so it stays cheap on every read.
    pub async fn duplicate_hint(&self, id: i64) -> Result<Option<DuplicateHint>, CoreError> {
        let r = self.ranking(id, true).await?;
        Ok(tokio::task::spawn_blocking(move || r.duplicate(&r.prints_by_incident())).await?)
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
        let (counts, target) = self.db.run(move |s| s.merge_incident(id, into)).await?;
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
/// for this pass). Holds only a weak handle: it ends with the services.
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
    });
}

fn round3(x: f64) -> f64 {
    ((x * 1000.0).round() / 1000.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_services_versions_and_addresses_whole() {
        let t: Vec<String> =
            tokens("checkout-api 503 after v2.41.0 from 10.0.3.7, the OOM.").collect();
        assert_eq!(t, ["checkout-api", "503", "v2.41.0", "10.0.3.7", "oom"]);
        assert_eq!(
            services("Checkout-API latency; payments-worker backlog; post-deploy"),
            HashSet::from(["checkout-api".to_string(), "payments-worker".to_string()])
        );
    }

    #[test]
    fn flat_and_shifted_images_compare_sensibly() {
        let a: Vec<u8> = (0..1024).map(|i| (i % 32 * 8) as u8).collect();
        let brighter: Vec<u8> = a.iter().map(|x| x / 2 + 60).collect();
        let other: Vec<u8> = (0..1024).map(|i| (i / 32 * 8) as u8).collect();
        assert!(image_similarity(&a, &brighter) > 0.99);
        assert!(image_similarity(&a, &other) < 0.1);
        assert!(image_similarity(&[10; 1024], &[10; 1024]) > 0.99);
        assert_eq!(image_similarity(&[10; 1024], &a), 0.0);
        assert_eq!(image_part(0.5), 0.0);
        assert!(image_part(0.99) > 0.85);
    }
}
