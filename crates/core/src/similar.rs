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
//! [`IMAGE_FLOOR`] the image part adds nothing.
//!
//! Where the analysis model is loaded, each analysed screenshot also has a vision-tower
//! embedding (the mean-pooled merger output, stored once per blob and model): two screens
//! that show the same thing in a different layout, size or colour scheme are close there
//! while their fingerprints are not. Only vectors of the same model are compared (cosine);
//! below [`EMBED_FLOOR`] they add nothing, and the image part of the score is the stronger of
//! the two signals.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use opslens_domain::{DuplicateHint, ImageMatch, SimilarHit};
use opslens_store::{CorpusIncident, ShotEmbedding, ShotPrint};

pub use crate::upload::THUMB_SIDE;
/// Incidents the ranking compares against (the newest ones).
pub const CORPUS: u32 = 5000;
/// Image similarity under which screenshots count for nothing (template look-alikes).
pub const IMAGE_FLOOR: f64 = 0.8;
/// Image similarity from which two screenshots are the same screen (a duplicate).
pub const NEAR_IDENTICAL: f64 = 0.97;
/// Embedding cosine under which two screenshots count for nothing: mean-pooled vision
/// features of any two screens share a large common part, so only the top of the scale says
/// "the same kind of screen".
pub const EMBED_FLOOR: f64 = 0.9;
/// Hits below this blended score are noise.
pub(crate) const MIN_SCORE: f64 = 0.05;
/// Most hits returned.
pub const MAX_LIMIT: u32 = 50;
/// Fingerprints computed per request for images stored before fingerprints existed.
pub(crate) const BACKFILL_PER_CALL: u32 = 256;

pub use crate::upload::fingerprint;

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
pub(crate) fn image_part(sim: f64) -> f64 {
    (((sim - IMAGE_FLOOR) / (1.0 - IMAGE_FLOOR)).clamp(0.0, 1.0)).powi(2)
}

/// The part of the score a vision-embedding cosine adds: nothing below [`EMBED_FLOOR`],
/// rising steeply to 1 for the same screen.
pub(crate) fn embed_part(cos: f64) -> f64 {
    (((cos - EMBED_FLOOR) / (1.0 - EMBED_FLOOR)).clamp(0.0, 1.0)).powi(2)
}

/// The screenshots of two incidents closest by vision embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EmbedMatch {
    pub(crate) evidence_id: i64,
    pub(crate) other_evidence_id: i64,
    pub(crate) cosine: f64,
}

pub(crate) fn embeds_by_incident(embeds: &[ShotEmbedding]) -> HashMap<i64, Vec<&ShotEmbedding>> {
    let mut m: HashMap<i64, Vec<&ShotEmbedding>> = HashMap::new();
    for e in embeds {
        m.entry(e.incident_id).or_default().push(e);
    }
    m
}

/// Best screenshot pair between incidents `a` and `b` by vision embedding, comparing only
/// vectors of one model.
pub(crate) fn best_embed_pair(
    embeds: &HashMap<i64, Vec<&ShotEmbedding>>,
    a: i64,
    b: i64,
) -> Option<EmbedMatch> {
    let (ea, eb) = (embeds.get(&a)?, embeds.get(&b)?);
    let mut best: Option<EmbedMatch> = None;
    for x in ea {
        for y in eb.iter().filter(|y| y.model == x.model) {
            let Some(c) = opslens_vlm::embed::cosine(&x.vector, &y.vector) else {
                continue;
            };
            if best.is_none_or(|m| c > m.cosine) {
                best = Some(EmbedMatch {
                    evidence_id: x.evidence_id,
                    other_evidence_id: y.evidence_id,
                    cosine: c,
                });
            }
        }
    }
    best
}

pub(crate) const STOP: &[&str] = &[
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
        .filter(|t| meaningful_number(t))
        // File names of screenshots say nothing about the incident.
        .filter(|t| {
            ![".png", ".jpg", ".jpeg", ".webp"]
                .iter()
                .any(|e| t.ends_with(e))
        })
}

