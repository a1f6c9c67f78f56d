//! Full-text search on PostgreSQL (as `crate::search`, whose module comment says what a
//! search does): the same query language ([`parse_query`]), the same candidates (the newest
//! [`WINDOW`] entries that match), the same ranking and snippets ([`ranked_hits`], over the
//! candidates' text) — only the matching is PostgreSQL's.
//!
//! The index is `search_doc.tsv` (migrations_pg/0001_init.sql): the entry's tokens cut by
//! SQLite's tokenizer rules, written as lexemes with positions, title weight A and body B,
//! under a GIN index. A query becomes a `tsquery` of quoted lexemes (so no input is a syntax
//! error): a phrase's words joined by `<->`, a prefix as `:*`, phrases joined by `&`.
//!
//! A tsvector keeps at most 256 positions per lexeme and none past 16383; an entry that lost
//! positions is marked `clipped`, matched on all its words (`&`) rather than the phrase, and its
//! phrases are then checked on its text here, so a long log still finds its phrases.

use std::collections::{HashMap, HashSet};

use opslens_domain::{SearchGroup, SearchHit, SearchResults};
use postgres::types::ToSql;
use postgres::Client;

use super::row::{en, t};
use super::PgStore;
use crate::row::ts;
use crate::search::{
    parse_query, phrase_idf, ranked_hits, Doc, ParsedQuery, Phrase, SearchRequest, BODY_CHARS,
    DF_CAP, INDEXED_PREFIX, PREFIX_SLICE, WINDOW,
};
use crate::{Result, StoreError};

type Args = Vec<Box<dyn ToSql + Sync>>;

/// The `tsquery` of `q`: every phrase must match, its words next to each other.
pub(crate) fn tsquery(q: &ParsedQuery) -> String {
    join_phrases(q, " <-> ")
}

/// The `tsquery` of `q` with every word of every phrase anywhere (for entries whose tsvector
/// lost positions; their phrases are checked on the text).
fn tsquery_words(q: &ParsedQuery) -> String {
    join_phrases(q, " & ")
}

fn join_phrases(q: &ParsedQuery, within: &str) -> String {
    q.phrases
        .iter()
        .map(|p| {
            let n = p.tokens.len();
            // Tokens hold no `'` or `\` (not token characters), so quoting cannot be broken
            // out of, and operators typed in the query are words.
            let words = p
                .tokens
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let star = if p.prefix && i + 1 == n { ":*" } else { "" };
                    format!("'{w}'{star}")
                })
                .collect::<Vec<_>>()
                .join(within);
            if n > 1 {
                format!("({words})")
            } else {
                words
            }
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// Whether `q` has a phrase of several words (which a clipped entry matches only on its text).
fn has_phrase(q: &ParsedQuery) -> bool {
    q.phrases.iter().any(|p| p.tokens.len() > 1)
}

/// The condition on `search_doc d` that it matches `q`, its parameters pushed onto `args`.
pub(crate) fn match_sql(q: &ParsedQuery, args: &mut Args) -> String {
    args.push(Box::new(tsquery(q)));
    let exact = format!("d.tsv @@ unaccent(${})::tsquery", args.len());
    if !has_phrase(q) {
        return exact;
    }
    args.push(Box::new(tsquery_words(q)));
    format!(
        "({exact} OR (d.clipped AND d.tsv @@ unaccent(${})::tsquery))",
        args.len()
    )
}

fn params(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref()).collect()
}

/// The newest [`WINDOW`] entries matching `q` that pass the filters of `req`.
fn candidates(c: &mut Client, req: &SearchRequest, q: &ParsedQuery) -> Result<Vec<i64>> {
    let mut args: Args = Vec::new();
    let mut wheres = vec![match_sql(q, &mut args)];
    if !req.kinds.is_empty() {
        let kinds: Vec<String> = req.kinds.iter().map(|k| k.as_str().to_string()).collect();
        args.push(Box::new(kinds));
        wheres.push(format!("d.kind = ANY(${})", args.len()));
    }
    let mut join = false;
    if let Some(s) = req.status {
        args.push(Box::new(s.as_str()));
        wheres.push(format!("i.status = ${}", args.len()));
        join = true;
    }
    if let Some(s) = req.severity {
        args.push(Box::new(s.as_str()));
        wheres.push(format!("i.severity = ${}", args.len()));
        join = true;
    }
    if let Some(from) = req.from {
        args.push(Box::new(ts(&from)));
        wheres.push(format!("i.created_at >= ${}", args.len()));
        join = true;
    }
    if let Some(to) = req.to {
        args.push(Box::new(ts(&to)));
        wheres.push(format!("i.created_at < ${}", args.len()));
        join = true;
    }
    let join = if join {
        "JOIN incident i ON i.id = d.incident_id"
    } else {
        ""
    };
    let rows = c.query(
        &format!(
            "SELECT d.id, d.clipped FROM search_doc d {join} WHERE {}
             ORDER BY d.id DESC LIMIT {WINDOW}",
            wheres.join(" AND ")
        ),
        &params(&args),
    )?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let clipped: Vec<i64> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    if has_phrase(q) && !clipped.is_empty() {
        // Matched on their words only: keep those whose text holds the phrases.
        let keep: HashSet<i64> = c
            .query(
                "SELECT id, title, body FROM search_doc WHERE id = ANY($1)",
                &[&clipped],
            )?
            .iter()
            .filter(|r| q.matches_text(r.get(1), r.get(2)))
            .map(|r| r.get(0))
            .collect();
        let clipped: HashSet<i64> = clipped.into_iter().collect();
        ids.retain(|id| !clipped.contains(id) || keep.contains(id));
    }
    Ok(ids)
}

