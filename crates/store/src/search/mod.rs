//! Full-text search over every entry of every incident (FTS5), bounded so a common word
//! costs what a rare one does.
//!
//! The index (`search_fts`, migration 0013) holds one row per entry, kept in step by triggers
//! that note each new entry and by [`index_pending`], which indexes the noted entries in bulk:
//! once [`INDEX_BATCH`] are waiting (by the core's write thread after it has answered a batch,
//! otherwise within a batch's commit; see [`INDEX_BACKSTOP`]), before any search, and when the
//! writes pause (migration 0016); its rowids follow time. A query runs in three steps:
//!
//! 1. **Candidates:** the newest [`WINDOW`] entries that match, read in rowid order from the
//!    FTS5 doclists — FTS5 walks them lazily, so this costs the same for `error` (hundreds of
//!    thousands of matches) as for a word that occurs twice. Kind, status and severity are
//!    columns of the index, so those filters are part of the match; a time range narrows the
//!    match to the months it spans, then the incident's exact time is checked over at most
//!    the newest [`FILTER_SCAN`] matches. A prefix longer than [`INDEXED_PREFIX`] would make
//!    FTS5 merge the whole list of every word it begins before reading any of it; it is
//!    matched by its indexed start instead (one list, read lazily) and checked on the text
//!    (see [`ParsedQuery::widened`]).
//! 2. **Ranking:** BM25 (title weighted over body, `k1 = 1.2`, `b = 0.75`) computed here over
//!    the candidates' text, with each term's document frequency counted up to [`DF_CAP`] (a
//!    term found more often than that is "common" and weighs as if found [`DF_CAP`] times).
//!    FTS5's own `bm25()` cannot be used: before ranking anything it counts every row of every
//!    term, which is what made common words take 400 ms.
//! 3. **Snippets:** the best hits' text is cut around the first match and marked, with the
//!    same token rules as the index, so `v2.41.0` is marked whole and a bare `07` never matches
//!    inside `14:07:32`.
//!
//! When more entries match than [`WINDOW`], the answer says so (`complete: false`): the best
//! of the newest matches are shown.
//!
//! Laid out as: `query` (the token rules, what a query means, its FTS5 expression), `rank`
//! (BM25 and the phrases' weights), `snippet` (cutting and marking), and here the steps that
//! read the index.

mod query;
mod rank;
mod snippet;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use opslens_domain::{
    IncidentStatus, SearchGroup, SearchHit, SearchKind, SearchResults, Severity, Timestamp,
};
use rusqlite::params_from_iter;

use crate::row::{parse_ts, ts};
use crate::{Result, SqliteStore};
use query::token_count;
pub use query::{
    parse_query, ParsedQuery, Phrase, QueryError, MAX_QUERY_CHARS, MAX_TERMS, MIN_PREFIX_CHARS,
};
pub(crate) use rank::phrase_idf;
use rank::{phrase_weights, score};
use snippet::{display_title, snippet};

/// Newest matching entries ranked per query.
pub const WINDOW: u32 = 400;
/// With an incident filter, matches looked at (newest first) to find [`WINDOW`] that pass it.
pub const FILTER_SCAN: u32 = 20_000;
/// Newest entries a prefix query looks in first (see [`Store::search`]).
pub const PREFIX_SLICE: i64 = 50_000;
/// Matches counted per term for its weight; above this a term is treated as common.
pub const DF_CAP: u32 = 2_000;
/// Body text looked at per entry for ranking and snippets.
pub(crate) const BODY_CHARS: i64 = 20_000;

/// What to search and where.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// As typed.
    pub q: String,
    /// Only these kinds (all when empty).
    pub kinds: Vec<SearchKind>,
    /// Only incidents with this status.
    pub status: Option<IncidentStatus>,
    /// Only incidents with this severity.
    pub severity: Option<Severity>,
    /// Only incidents opened at or after this time.
    pub from: Option<Timestamp>,
    /// Only incidents opened before this time.
    pub to: Option<Timestamp>,
    /// Most hits.
    pub limit: u32,
}