/// Numbers worth matching: status codes and ports (3–4 digits), versions and addresses
/// (`2.41.0`, `v2.41.0`, `10.0.3.7`); not times, dates or ids, which differ in every incident
/// (`2026-11-30t07`, `00.000000z`, `17`, `483920`).
pub(crate) fn meaningful_number(t: &str) -> bool {
    let digits = t.chars().filter(char::is_ascii_digit).count();
    if digits == 0 {
        return true;
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return (3..=4).contains(&t.len());
    }
    let dotted = t.strip_prefix('v').unwrap_or(t);
    if dotted.contains('.') && dotted.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return true;
    }
    digits * 2 <= t.len()
}

pub(crate) const SERVICE_PARTS: &[&str] = &[
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

/// Term vectors of incidents, kept between rankings: an incident's text is read and tokenised
/// again only when it or its evidence changed (its `stamp`), so a ranking over thousands of
/// incidents costs a pass over cached vectors, not over their logs. Terms are interned as
/// numbers; vectors are sorted by term, so a cosine is a merge of two short lists.
#[derive(Clone, Default)]
pub struct DocCache(pub(crate) Arc<Mutex<CacheInner>>);

impl std::fmt::Debug for DocCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|c| c.docs.len()).unwrap_or(0);
        f.debug_struct("DocCache").field("docs", &n).finish()
    }
}

#[derive(Default)]
pub(crate) struct CacheInner {
    pub(crate) ids: HashMap<String, u32>,
    pub(crate) words: Vec<String>,
    pub(crate) docs: HashMap<i64, Arc<RawDoc>>,
    /// The open incidents' vectors for the duplicate hint (title and description only, no
    /// evidence), stamped by a hash of that text: `GET /incidents/{id}` ranks against every
    /// open incident, and must not tokenise them all again on every read.
    pub(crate) open_docs: HashMap<i64, Arc<RawDoc>>,
}

/// An incident's counted terms, before idf.
pub(crate) struct RawDoc {
    pub(crate) stamp: String,
    /// (term, 1 + ln(weighted count)), sorted by term.
    pub(crate) tf: Vec<(u32, f64)>,
    pub(crate) services: HashSet<String>,
    pub(crate) title_words: HashSet<String>,
}

impl CacheInner {
    fn intern(&mut self, t: String) -> u32 {
        if let Some(&id) = self.ids.get(&t) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(t.clone());
        self.ids.insert(t, id);
        id
    }

    fn raw(&mut self, inc: &CorpusIncident, texts: &[String]) -> RawDoc {
        let mut counts: HashMap<u32, f64> = HashMap::new();
        let mut add = |me: &mut Self, text: &str, w: f64| {
            for t in tokens(text) {
                *counts.entry(me.intern(t)).or_default() += w;
            }
        };
        add(self, &inc.title, 3.0);
        add(self, &inc.description, 1.0);
        for t in texts {
            add(self, t, 1.0);
        }
        let services = services(&format!("{} {}", inc.title, inc.description));
        for s in &services {
            *counts.entry(self.intern(s.clone())).or_default() += 2.0;
        }
        let mut tf: Vec<(u32, f64)> = counts.into_iter().map(|(t, c)| (t, 1.0 + c.ln())).collect();
        tf.sort_unstable_by_key(|x| x.0);
        RawDoc {
            stamp: inc.stamp.clone(),
            tf,
            services,
            title_words: tokens(&inc.title)
                .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
                .collect(),
        }
    }
}

/// Unit-length tf-idf vectors of `raws`, idf taken over `raws` themselves.
pub(crate) fn weigh(raws: &[&RawDoc]) -> Vec<Vec<(u32, f64)>> {
    let n = raws.len() as f64;
    let mut df: HashMap<u32, f64> = HashMap::new();
    for d in raws {
        for (t, _) in &d.tf {
            *df.entry(*t).or_default() += 1.0;
        }
    }
    raws.iter()
        .map(|d| {
            let mut v: Vec<(u32, f64)> =
                d.tf.iter()
                    .map(|&(t, w)| (t, w * (1.0 + n / df[&t]).ln()))
                    .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            if norm > 0.0 {
                for (_, w) in &mut v {
                    *w /= norm;
                }
            }
            v
        })
        .collect()
}

