//! Ranking: BM25 computed here over the candidates' text (title weighted over body), each
//! phrase weighted by a document frequency counted up to [`super::DF_CAP`] — FTS5's own
//! `bm25()` would count every row of every term first.

use super::query::{indexed_part, is_token_char, token_count, token_matches, ParsedQuery, Phrase};
use super::{Doc, DF_CAP, PREFIX_SLICE};
use crate::Result;

/// Title weight over body in the ranking.
pub(super) const TITLE_WEIGHT: f64 = 3.0;

/// Weights of the phrases of `parsed`, rarer ones counting more, with `total` the newest
/// entry id and `indexed_prefix` the longest prefix with its own index. All candidates hold every phrase, so these only balance the phrases against each
/// other.
pub(super) fn phrase_weights(
    c: &rusqlite::Connection,
    parsed: &ParsedQuery,
    total: i64,
    indexed_prefix: usize,
) -> Result<Vec<f64>> {
    let mut idf = Vec::with_capacity(parsed.phrases.len());
    for p in &parsed.phrases {
        let one = ParsedQuery {
            phrases: vec![p.clone()],
        };
        // A long prefix is counted by its indexed start (one list read lazily, not a merge of
        // every word it begins): an over-count, by the words that share only the start, in a
        // weight that only balances phrases against each other.
        let one = one.widened(indexed_prefix).unwrap_or(one);
        // A prefix is counted in the newest slice and scaled up (see `Store::search`).
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
        idf.push(phrase_idf(seen, total, lo));
    }
    Ok(idf)
}

/// A phrase's weight from `seen`, its matches (counted up to [`DF_CAP`]) among the entries
/// with ids above `lo`, scaled up to all `total` entries (both backends count the same way).
pub(crate) fn phrase_idf(seen: i64, total: i64, lo: i64) -> f64 {
    let df = seen as f64 * total as f64 / (total - lo).max(1) as f64;
    let n = (total as f64).max(df);
    let df = df.max(1.0);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// BM25 with the title weighted over the body (BM25F-style: one pseudo-frequency per phrase).
pub(super) fn score(d: &Doc, q: &ParsedQuery, idf: &[f64], avg: f64) -> f64 {
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
pub(super) fn weighted_count(lower: &str, p: &Phrase) -> f64 {
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
pub(super) fn count_phrase(lower: &str, p: &Phrase) -> usize {
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
                    // Skip the separators to the next token, and any token the index drops
                    // (a lone `.` or `:` before whitespace holds no position there).
                    loop {
                        match lower[pos..].find(is_token_char) {
                            Some(i) => pos += i,
                            None => return false,
                        }
                        let len = lower[pos..]
                            .find(|c| !is_token_char(c))
                            .unwrap_or(lower.len() - pos);
                        let next = lower[pos + len..].chars().next();
                        if !super::query::indexed_part(&lower[pos..pos + len], next).is_empty() {
                            break;
                        }
                        pos += len;
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
pub(super) fn token_at(lower: &str, pos: usize, want: &str, prefix: bool) -> Option<usize> {
    let rest = &lower[pos..];
    let len = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    let tok = indexed_part(&rest[..len], rest[len..].chars().next());
    token_matches(tok, want, prefix).then_some(pos + len)
}