/// A candidate entry read back for ranking.
pub(crate) struct Doc {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) ref_id: i64,
    pub(crate) incident_id: i64,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) at: String,
}

impl SqliteStore {
    /// Indexes the entries noted but not yet indexed, if any: those the last commits left
    /// waiting (fewer than [`INDEX_BATCH`]) and those a write made past this store's writer
    /// (another process's connection, the `sqlite3` shell). Searches call it first, so they
    /// never miss a committed entry; it costs one lookup when there are none.
    pub(crate) fn index_noted(&self) -> Result<()> {
        let behind = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT EXISTS(SELECT 1 FROM search_pending)")?
                    .query_row([], |r| r.get::<_, bool>(0))?,
            )
        })?;
        if behind {
            self.write(|tx| index_pending(tx))?;
        }
        Ok(())
    }

    /// Best matches for `req` across every kind of entry, best first and grouped by incident.
    /// Fails with [`crate::StoreError::Conflict`] never; a bad query is refused by
    /// [`parse_query`] before it gets here (callers parse first to answer 4xx).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        let parsed = match parse_query(&req.q) {
            Ok(p) => p,
            Err(e) => return Err(crate::StoreError::Conflict(e.to_string())),
        };
        let limit = req.limit.clamp(1, 200) as usize;
        self.index_noted()?;
        self.read(|c| {
            let mut parsed = parsed;
            let fts = parsed.fts_for(req);
            // Status and severity are part of the match; time bounds are checked exactly on
            // the incident (its months already narrowed the match).
            let filtered = req.from.is_some() || req.to.is_some();
            let total: i64 = c
                .prepare_cached("SELECT coalesce(max(id), 0) FROM search_doc")?
                .query_row([], |r| r.get(0))?;
            // The exact query of a prefix merges the lists of every word it begins (in full:
            // SQLite 3.50's FTS5 reads them whole before it applies a rowid bound), then looks
            // in the newest slice first and in the rest only when that holds too few matches.
            // Long prefixes avoid that merge when they can (`verified_candidates`).
            let prefixed = parsed.phrases.iter().any(|p| p.prefix);
            let slices: &[i64] = if prefixed && total > PREFIX_SLICE {
                &[total - PREFIX_SLICE, 0]
            } else {
                &[0]
            };
            let mut ids: Vec<i64> = Vec::new();
            // Bare words as whole words first: a common word ("error") fills the window from
            // its own list, read lazily, without merging every word it begins.
            let whole = ParsedQuery {
                phrases: parsed
                    .phrases
                    .iter()
                    .map(|p| Phrase {
                        prefix: p.prefix && !p.bare,
                        ..p.clone()
                    })
                    .collect(),
            };
            let mut slices = slices;
            if whole != parsed && !whole.phrases.iter().any(|p| p.prefix) {
                let whole_fts = whole.fts_for(req);
                ids = candidates(c, req, &whole_fts, 0, filtered)?;
                // Enough whole-word matches, or no longer word in the index that a bare word
                // begins: the whole-word answer is the answer.
                if ids.len() as u32 >= WINDOW || !longer_words(c, &parsed)? {
                    parsed = whole;
                    slices = &[];
                }
            }
            // A prefix longer than the index's prefix indexes would merge, in memory, the whole
            // list of every word it begins (FTS5 does that before it looks at any rowid
            // bound): read the shorter indexed prefix's one list lazily instead, newest first,
            // and keep the entries whose text has the whole prefix.
            if !slices.is_empty() && !filtered {
                if let Some(wide) = parsed.widened(INDEXED_PREFIX) {
                    if let Some(found) = verified_candidates(c, &parsed, &wide.fts_for(req))? {
                        ids = found;
                        slices = &[];
                    }
                }
            }
            for &lo in slices {
                ids = candidates(c, req, &fts, lo, filtered)?;
                if ids.len() as u32 >= WINDOW {
                    break;
                }
            }
            let complete = (ids.len() as u32) < WINDOW;
            let ranked = ids.len() as u32;
            if ids.is_empty() {
                return Ok(SearchResults {
                    query: req.q.clone(),
                    hits: Vec::new(),
                    groups: Vec::new(),
                    complete: true,
                    ranked: 0,
                });
            }
            let idf = phrase_weights(c, &parsed, total, INDEXED_PREFIX)?;
            let docs = load_docs(c, &ids)?;
            let hits = ranked_hits(&docs, &parsed, &idf, limit);
            let groups = group(c, &hits)?;
            Ok(SearchResults {
                query: req.q.clone(),
                hits,
                groups,
                complete,
                ranked,
            })
        })
    }
}

