//! Full-text search over incidents and evidence (FTS5).

use opslens_domain::SearchHit;

use crate::{Result, Store};

/// Turns free text into an FTS5 query that cannot be a syntax error: each word becomes a quoted
/// prefix term, all of which must match. `None` when nothing searchable is left.
pub(crate) fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Store {
    /// Best matches for `q` across incidents and evidence, best first.
    pub fn search(&self, q: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let Some(query) = fts_query(q) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT kind, ref_id, incident_id, title,
                        snippet(search_index, -1, '[', ']', '…', 12)
                 FROM search_index WHERE search_index MATCH ?1
                 ORDER BY rank LIMIT ?2",
            )?;
            let hits = st
                .query_map(rusqlite::params![query, limit], |r| {
                    Ok(SearchHit {
                        kind: r.get(0)?,
                        id: r.get(1)?,
                        incident_id: r.get(2)?,
                        title: r.get(3)?,
                        snippet: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(hits)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn quotes_every_term_so_operators_are_literal() {
        assert_eq!(
            fts_query("db OR \"x"),
            Some("\"db\"* \"OR\"* \"x\"*".into())
        );
        assert_eq!(fts_query("  -- ** "), None);
        assert_eq!(fts_query("HTTP 503"), Some("\"HTTP\"* \"503\"*".into()));
    }
}
