//! Full-text search over every entry of every incident (FTS5), bounded so a common word
//! costs what a rare one does.
//!
//! The index (`search_fts`, migration 0011) holds one row per entry, kept in step by triggers;
//! its rowids follow time. A query runs in three steps:
//!
//! 1. **Candidates:** the newest [`WINDOW`] entries that match, read in rowid order from the
//!    FTS5 doclists — FTS5 walks them lazily, so this costs the same for `error` (hundreds of
//!    thousands of matches) as for a word that occurs twice. Kind, status and severity are
//!    columns of the index, so those filters are part of the match; a time range narrows the
//!    match to the months it spans, then the incident's exact time is checked over at most
//!    the newest [`FILTER_SCAN`] matches.
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

use std::collections::HashMap;

use opslens_domain::{
    IncidentStatus, SearchGroup, SearchHit, SearchKind, SearchResults, Severity, Timestamp,
};
use rusqlite::params_from_iter;

use crate::row::{parse_ts, ts};
use crate::{Result, Store};

/// Newest matching entries ranked per query.
pub const WINDOW: u32 = 400;
/// With an incident filter, matches looked at (newest first) to find [`WINDOW`] that pass it.
pub const FILTER_SCAN: u32 = 20_000;
/// Newest entries a prefix query looks in first (see [`Store::search`]).
pub const PREFIX_SLICE: i64 = 50_000;
/// Matches counted per term for its weight; above this a term is treated as common.
pub const DF_CAP: u32 = 2_000;
/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most terms (words, phrase words) in a query.
pub const MAX_TERMS: usize = 32;
/// Shortest prefix before a `*`: shorter ones match too much of the vocabulary to be useful.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Characters kept inside tokens besides letters and digits, as the index's tokenizer does.
const TOKEN_CHARS: &[char] = &['.', '-', '_', ':', '/'];
/// Body text looked at per entry for ranking and snippets.
const BODY_CHARS: i64 = 20_000;
/// Title weight over body in the ranking.
const TITLE_WEIGHT: f64 = 3.0;

/// Why a query cannot be searched; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing but operators, quotes or punctuation.
    #[error("the query has no words to search for (got {0:?}); type at least one word")]
    NoWords(String),
    /// Too long to be a search.
    #[error("the query is {0} characters long; at most {MAX_QUERY_CHARS} are searched")]
    TooLong(usize),
    /// Too many words.
    #[error("the query has {0} words; at most {MAX_TERMS} are searched")]
    TooManyTerms(usize),
    /// A prefix that would match most of the vocabulary.
    #[error(
        "the prefix `{0}*` is too short; give at least {MIN_PREFIX_CHARS} characters before `*`"
    )]
    ShortPrefix(String),
}

/// A sequence of tokens that must appear next to each other (one word is a phrase of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    /// Lower-case tokens, as the index holds them.
    pub tokens: Vec<String>,
    /// Whether the last token is a prefix (`check*`).
    pub prefix: bool,
    /// A bare word, a prefix without a `*`: tried as the whole word first (see
    /// [`Store::search`]).
    pub bare: bool,
}

/// A parsed query: every phrase must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuery {
    /// The phrases, in the order typed.
    pub phrases: Vec<Phrase>,
}