/// The best `limit` of `docs` (every one a match of `parsed`) as hits, best first: BM25 over
/// their text with the phrases' weights `idf`, snippets marked by the index's token rules.
/// Both backends rank and cut with this, so the same entries rank and read the same.
pub(crate) fn ranked_hits(
    docs: &[Doc],
    parsed: &ParsedQuery,
    idf: &[f64],
    limit: usize,
) -> Vec<SearchHit> {
    let avg = {
        let lens: usize = docs
            .iter()
            .map(|d| token_count(&d.title) + token_count(&d.body))
            .sum();
        (lens as f64 / docs.len().max(1) as f64).max(1.0)
    };
    let mut scored: Vec<(f64, &Doc)> = docs
        .iter()
        .map(|d| (score(d, parsed, idf, avg), d))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
    scored.truncate(limit);
    scored
        .iter()
        .filter_map(|(s, d)| {
            Some(SearchHit {
                kind: d.kind.parse().ok()?,
                id: d.ref_id,
                incident_id: d.incident_id,
                title: display_title(d),
                snippet: snippet(d, parsed),
                at: parse_ts(&d.at).ok()?,
                score: (s * 1000.0).round() / 1000.0,
            })
        })
        .collect()
}

/// Whether the index holds a word longer than one of the bare words of `q` that it begins
/// (`timeout` for `time`), from the index's vocabulary: one term looked at per word.
pub(super) fn longer_words(c: &rusqlite::Connection, q: &ParsedQuery) -> Result<bool> {
    c.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_vocab USING fts5vocab(main, 'search_fts', 'row')",
    )?;
    let mut st =
        c.prepare_cached("SELECT 1 FROM temp.search_vocab WHERE term > ?1 AND term < ?2 LIMIT 1")?;
    for p in q.phrases.iter().filter(|p| p.bare) {
        let Some(w) = p.tokens.last() else { continue };
        let upper = format!("{w}\u{10FFFF}");
        if st.exists(rusqlite::params![w, upper])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Longest prefix with its own prefix index in `search_fts` (migration 0013: `prefix = '2 3'`):
/// a prefix of this length or shorter is one list, read lazily like a word.
pub const INDEXED_PREFIX: usize = 3;
/// Entries read per step when checking a widened prefix's matches on their text: a small
/// first step, so a prefix that is rare under its start (`w20000` under `w20`) costs little
/// before the exact query takes over.
const VERIFY_BATCHES: [u32; 3] = [200, 800, 3_000];
/// Matches of a widened prefix looked at, at most, before giving up on it.
pub const VERIFY_SCAN: usize = 4_000;
const _: () =
    assert!((VERIFY_BATCHES[0] + VERIFY_BATCHES[1] + VERIFY_BATCHES[2]) as usize == VERIFY_SCAN);
/// Fewer than one in this many checked entries having the whole prefix: it is rare among the
/// words its start begins, so its own lists are short and the exact query (which merges
/// them) is the cheaper one.
const VERIFY_MIN_YIELD: usize = 8;

/// The newest [`WINDOW`] entries matching `parsed`, found through `wide_fts` (the same query
/// with long prefixes cut to [`INDEXED_PREFIX`] characters, a superset read lazily, newest
/// first) and checked on their text. `None` when [`VERIFY_SCAN`] entries were looked at
/// without filling the window, or too few of them had the whole prefix: the caller then runs
/// the exact query.
fn verified_candidates(
    c: &rusqlite::Connection,
    parsed: &ParsedQuery,
    wide_fts: &str,
) -> Result<Option<Vec<i64>>> {
    let mut st = c.prepare_cached(
        "SELECT rowid FROM search_fts WHERE search_fts MATCH ?1 AND rowid < ?2
         ORDER BY rowid DESC LIMIT ?3",
    )?;
    let mut text = c.prepare_cached(
        "SELECT d.id, d.title, d.body FROM search_doc d
         WHERE d.id IN (SELECT value FROM json_each(?1))",
    )?;
    let mut ids = Vec::new();
    let mut below = i64::MAX;
    let mut scanned = 0;
    for step in VERIFY_BATCHES {
        let batch: Vec<i64> = st
            .query_map(rusqlite::params![wide_fts, below, step], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&last) = batch.last() else {
            return Ok(Some(ids));
        };
        scanned += batch.len();
        below = last;
        let list = serde_json::to_string(&batch).expect("ids serialize");
        let mut hit: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for row in text.query_map([list], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })? {
            let (id, title, body) = row?;
            if parsed.matches_text(&title, &body) {
                hit.insert(id);
            }
        }
        for id in batch.iter().filter(|i| hit.contains(i)) {
            ids.push(*id);
            if ids.len() as u32 >= WINDOW {
                return Ok(Some(ids));
            }
        }
        if (batch.len() as u32) < step {
            return Ok(Some(ids));
        }
        if ids.len() * VERIFY_MIN_YIELD < scanned {
            return Ok(None);
        }
    }
    Ok(None)
}