/// The phrases' weights, counted as SQLite counts them (`crate::search::rank::phrase_weights`:
/// a long prefix by its first [`INDEXED_PREFIX`] characters, a prefix in the newest
/// [`PREFIX_SLICE`] entries and scaled up), so both backends weigh a query alike.
fn phrase_weights(c: &mut Client, parsed: &ParsedQuery, total: i64) -> Result<Vec<f64>> {
    let mut idf = Vec::with_capacity(parsed.phrases.len());
    for p in &parsed.phrases {
        let one = ParsedQuery {
            phrases: vec![p.clone()],
        };
        let one = one.widened(INDEXED_PREFIX).unwrap_or(one);
        let lo = if p.prefix && total > PREFIX_SLICE {
            total - PREFIX_SLICE
        } else {
            0
        };
        // Exact matches only: a clipped entry's phrases are not checked here (a weight, not
        // an answer), and the OR would read the posting lists twice.
        let seen: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM search_doc d
                     WHERE d.tsv @@ unaccent($1)::tsquery AND d.id > $2 LIMIT {DF_CAP}) x"
                ),
                &[&tsquery(&one), &lo],
            )?
            .get(0);
        idf.push(phrase_idf(seen, total, lo));
    }
    Ok(idf)
}

fn load_docs(c: &mut Client, ids: &[i64]) -> Result<Vec<Doc>> {
    let ids = ids.to_vec();
    Ok(c.query(
        &format!(
            "SELECT id, kind, ref_id, incident_id, title, substr(body, 1, {BODY_CHARS}), at
             FROM search_doc WHERE id = ANY($1)"
        ),
        &[&ids],
    )?
    .iter()
    .map(|r| Doc {
        id: r.get(0),
        kind: r.get(1),
        ref_id: r.get(2),
        incident_id: r.get(3),
        title: r.get(4),
        body: r.get(5),
        at: r.get(6),
    })
    .collect())
}

/// The hits by incident, the incident of the best hit first, with the incident's state now.
fn group(c: &mut Client, hits: &[SearchHit]) -> Result<Vec<SearchGroup>> {
    let mut order: Vec<i64> = Vec::new();
    let mut by: HashMap<i64, Vec<SearchHit>> = HashMap::new();
    for h in hits {
        if !by.contains_key(&h.incident_id) {
            order.push(h.incident_id);
        }
        by.entry(h.incident_id).or_default().push(h.clone());
    }
    let mut heads = HashMap::new();
    for r in c.query(
        "SELECT id, title, status, severity, created_at FROM incident WHERE id = ANY($1)",
        &[&order],
    )? {
        let id: i64 = r.get(0);
        // An unreadable row is left out, as on SQLite.
        if let (Ok(status), Ok(severity), Ok(created_at)) =
            (en(&r, "status"), en(&r, "severity"), t(&r, "created_at"))
        {
            heads.insert(id, (r.get::<_, String>(1), status, severity, created_at));
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|id| {
            let (title, status, severity, created_at) = heads.remove(&id)?;
            Some(SearchGroup {
                incident_id: id,
                title,
                status,
                severity,
                created_at,
                hits: by.remove(&id).unwrap_or_default(),
            })
        })
        .collect())
}

impl PgStore {
    pub(crate) fn search_pg(&self, req: &SearchRequest) -> Result<SearchResults> {
        let parsed = parse_query(&req.q).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let limit = req.limit.clamp(1, 200) as usize;
        self.read(|c| {
            let mut parsed = parsed;
            // Bare words as whole words first (as on SQLite): when they alone fill the window,
            // the longer words they begin are not looked at (nor marked, nor ranked).
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
            let mut ids;
            if whole != parsed && !whole.phrases.iter().any(|p| p.prefix) {
                ids = candidates(c, req, &whole)?;
                if (ids.len() as u32) < WINDOW {
                    let wider = candidates(c, req, &parsed)?;
                    // The same entries: no longer word found, so the words are whole (SQLite
                    // asks its vocabulary; PostgreSQL has none to ask cheaply).
                    if wider != ids {
                        ids = wider;
                    } else {
                        parsed = whole;
                    }
                } else {
                    parsed = whole;
                }
            } else {
                ids = candidates(c, req, &parsed)?;
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
            let total: i64 = c
                .query_one("SELECT coalesce(max(id), 0) FROM search_doc", &[])?
                .get(0);
            let idf = phrase_weights(c, &parsed, total)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_becomes_a_tsquery_of_quoted_lexemes() {
        let q = parse_query(r#""HTTP 503" check* v2.41.0 NEAR( "a bc"* x"#).unwrap();
        assert_eq!(
            tsquery(&q),
            "('http' <-> '503') & 'check':* & 'v2.41.0':* & 'near':* & ('a' <-> 'bc':*) & 'x'"
        );
        assert_eq!(
            tsquery_words(&q),
            "('http' & '503') & 'check':* & 'v2.41.0':* & 'near':* & ('a' & 'bc':*) & 'x'"
        );
        assert!(has_phrase(&q));
        let mut args = Vec::new();
        assert_eq!(
            match_sql(&q, &mut args),
            "(d.tsv @@ unaccent($1)::tsquery OR (d.clipped AND d.tsv @@ unaccent($2)::tsquery))"
        );
        let one = parse_query("db-1.prod.internal").unwrap();
        let mut args = Vec::new();
        assert_eq!(match_sql(&one, &mut args), "d.tsv @@ unaccent($1)::tsquery");
        assert_eq!(args.len(), 1);
    }
}