/// Reads what a user typed: words (each also matching the longer words it begins),
/// `"quoted phrases"` (exact words, next to each other; `"…"*` lets the last one be longer).
/// Operators (`OR`, `NEAR(`,
/// `-`, `^`, parentheses) are not operators here but words or punctuation, so no input can
/// make an FTS5 syntax error.
pub fn parse_query(input: &str) -> Result<ParsedQuery, QueryError> {
    let chars = input.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong(chars));
    }
    let mut phrases: Vec<Phrase> = Vec::new();
    let mut in_quotes = false;
    let mut current: Vec<String> = Vec::new();
    let mut it = input.chars().peekable();
    let mut word = String::new();
    // Ends the word being read; `star` says a `*` followed it.
    fn end_word(word: &mut String, current: &mut Vec<String>) {
        let w = normalize(word);
        if w.chars().any(char::is_alphanumeric) {
            current.push(w);
        }
        word.clear();
    }
    while let Some(c) = it.next() {
        if is_token_char(c) {
            word.push(c);
            continue;
        }
        end_word(&mut word, &mut current);
        let star = c == '*';
        if c == '"' {
            if in_quotes {
                let prefix = it.peek() == Some(&'*');
                push_phrase(&mut phrases, std::mem::take(&mut current), prefix);
            } else {
                for t in std::mem::take(&mut current) {
                    push_word(&mut phrases, t, false);
                }
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            for t in std::mem::take(&mut current) {
                push_word(&mut phrases, t, star);
            }
        } else if star {
            // `"check* api"`: a star inside quotes marks nothing; FTS5 allows it only last.
        }
    }
    end_word(&mut word, &mut current);
    for t in current {
        push_word(&mut phrases, t, false);
    }
    if phrases.is_empty() {
        return Err(QueryError::NoWords(input.chars().take(40).collect()));
    }
    let terms: usize = phrases.iter().map(|p| p.tokens.len()).sum();
    if terms > MAX_TERMS {
        return Err(QueryError::TooManyTerms(terms));
    }
    if let Some(p) = phrases
        .iter()
        .find(|p| p.prefix && p.tokens.last().map_or(0, |t| t.chars().count()) < MIN_PREFIX_CHARS)
    {
        return Err(QueryError::ShortPrefix(
            p.tokens.last().cloned().unwrap_or_default(),
        ));
    }
    Ok(ParsedQuery { phrases })
}

/// A word outside quotes matches the words it begins (`exhaust` finds `exhaustion`), as the
/// search box always did, unless it is a single character; `star` says a `*` followed it (then
/// even a short one is a prefix, and [`parse_query`] refuses it).
fn push_word(phrases: &mut Vec<Phrase>, word: String, star: bool) {
    let bare = !star && word.chars().count() >= MIN_PREFIX_CHARS;
    let p = Phrase {
        tokens: vec![word],
        prefix: star || bare,
        bare,
    };
    if !phrases.contains(&p) {
        phrases.push(p);
    }
}

fn push_phrase(phrases: &mut Vec<Phrase>, tokens: Vec<String>, prefix: bool) {
    if tokens.is_empty() {
        return;
    }
    let p = Phrase {
        tokens,
        prefix,
        bare: false,
    };
    if !phrases.contains(&p) {
        phrases.push(p);
    }
}

/// Whether the index's tokenizer keeps `c` inside a token.
fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || TOKEN_CHARS.contains(&c)
}

/// A token as the index holds it: lower case, without the `.` or `:` that ends a sentence or a
/// label ("error." and "Error:" are `error`).
fn normalize(token: &str) -> String {
    token
        .trim_end_matches(['.', ':'])
        .chars()
        .flat_map(char::to_lowercase)
        .collect()
}

impl ParsedQuery {
    /// The FTS5 expression: every phrase quoted (so operators are literal), restricted to the
    /// text columns, and to `kinds` when given.
    pub fn fts(&self, kinds: &[SearchKind]) -> String {
        let text = self
            .phrases
            .iter()
            .map(phrase_fts)
            .collect::<Vec<_>>()
            .join(" ");
        let text = format!("{{title body}} : ({text})");
        if kinds.is_empty() {
            text
        } else {
            let ks = kinds
                .iter()
                .map(|k| format!("\"{}\"", k.as_str()))
                .collect::<Vec<_>>()
                .join(" OR ");
            format!("kind : ({ks}) AND {text}")
        }
    }
}

/// Longest time range (in months of opening) narrowed in the index; a longer one is checked
/// on the incident alone.
const MAX_MONTHS: usize = 36;

impl ParsedQuery {
    /// [`ParsedQuery::fts`] with the incident filters of `req` as column filters: status,
    /// severity, and the months a time range spans (the exact bounds are checked on the
    /// incident afterwards).
    pub fn fts_for(&self, req: &SearchRequest) -> String {
        let mut parts = Vec::new();
        if let Some(s) = req.status {
            parts.push(format!("status : \"{}\"", s.as_str()));
        }
        if let Some(s) = req.severity {
            parts.push(format!("severity : \"{}\"", s.as_str()));
        }
        if let Some(months) = months(req.from, req.to) {
            let ms = months
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(" OR ");
            parts.push(format!("month : ({ms})"));
        }
        parts.push(self.fts(&req.kinds));
        parts.join(" AND ")
    }
}