/// Cosine of two unit vectors (sorted by term) and the terms that weighed most in it.
pub(crate) fn cosine(a: &[(u32, f64)], b: &[(u32, f64)]) -> (f64, Vec<u32>) {
    let (mut i, mut j) = (0, 0);
    let mut shared: Vec<(f64, u32)> = Vec::new();
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared.push((a[i].1 * b[j].1, a[i].0));
                i += 1;
                j += 1;
            }
        }
    }
    let sum = shared.iter().map(|(p, _)| p).sum::<f64>();
    shared.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let top = shared.into_iter().take(6).map(|(_, t)| t).collect();
    (sum.clamp(0.0, 1.0), top)
}

pub(crate) fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let inter = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    if union == 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Best screenshot pair between incidents `a` and `b`.
pub(crate) fn best_pair(
    prints: &HashMap<i64, Vec<&ShotPrint>>,
    a: i64,
    b: i64,
) -> Option<ImageMatch> {
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

pub(crate) fn is_open(i: &CorpusIncident) -> bool {
    !i.status.is_finished()
}

/// Rule for "probably the same incident": the older open incident `other` names the same
/// service and alert (title) within the hour, or has a near-identical screenshot.
pub(crate) fn duplicate_reason(
    me: &CorpusIncident,
    my_doc: &RawDoc,
    other: &CorpusIncident,
    other_doc: &RawDoc,
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

/// What one ranking computes from the corpus.
pub(crate) struct Ranked {
    pub(crate) duplicate: Option<DuplicateHint>,
    pub(crate) hits: Vec<SimilarHit>,
}

pub(crate) fn prints_by_incident(prints: &[ShotPrint]) -> HashMap<i64, Vec<&ShotPrint>> {
    let mut m: HashMap<i64, Vec<&ShotPrint>> = HashMap::new();
    for p in prints {
        m.entry(p.incident_id).or_default().push(p);
    }
    m
}

/// Ranks `corpus` against incident `id` (which it contains); `texts` are the evidence texts
/// of the incidents whose cached vectors are stale; `prints` and `embeds` the screenshots'
/// fingerprints and vision embeddings. `keep`: the corpus is the past-incidents one, with
/// evidence texts and the store's stamps; else it is the open incidents of the duplicate
/// hint (titles and descriptions, stamped here). Both kinds of vector are cached. Blocking.
#[allow(clippy::too_many_arguments)] // the inputs of one ranking, each read separately
pub(crate) fn rank(
    cache: &DocCache,
    id: i64,
    corpus: &[CorpusIncident],
    texts: &HashMap<i64, Vec<String>>,
    prints: &[ShotPrint],
    embeds: &[ShotEmbedding],
    limit: usize,
    keep: bool,
) -> Ranked {
    // The lock is held only to look up and build vectors (interning terms), not for the
    // scoring below: concurrent reads of incidents then rank side by side.
    let raws: Vec<Arc<RawDoc>> = {
        let mut c = cache.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut raws = Vec::with_capacity(corpus.len());
        for inc in corpus {
            let stamp = if keep {
                inc.stamp.clone()
            } else {
                open_stamp(inc)
            };
            let map = if keep { &c.docs } else { &c.open_docs };
            let cached = map.get(&inc.id).filter(|d| d.stamp == stamp).cloned();
            let doc = match cached {
                Some(d) => d,
                None => {
                    let t = texts.get(&inc.id).map(Vec::as_slice).unwrap_or(&[]);
                    let mut d = c.raw(inc, t);
                    d.stamp = stamp;
                    let d = Arc::new(d);
                    let map = if keep { &mut c.docs } else { &mut c.open_docs };
                    map.insert(inc.id, d.clone());
                    d
                }
            };
            raws.push(doc);
        }
        let map = if keep { &mut c.docs } else { &mut c.open_docs };
        if map.len() > corpus.len() * 2 {
            let live: HashSet<i64> = corpus.iter().map(|x| x.id).collect();
            map.retain(|k, _| live.contains(k));
        }
        raws
    };
    let raws: Vec<&RawDoc> = raws.iter().map(|d| d.as_ref()).collect();
    let vecs = weigh(&raws);
    let me = corpus
        .iter()
        .position(|x| x.id == id)
        .expect("corpus holds the incident");
    let prints = prints_by_incident(prints);
    let embeds = embeds_by_incident(embeds);
    let mine = &vecs[me];
    let my_raw = raws[me];
    let mut hits = Vec::new();
    let mut dup: Option<(u8, f64, usize, String)> = None;
    for (i, other) in corpus.iter().enumerate() {
        if i == me {
            continue;
        }
        let (text, shared) = cosine(mine, &vecs[i]);
        let image = best_pair(&prints, id, other.id);
        if let Some((rank, reason)) =
            duplicate_reason(&corpus[me], my_raw, other, raws[i], image.as_ref())
        {
            let strength = image.as_ref().map_or(0.0, |m| m.similarity) + text;
            if dup.as_ref().is_none_or(|b| (rank, strength) > (b.0, b.1)) {
                dup = Some((rank, strength, i, reason));
            }
        }
        let seen = best_embed_pair(&embeds, id, other.id);
        let img = image
            .as_ref()
            .map_or(0.0, |m| image_part(m.similarity))
            .max(seen.map_or(0.0, |m| embed_part(m.cosine)));
        let service = my_raw
            .services
            .intersection(&raws[i].services)
            .min()
            .cloned();
        let score = (0.55 * text + 0.45 * img + if service.is_some() { 0.1 } else { 0.0 }).min(1.0);
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
        if let Some(m) = seen.filter(|m| m.cosine >= EMBED_FLOOR) {
            reasons.push(format!(
                "screenshot {}% alike to #{}'s to the vision model",
                (m.cosine * 100.0).floor() as i64,
                other.id
            ));
        }
        if let Some(s) = &service {
            reasons.push(format!("same service {s}"));
        }
        hits.push((
            shared,
            SimilarHit {
                incident_id: other.id,
                title: other.title.clone(),
                status: other.status,
                severity: other.severity,
                created_at: other.created_at,
                score: round3(score),
                text_score: round3(text),
                image_score: image.as_ref().map(|m| round3(m.similarity)),
                shared_terms: Vec::new(),
                same_service: service,
                image_match: image,
                reasons,
                has_postmortem: false,
                actions: Vec::new(),
                link: format!("#/incident/{}", other.id),
                postmortem_link: format!("#/incident/{}/postmortem", other.id),
            },
        ));
    }
    hits.sort_by(|(_, a), (_, b)| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.created_at.cmp(&a.created_at))
    });
    hits.truncate(limit);
    // The shared terms' words, for the hits kept only.
    let hits: Vec<SimilarHit> = if hits.is_empty() {
        Vec::new()
    } else {
        let c = cache.0.lock().unwrap_or_else(|p| p.into_inner());
        hits.into_iter()
            .map(|(shared, mut h)| {
                h.shared_terms = shared
                    .iter()
                    .map(|&t| c.words[t as usize].clone())
                    .collect();
                if !h.shared_terms.is_empty() {
                    h.reasons
                        .push(format!("shares: {}", h.shared_terms.join(", ")));
                }
                h
            })
            .collect()
    };
    let duplicate = if is_open(&corpus[me]) {
        dup.map(|(_, _, i, reason)| DuplicateHint {
            incident_id: corpus[i].id,
            title: corpus[i].title.clone(),
            reason,
        })
    } else {
        None
    };
    Ranked { duplicate, hits }
}

/// The duplicate hint's stamp of an open incident: its vector holds only the title and the
/// description, so a hash of those says when it must be built again.
fn open_stamp(inc: &CorpusIncident) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&inc.title, &inc.description).hash(&mut h);
    format!("{:016x}", h.finish())
}

pub(crate) fn round3(x: f64) -> f64 {
    ((x * 1000.0).round() / 1000.0).max(0.0)
}

#[cfg(test)]
mod tests;
