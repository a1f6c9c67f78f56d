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

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::fts_query;

    fn fts() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(body);
             INSERT INTO t(body) VALUES ('checkout p99 spike after deploy v2.41.0');",
        )
        .unwrap();
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever a user types (operators, quotes, NEAR(, 10 KB of text), the query built
        /// from it is valid FTS5: search never answers a syntax error.
        #[test]
        fn any_input_makes_a_valid_query(q in prop_oneof![
            any::<String>(),
            "[\"*():^+\\-a-z0-9 ]{0,40}",
            Just("NEAR(".to_string()),
            Just("\"".to_string()),
            "[a-z ]{5000,10000}",
        ]) {
            let c = fts();
            if let Some(query) = fts_query(&q) {
                let n: rusqlite::Result<i64> =
                    c.query_row("SELECT COUNT(*) FROM t WHERE t MATCH ?1", [&query], |r| r.get(0));
                prop_assert!(n.is_ok(), "{query:?} from {q:?}: {:?}", n.err());
                prop_assert!(query.matches('"').count() <= 32, "at most 16 terms");
            } else {
                prop_assert!(!q.chars().any(|ch| ch.is_alphanumeric()), "{q:?} had words");
            }
        }
    }
}