/// The months (`2026-11`) from `from` to `to` (now when open-ended), or `None` when there is
/// no lower bound or the span is too long to list.
fn months(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<Vec<String>> {
    use chrono::Datelike;
    let from = from?;
    let to = to.unwrap_or_else(chrono::Utc::now).max(from);
    let (mut y, mut m) = (from.year(), from.month());
    let mut out = Vec::new();
    while (y, m) <= (to.year(), to.month()) {
        if out.len() >= MAX_MONTHS {
            return None;
        }
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Some(out)
}

fn phrase_fts(p: &Phrase) -> String {
    // Tokens hold no `"` (not a token char), so quoting cannot be broken out of.
    format!(
        "\"{}\"{}",
        p.tokens.join(" "),
        if p.prefix { "*" } else { "" }
    )
}

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
struct Doc {
    id: i64,
    kind: String,
    ref_id: i64,
    incident_id: i64,
    title: String,
    body: String,
    at: String,
}

impl Store {
    /// Best matches for `req` across every kind of entry, best first and grouped by incident.
    /// Fails with [`crate::StoreError::Conflict`] never; a bad query is refused by
    /// [`parse_query`] before it gets here (callers parse first to answer 4xx).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        let parsed = match parse_query(&req.q) {
            Ok(p) => p,
            Err(e) => return Err(crate::StoreError::Conflict(e.to_string())),
        };
        let limit = req.limit.clamp(1, 200) as usize;
        self.read(|c| {
            let mut parsed = parsed;
            let fts = parsed.fts_for(req);
            // Status and severity are part of the match; time bounds are checked exactly on
            // the incident (its months already narrowed the match).
            let filtered = req.from.is_some() || req.to.is_some();
            let total: i64 = c
                .prepare_cached("SELECT coalesce(max(id), 0) FROM search_doc")?
                .query_row([], |r| r.get(0))?;
            // A prefix merges the lists of every word it begins; FTS5 honours a rowid bound
            // while merging, so the newest slice is tried first and the rest only when it
            // holds too few matches.
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
            // Weights of the phrases: rarer ones count more. All candidates hold every phrase,
            // so these only balance the phrases against each other.
            let mut idf = Vec::with_capacity(parsed.phrases.len());
            for p in &parsed.phrases {
                let one = ParsedQuery {
                    phrases: vec![p.clone()],
                };
                // A prefix is counted in the newest slice and scaled up (see above).
                let lo = if p.prefix && total > PREFIX_SLICE {
                    total - PREFIX_SLICE
                } else {
                    0
                };
                let seen: i64 = c
                    .prepare_cached(&format!(
                        "SELECT count(*) FROM (SELECT rowid FROM search_fts
                         WHERE search_fts MATCH ?1 AND rowid > ?2 LIMIT {DF_CAP})"
                    ))?
                    .query_row(rusqlite::params![one.fts(&[]), lo], |r| r.get(0))?;
                let df = seen as f64 * total as f64 / (total - lo).max(1) as f64;
                let n = (total as f64).max(df);
                let df = df.max(1.0);
                idf.push((1.0 + (n - df + 0.5) / (df + 0.5)).ln());
            }
            let docs = load_docs(c, &ids)?;
            let avg = {
                let lens: usize = docs
                    .iter()
                    .map(|d| token_count(&d.title) + token_count(&d.body))
                    .sum();
                (lens as f64 / docs.len() as f64).max(1.0)
            };
            let mut scored: Vec<(f64, &Doc)> = docs
                .iter()
                .map(|d| (score(d, &parsed, &idf, avg), d))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
            scored.truncate(limit);
            let hits: Vec<SearchHit> = scored
                .iter()
                .filter_map(|(s, d)| {
                    Some(SearchHit {
                        kind: d.kind.parse().ok()?,
                        id: d.ref_id,
                        incident_id: d.incident_id,
                        title: display_title(d),
                        snippet: snippet(d, &parsed),
                        at: parse_ts(&d.at).ok()?,
                        score: (s * 1000.0).round() / 1000.0,
                    })
                })
                .collect();
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

/// Whether the index holds a word longer than one of the bare words of `q` that it begins
/// (`timeout` for `time`), from the index's vocabulary: one term looked at per word.
fn longer_words(c: &rusqlite::Connection, q: &ParsedQuery) -> Result<bool> {
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

/// The newest [`WINDOW`] matches above rowid `lo` that pass the incident filters.
fn candidates(
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

fn load_docs(c: &rusqlite::Connection, ids: &[i64]) -> Result<Vec<Doc>> {
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
fn group(c: &rusqlite::Connection, hits: &[SearchHit]) -> Result<Vec<SearchGroup>> {
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

fn display_title(d: &Doc) -> String {
    if !d.title.trim().is_empty() {
        return d.title.clone();
    }
    match d.kind.as_str() {
        "note" => "Note",
        "status_update" => "Status update",
        "postmortem" => "Postmortem",
        "finding" => "Findings",
        _ => "Untitled",
    }
    .into()
}

/// A token of `text`: its byte range and its normalized form.
struct Token {
    start: usize,
    end: usize,
    norm: String,
}

/// Splits `text` as the index's tokenizer does (letters, digits and `.-_:/` make tokens).
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, is_token_char(c) && i < text.len()) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let raw = &text[s..i];
                let norm = normalize(raw);
                if !norm.is_empty() {
                    // The marked range leaves out a sentence's final `.` or `:`.
                    let end = s + raw.trim_end_matches(['.', ':']).len();
                    out.push(Token {
                        start: s,
                        end,
                        norm,
                    });
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn token_count(text: &str) -> usize {
    text.split(|c: char| !is_token_char(c))
        .filter(|w| !w.is_empty())
        .count()
}

fn token_matches(tok: &str, want: &str, prefix: bool) -> bool {
    if prefix {
        tok.starts_with(want)
    } else {
        tok == want
    }
}

/// Where `p` occurs in `toks`: (first token, last token) index pairs.
fn occurrences(toks: &[Token], p: &Phrase) -> Vec<(usize, usize)> {
    let n = p.tokens.len();
    if n == 0 || toks.len() < n {
        return Vec::new();
    }
    (0..=toks.len() - n)
        .filter(|&i| {
            p.tokens.iter().enumerate().all(|(j, want)| {
                let last = j + 1 == n;
                token_matches(&toks[i + j].norm, want, p.prefix && last)
            })
        })
        .map(|i| (i, i + n - 1))
        .collect()
}

/// BM25 with the title weighted over the body (BM25F-style: one pseudo-frequency per phrase).
fn score(d: &Doc, q: &ParsedQuery, idf: &[f64], avg: f64) -> f64 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let title = d.title.to_lowercase();
    let body = d.body.to_lowercase();
    let len = (token_count(&title) + token_count(&body)) as f64;
    let mut s = 0.0;
    for (p, w) in q.phrases.iter().zip(idf) {
        let tf = TITLE_WEIGHT * weighted_count(&title, p) + weighted_count(&body, p);
        s += w * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg));
    }
    // An incident's own title and description say most about it.
    if d.kind == "incident" {
        s *= 1.25;
    }
    s
}

/// Occurrences of `p`, a word that only begins with a prefix counting half of a whole match
/// (`timeout` before `timeouts` when searching `timeout`).
fn weighted_count(lower: &str, p: &Phrase) -> f64 {
    let all = count_phrase(lower, p) as f64;
    if !p.prefix {
        return all;
    }
    let exact = count_phrase(
        lower,
        &Phrase {
            tokens: p.tokens.clone(),
            prefix: false,
            bare: false,
        },
    ) as f64;
    exact + 0.5 * (all - exact)
}

/// How often `p` occurs in `lower` (lower-cased text), by the index's token rules, without
/// splitting the whole text into tokens: only the places where its first word occurs are
/// looked at.
fn count_phrase(lower: &str, p: &Phrase) -> usize {
    let Some(first) = p.tokens.first() else {
        return 0;
    };
    let n = p.tokens.len();
    lower
        .match_indices(first.as_str())
        .filter(|&(at, _)| {
            // Starts a token.
            if lower[..at].chars().next_back().is_some_and(is_token_char) {
                return false;
            }
            let mut pos = at;
            for (j, want) in p.tokens.iter().enumerate() {
                let prefix = p.prefix && j + 1 == n;
                if j > 0 {
                    // Skip the separators to the next token.
                    match lower[pos..].find(is_token_char) {
                        Some(i) => pos += i,
                        None => return false,
                    }
                }
                match token_at(lower, pos, want, prefix) {
                    Some(end) => pos = end,
                    None => return false,
                }
            }
            true
        })
        .count()
}

/// Whether the token starting at byte `pos` of `lower` is `want` (or begins with it, for a
/// prefix); the byte where that token ends.
fn token_at(lower: &str, pos: usize, want: &str, prefix: bool) -> Option<usize> {
    let rest = &lower[pos..];
    let len = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    let tok = rest[..len].trim_end_matches(['.', ':']);
    token_matches(tok, want, prefix).then_some(pos + len)
}

/// Characters of context around the first match.
const SNIPPET_BEFORE: usize = 60;
const SNIPPET_CHARS: usize = 200;

/// The body (or the title, when only it matched or the body is empty) cut around the first
/// match, with every match marked `[` `]` whole.
fn snippet(d: &Doc, q: &ParsedQuery) -> String {
    let body_marks = marks(&d.body, q);
    if !body_marks.is_empty() || d.title.trim().is_empty() {
        return cut(&d.body, &body_marks);
    }
    let title_marks = marks(&d.title, q);
    if !title_marks.is_empty() || d.body.trim().is_empty() {
        return cut(&d.title, &title_marks);
    }
    cut(&d.body, &[])
}

/// Byte ranges to mark, in order, not overlapping.
fn marks(text: &str, q: &ParsedQuery) -> Vec<(usize, usize)> {
    let toks = tokens(text);
    let mut ranges: Vec<(usize, usize)> = q
        .phrases
        .iter()
        .flat_map(|p| occurrences(&toks, p))
        .map(|(a, b)| (toks[a].start, toks[b].end))
        .collect();
    ranges.sort();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => out.push(r),
        }
    }
    out
}

fn cut(text: &str, marks: &[(usize, usize)]) -> String {
    let first = marks.first().map_or(0, |m| m.0);
    let start = floor_boundary(text, first.saturating_sub(SNIPPET_BEFORE));
    // Start at a word boundary when cutting.
    let start = if start > 0 {
        text[start..first]
            .find(char::is_whitespace)
            .map_or(start, |i| start + i + 1)
    } else {
        0
    };
    let mut end = floor_boundary(text, (start + SNIPPET_CHARS).min(text.len()));
    // Never cut inside a marked range.
    if let Some(m) = marks.iter().find(|m| m.0 < end && m.1 > end) {
        end = m.1;
    }
    if end < text.len() {
        if let Some(i) = text[start..end].rfind(char::is_whitespace) {
            if start + i
                > marks
                    .iter()
                    .filter(|m| m.1 <= end)
                    .map(|m| m.1)
                    .max()
                    .unwrap_or(start)
            {
                end = start + i;
            }
        }
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut pos = start;
    for &(a, b) in marks.iter().filter(|m| m.0 >= start && m.1 <= end) {
        out.push_str(&text[pos..a]);
        out.push('[');
        out.push_str(&text[a..b]);
        out.push(']');
        pos = b;
    }
    out.push_str(&text[pos..end]);
    if end < text.len() {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The FTS5 expression for `IncidentFilter::q` (incidents whose entries match), `None` when
/// the text has no words.
pub(crate) fn fts_query(input: &str) -> Option<String> {
    parse_query(input).ok().map(|p| p.fts(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> ParsedQuery {
        parse_query(s).unwrap()
    }

    fn doc(title: &str, body: &str) -> Doc {
        Doc {
            id: 1,
            kind: "evidence".into(),
            ref_id: 1,
            incident_id: 1,
            title: title.into(),
            body: body.into(),
            at: "2026-01-01T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn operators_are_words_and_quotes_make_phrases() {
        assert_eq!(
            q("db OR \"x").fts(&[]),
            "{title body} : (\"db\"* \"or\"* \"x\")"
        );
        assert_eq!(
            q("\"HTTP 503\" checkout-api").fts(&[]),
            "{title body} : (\"http 503\" \"checkout-api\"*)"
        );
        assert_eq!(
            q("check* v2.41.0.").fts(&[]),
            "{title body} : (\"check\"* \"v2.41.0\"*)"
        );
        assert_eq!(
            q("\"connection ref\"*").fts(&[SearchKind::Note, SearchKind::Finding]),
            "kind : (\"note\" OR \"finding\") AND {title body} : (\"connection ref\"*)"
        );
        for bad in ["", "  -- ** ", "\"", "*", "NEAR(", "()^"] {
            // NEAR( has a word: NEAR.
            if bad == "NEAR(" {
                assert_eq!(q(bad).fts(&[]), "{title body} : (\"near\"*)");
                continue;
            }
            assert!(
                matches!(parse_query(bad), Err(QueryError::NoWords(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_query(&"a".repeat(10_240)),
            Err(QueryError::TooLong(10_240))
        ));
        assert!(
            parse_query(&"ab ".repeat(40)).is_ok(),
            "duplicates collapse"
        );
        let many: String = (0..40).map(|i| format!("w{i} ")).collect();
        assert!(matches!(
            parse_query(&many),
            Err(QueryError::TooManyTerms(40))
        ));
        assert!(matches!(parse_query("e*"), Err(QueryError::ShortPrefix(_))));
    }

    #[test]
    fn tokens_keep_versions_hosts_and_ips_whole() {
        let t: Vec<String> = tokens("Deploy v2.41.0 of checkout-api to db-1.prod.internal (10.0.3.7:8080) at 14:07:32. HTTP 503: done")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        for want in [
            "v2.41.0",
            "checkout-api",
            "db-1.prod.internal",
            "10.0.3.7:8080",
            "14:07:32",
            "503",
            "http",
        ] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
        assert!(
            !t.contains(&"07".to_string()) && !t.contains(&"41".to_string()),
            "{t:?}"
        );
    }

    #[test]
    fn snippets_mark_whole_tokens_and_phrases() {
        let d = doc(
            "Deploy",
            "At 14:07:32 we rolled out v2.41.0 and saw HTTP 503 errors. Rolled back at 14:20.",
        );
        assert_eq!(
            snippet(&d, &q("v2.41.0")),
            "At 14:07:32 we rolled out [v2.41.0] and saw HTTP 503 errors. Rolled back at 14:20."
        );
        assert_eq!(
            snippet(&d, &q("\"http 503\"")),
            "At 14:07:32 we rolled out v2.41.0 and saw [HTTP 503] errors. Rolled back at 14:20."
        );
        // A bare `07` is not a token of this text: nothing to mark.
        assert!(!snippet(&d, &q("07")).contains('['));
        assert_eq!(
            snippet(&d, &q("error*")),
            "At 14:07:32 we rolled out v2.41.0 and saw HTTP 503 [errors]. Rolled back at 14:20."
        );
        // A word finds the words it begins; a quoted one only itself.
        let d = doc("x", "MISCONF snapshotting failed: disk full");
        assert_eq!(
            snippet(&d, &q("snapshot")),
            "MISCONF [snapshotting] failed: disk full"
        );
        assert!(!snippet(&d, &q("\"snapshot\"")).contains('['));
        // A sentence's final dot is not part of the mark.
        let d = doc("x", "Connection pool exhaustion. Then rollback.");
        assert_eq!(
            snippet(&d, &q("rollback")),
            "Connection pool exhaustion. Then [rollback]."
        );
        // Title only.
        let d = doc("Rollback checkout-api", "");
        assert_eq!(snippet(&d, &q("checkout-api")), "Rollback [checkout-api]");
    }

    #[test]
    fn long_text_is_cut_around_the_match() {
        let body = format!("{} needle {}", "hay ".repeat(100), "straw ".repeat(100));
        let s = snippet(&doc("t", &body), &q("needle"));
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("[needle]"), "{s}");
        assert!(s.chars().count() < 260, "{s}");
    }

    #[test]
    fn title_matches_outrank_body_matches() {
        let parsed = q("exhaustion");
        let a = doc("Pool exhaustion", "the database refused connections");
        let b = doc("Database", "the pool saw exhaustion of connections");
        assert!(score(&a, &parsed, &[1.0], 6.0) > score(&b, &parsed, &[1.0], 6.0));
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn fts() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE VIRTUAL TABLE search_fts USING fts5(kind, status, severity, month, title, body,
                tokenize = \"unicode61 remove_diacritics 2 tokenchars '.-_:/'\", prefix = '2 3');
             INSERT INTO search_fts(kind, status, severity, month, title, body)
             VALUES ('evidence', 'resolved', 'high', '2026-11', 'checkout', 'checkout p99 spike after deploy v2.41.0');",
        )
        .unwrap();
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The ranking's quick count and the snippet's tokenizer agree on every match.
        #[test]
        fn quick_count_agrees_with_tokens(text in "[ab.: 1-]{0,30}", query in "[ab. 1*\"]{1,8}") {
            if let Ok(parsed) = parse_query(&query) {
                let toks = tokens(&text);
                for p in &parsed.phrases {
                    prop_assert_eq!(
                        count_phrase(&text.to_lowercase(), p),
                        occurrences(&toks, p).len(),
                        "{:?} in {:?}", p, text
                    );
                }
            }
        }

        /// Whatever a user types (operators, quotes, NEAR(, 10 KB of text), the query built
        /// from it is valid FTS5 or a refusal that names the problem: search never answers a
        /// syntax error.
        #[test]
        fn any_input_makes_a_valid_query_or_a_clear_refusal(q in prop_oneof![
            any::<String>(),
            "[\"*():^+\\-a-z0-9 .:/_{}]{0,40}",
            Just("NEAR(".to_string()),
            Just("\"".to_string()),
            "[a-z ]{5000,10000}",
        ], kinds in proptest::sample::subsequence(SearchKind::ALL.to_vec(), 0..3),
           status in proptest::option::of(proptest::sample::select(IncidentStatus::ALL.to_vec())),
           severity in proptest::option::of(proptest::sample::select(Severity::ALL.to_vec())),
           from in proptest::option::of(0i64..2_000_000_000),
           span in 0i64..200_000_000) {
            let c = fts();
            match parse_query(&q) {
                Ok(parsed) => {
                    let from = from.and_then(|f| chrono::DateTime::from_timestamp(f, 0));
                    let to = from.map(|f| f + chrono::Duration::seconds(span));
                    let req = SearchRequest { q: q.clone(), kinds, status, severity, from, to, limit: 10 };
                    let query = parsed.fts_for(&req);
                    let n: rusqlite::Result<i64> = c.query_row(
                        "SELECT COUNT(*) FROM search_fts WHERE search_fts MATCH ?1", [&query], |r| r.get(0));
                    prop_assert!(n.is_ok(), "{query:?} from {q:?}: {:?}", n.err());
                    let terms: usize = parsed.phrases.iter().map(|p| p.tokens.len()).sum();
                    prop_assert!(terms <= MAX_TERMS);
                    // Snippets never panic on any text with any query.
                    let _ = snippet(&Doc { id: 1, kind: "note".into(), ref_id: 1, incident_id: 1,
                        title: q.clone(), body: q.clone(), at: String::new() }, &parsed);
                }
                Err(QueryError::NoWords(_)) => {
                    prop_assert!(!q.chars().any(|ch| ch.is_alphanumeric()), "{q:?} had words");
                }
                Err(QueryError::TooLong(n)) => prop_assert!(n > MAX_QUERY_CHARS),
                Err(QueryError::TooManyTerms(n)) => prop_assert!(n > MAX_TERMS),
                Err(QueryError::ShortPrefix(_)) => prop_assert!(q.contains('*')),
            }
        }
    }
}