/// The newest [`WINDOW`] matches above rowid `lo` that pass the incident filters.
pub(super) fn candidates(
    c: &rusqlite::Connection,
    req: &SearchRequest,
    fts: &str,
    lo: i64,
    filtered: bool,
) -> Result<Vec<i64>> {
    if !filtered {
        let mut st = c.prepare_cached(&format!(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ?1 AND rowid > ?2
             ORDER BY rowid DESC LIMIT {WINDOW}"
        ))?;
        let ids = st
            .query_map(rusqlite::params![fts, lo], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        return Ok(ids);
    }
    let mut wheres = Vec::new();
    let mut args: Vec<String> = vec![fts.to_string(), lo.to_string()];
    if let Some(t) = req.from {
        wheres.push("i.created_at >= ?");
        args.push(ts(&t));
    }
    if let Some(t) = req.to {
        wheres.push("i.created_at < ?");
        args.push(ts(&t));
    }
    let sql = format!(
        "SELECT m.id FROM (SELECT rowid AS id FROM search_fts
                           WHERE search_fts MATCH ? AND rowid > CAST(? AS INTEGER)
                           ORDER BY rowid DESC LIMIT {FILTER_SCAN}) m
         CROSS JOIN search_doc d ON d.id = m.id
         CROSS JOIN incident i ON i.id = d.incident_id
         WHERE {} ORDER BY m.id DESC LIMIT {WINDOW}",
        wheres.join(" AND ")
    );
    let mut st = c.prepare_cached(&sql)?;
    let ids = st
        .query_map(params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub(super) fn load_docs(c: &rusqlite::Connection, ids: &[i64]) -> Result<Vec<Doc>> {
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut st = c.prepare(&format!(
        "SELECT id, kind, ref_id, incident_id, title, substr(body, 1, {BODY_CHARS}), at
         FROM search_doc WHERE id IN ({list})"
    ))?;
    let docs = st
        .query_map([], |r| {
            Ok(Doc {
                id: r.get(0)?,
                kind: r.get(1)?,
                ref_id: r.get(2)?,
                incident_id: r.get(3)?,
                title: r.get(4)?,
                body: r.get(5)?,
                at: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(docs)
}

/// The hits by incident, the incident of the best hit first, with the incident's state now.
pub(super) fn group(c: &rusqlite::Connection, hits: &[SearchHit]) -> Result<Vec<SearchGroup>> {
    let mut order: Vec<i64> = Vec::new();
    let mut by: HashMap<i64, Vec<SearchHit>> = HashMap::new();
    for h in hits {
        if !by.contains_key(&h.incident_id) {
            order.push(h.incident_id);
        }
        by.entry(h.incident_id).or_default().push(h.clone());
    }
    let mut st =
        c.prepare_cached("SELECT title, status, severity, created_at FROM incident WHERE id = ?1")?;
    let mut groups = Vec::with_capacity(order.len());
    for id in order {
        let row = st.query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        });
        let Ok((title, status, severity, created)) = row else {
            continue;
        };
        let (Ok(status), Ok(severity), Ok(created_at)) =
            (status.parse(), severity.parse(), parse_ts(&created))
        else {
            continue;
        };
        groups.push(SearchGroup {
            incident_id: id,
            title,
            status,
            severity,
            created_at,
            hits: by.remove(&id).unwrap_or_default(),
        });
    }
    Ok(groups)
}

/// The FTS5 expression for `IncidentFilter::q` (incidents whose entries match), `None` when
/// the text has no words.
pub(crate) fn fts_query(input: &str) -> Option<String> {
    parse_query(input).ok().map(|p| p.fts(&[]))
}

/// Noted entries a commit leaves waiting before it indexes them all.
///
/// FTS5 writes what a statement indexed out as a new segment when the transaction commits,
/// and merges segments as they pile up: under load that flush and merge, once per batch of a
/// few writes, was about a quarter of the write thread's time. Waiting for a few hundred
/// entries makes one larger segment instead of dozens of small ones. Nothing is missed
/// meanwhile: every search indexes what is waiting first ([`SqliteStore::index_noted`]), and the
/// core's write thread does the same when writes pause.
pub(crate) const INDEX_BATCH: i64 = 256;

/// Where a commit of the core's write thread indexes the noted entries itself: that thread
/// indexes them at [`INDEX_BATCH`] after answering its batch (see [`pending_span`]), so its
/// commits only back it up.
pub(crate) const INDEX_BACKSTOP: i64 = 4 * INDEX_BATCH;

/// At a batch's commit: indexes the noted entries once `at_least` may be waiting.
pub(crate) fn index_pending_if_many(c: &rusqlite::Connection, at_least: i64) -> Result<()> {
    if pending_span(c)? < at_least {
        return Ok(());
    }
    index_pending(c)
}

/// At least how many entries wait to be indexed.
///
/// Measured by the span of their ids (two b-tree lookups), not by counting them: counting
/// even a few hundred rows at every commit cost a quarter of what it saved. The span is at
/// least the count, so entries never wait longer than intended (re-noted old entries, after a
/// status change, only make the index take them sooner).
pub(crate) fn pending_span(c: &rusqlite::Connection) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT coalesce((SELECT max(doc_id) FROM search_pending)
                         - (SELECT min(doc_id) FROM search_pending) + 1, 0)",
    )?
    .query_row([], |r| r.get(0))?)
}

/// Indexes every noted entry in one statement, then forgets the notes. Called outside any
/// savepoint: FTS5 writes its pending terms out as a segment at every savepoint, so the
/// triggers only note entries (migration 0016) and the index takes them here in bulk. The
/// text comes cleaned from the `search_doc_indexed` view (a `.` or `:` that ends a word is
/// dropped).
pub(crate) fn index_pending(c: &rusqlite::Connection) -> Result<()> {
    let any: bool = c
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM search_pending)")?
        .query_row([], |r| r.get(0))?;
    if !any {
        return Ok(());
    }
    c.prepare_cached(
        "INSERT INTO search_fts(rowid, kind, status, severity, month, title, body)
         SELECT x.id, x.kind, x.status, x.severity, x.month, x.title, x.body
         FROM search_pending p JOIN search_doc_indexed x ON x.id = p.doc_id ORDER BY p.doc_id",
    )?
    .execute([])?;
    c.prepare_cached("DELETE FROM search_pending")?
        .execute([])?;
    Ok(())
}
