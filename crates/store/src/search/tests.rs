//! Unit and property tests of parsing, ranking and snippets.

use super::query::{occurrences, tokens};
use super::rank::count_phrase;
use super::*;
use crate::Store;

mod unit {
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

mod widened {
    use super::*;

    #[test]
    fn long_prefixes_are_cut_to_the_indexed_length() {
        let p = parse_query("exhaust* \"connection ref\"* db").unwrap();
        let w = p.widened(3).unwrap();
        assert_eq!(
            w.fts(&[]),
            "{title body} : (\"exh\"* \"connection ref\"* \"db\"*)"
        );
        assert!(parse_query("che* \"http 503\"")
            .unwrap()
            .widened(3)
            .is_none());
        // The check has the index's token rules: whole tokens, phrases in one column.
        let q = parse_query("exhaust* \"pool ex\"*").unwrap();
        assert!(q.matches_text("Pool exhaustion", "the pool exhausted"));
        assert!(
            !q.matches_text("exhibit", "pool is exhausted"),
            "phrase missing"
        );
        assert!(!q.matches_text("Pool exhibit", "pool-exhausted"));
        assert!(q.matches_text("", "pool exhausted. then pool: exhaustion."));
        // Accents: the index folds them, the check gives the benefit of the doubt.
        assert!(parse_query("cafe*").unwrap().matches_text("", "café"));
    }

    /// A store with `n` entries of `filler` text, then `m` entries naming `needle`, ids in
    /// that order (newest last).
    fn store(rows: &[(&str, usize)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut c = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let tx = c.transaction().unwrap();
        for (text, n) in rows {
            for _ in 0..*n {
                tx.execute(
                    "INSERT INTO incident(title, description, severity, status, created_at, updated_at)
                     VALUES ('Incident', ?1, 'high', 'resolved', '2026-11-01T00:00:00.000000Z',
                             '2026-11-01T00:00:00.000000Z')",
                    [text],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
        (dir, s)
    }

    fn ids(s: &Store, q: &str) -> (Vec<i64>, bool) {
        let r = s
            .search(&SearchRequest {
                q: q.into(),
                limit: 200,
                ..Default::default()
            })
            .unwrap();
        let mut ids: Vec<i64> = r.hits.iter().map(|h| h.incident_id).collect();
        ids.sort_unstable();
        (ids, r.complete)
    }

    #[test]
    fn a_widened_prefix_finds_exactly_what_the_prefix_matches() {
        // Newest last: 3 old exhaustion entries under 300 newer exhibit ones, 2 with
        // `exhausted` among them and the last 5 plain.
        let (_d, s) = store(&[
            ("connection pool exhaustion", 3),
            ("exhibit of the dashboard", 300),
            ("the pool was exhausted: restart", 2),
            ("nothing to see", 5),
        ]);
        let (found, complete) = ids(&s, "exhaust*");
        assert_eq!(found, vec![1, 2, 3, 304, 305]);
        assert!(complete);
        // The same through a bare word (prefix after the whole-word pass) and a phrase.
        assert_eq!(ids(&s, "exhaus").0, vec![1, 2, 3, 304, 305]);
        assert_eq!(ids(&s, "\"pool exhaus\"*").0, vec![1, 2, 3]);
        assert_eq!(ids(&s, "exhib*").0.len(), 200, "the limit");
        assert!(ids(&s, "exhaustive*").0.is_empty());
    }

    #[test]
    fn a_rare_prefix_under_a_common_start_falls_back_to_the_exact_query() {
        // More entries with the indexed start than the check reads: the exact query answers.
        let (_d, s) = store(&[
            ("connection pool exhaustion", 2),
            ("exhibit of the dashboard", VERIFY_SCAN + 600),
        ]);
        let (found, complete) = ids(&s, "exhaust*");
        assert_eq!(found, vec![1, 2]);
        assert!(complete);
    }
}

mod widened_props {
    use proptest::prelude::*;

    use super::*;

    /// What the index's trigger does to text before indexing it (migration 0013): a `.` or
    /// `:` before whitespace or at the end is dropped.
    const CLEAN: &str = "replace(replace(replace(replace(replace(replace(replace(replace(
        ?1 || ' ', '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
        '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The text check of a widened prefix keeps exactly the entries the exact FTS5 query
        /// matches: never one more (the answer would show non-matches), never one fewer (a
        /// match lost).
        #[test]
        fn text_check_agrees_with_the_index(
            title in "[abc.: 1-]{0,16}",
            body in "[abc.: 1\n\t-]{0,30}",
            query in "[abc. 1*\"]{1,10}",
        ) {
            let Ok(parsed) = parse_query(&query) else { return Ok(()) };
            let c = rusqlite::Connection::open_in_memory().unwrap();
            c.execute_batch(
                "CREATE VIRTUAL TABLE f USING fts5(title, body,
                    tokenize = \"unicode61 remove_diacritics 2 tokenchars '.-_:/'\", prefix = '2 3');",
            ).unwrap();
            c.execute(
                &format!("INSERT INTO f(rowid, title, body) VALUES (1, {}, {})",
                    CLEAN, CLEAN.replace("?1", "?2")),
                rusqlite::params![title, body],
            ).unwrap();
            let exact: i64 = c.query_row(
                "SELECT count(*) FROM f WHERE f MATCH ?1",
                [parsed.fts(&[])],
                |r| r.get(0),
            ).unwrap();
            prop_assert_eq!(
                exact == 1,
                parsed.matches_text(&title, &body),
                "{:?} on {:?} / {:?}", parsed.fts(&[]), title, body
            );
            // The widened query is a superset.
            if let Some(w) = parsed.widened(INDEXED_PREFIX) {
                let wide: i64 = c.query_row(
                    "SELECT count(*) FROM f WHERE f MATCH ?1",
                    [w.fts(&[])],
                    |r| r.get(0),
                ).unwrap();
                prop_assert!(wide >= exact);
            }
        }
    }
}

/// Entries are noted as they are written and indexed in bulk, at a commit or before a search
/// (migration 0016): whatever a batch does to an entry before then — created, re-filed under a
/// new status, deleted — the index agrees after.
mod at_commit {
    use opslens_domain::{IncidentPatch, IncidentStatus};

    use crate::search::INDEX_BATCH;
    use crate::{NewIncidentRow, SearchRequest, Store};

    fn new(title: &str) -> NewIncidentRow {
        NewIncidentRow {
            description: "replica lag on db-1.prod".into(),
            ..NewIncidentRow::test(title)
        }
    }

    fn found(s: &Store, q: &str, status: Option<IncidentStatus>) -> Vec<i64> {
        let r = s
            .search(&SearchRequest {
                q: q.into(),
                status,
                limit: 50,
                ..Default::default()
            })
            .unwrap();
        let mut ids: Vec<i64> = r.hits.iter().map(|h| h.incident_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn one_batch_creating_changing_and_deleting_entries_leaves_the_index_right() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let kept = s.create_incident(new("checkout latency")).unwrap().id;
        // The search indexes the first entry; the batch below only notes the others.
        assert_eq!(found(&s, "latency", None), vec![kept]);
        // All in one batch, left open until settled: the first entry is already indexed, the
        // others are only noted when the status changes and the delete happen.
        let ((a, b), deferred) = crate::deferring(|| {
            let a = s.create_incident(new("payments latency")).unwrap().id;
            let b = s.create_incident(new("search latency")).unwrap().id;
            for id in [kept, a] {
                let patch = IncidentPatch {
                    status: Some(IncidentStatus::Mitigated),
                    ..Default::default()
                };
                s.update_incident(id, &patch).unwrap();
            }
            s.delete_incident(b).unwrap();
            (a, b)
        });
        // Nothing of the batch is visible before it commits.
        assert_eq!(found(&s, "latency", None), vec![kept]);
        s.settle(deferred).result().unwrap();
        assert_eq!(found(&s, "latency", None), vec![kept, a]);
        assert_eq!(
            found(&s, "latency", Some(IncidentStatus::Mitigated)),
            vec![kept, a]
        );
        assert!(found(&s, "latency", Some(IncidentStatus::Triggered)).is_empty());
        assert!(found(&s, "search", None).is_empty(), "deleted {b}");
        let pending: i64 = rusqlite::Connection::open(dir.path().join("opslens.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pending, 0);
        // FTS5's own check of its index structure.
        rusqlite::Connection::open(dir.path().join("opslens.db"))
            .unwrap()
            .execute(
                "INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 0)",
                [],
            )
            .unwrap();
    }

    /// A commit indexes the waiting entries only once there are [`INDEX_BATCH`] of them; a
    /// search finds those still waiting all the same (and indexes them).
    #[test]
    fn commits_index_in_bulk_and_searches_find_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let raw = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let waiting = || -> i64 {
            raw.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
                .unwrap()
        };
        let indexed = || -> i64 {
            raw.query_row("SELECT count(*) FROM search_fts", [], |r| r.get(0))
                .unwrap()
        };
        s.create_incident(new("heron over the dam")).unwrap();
        assert_eq!((waiting(), indexed()), (1, 0), "one entry waits");
        assert_eq!(found(&s, "heron", None).len(), 1);
        assert_eq!((waiting(), indexed()), (0, 1), "the search indexed it");
        // Committed one by one: the commit that makes INDEX_BATCH waiting indexes them all.
        let n = INDEX_BATCH as usize;
        for i in 1..n {
            s.create_incident(new(&format!("egret {i}"))).unwrap();
        }
        assert_eq!((waiting(), indexed()), (INDEX_BATCH - 1, 1));
        s.create_incident(new("egret last")).unwrap();
        assert_eq!((waiting(), indexed()), (0, INDEX_BATCH + 1));
        let r = s
            .search(&SearchRequest {
                q: "egret".into(),
                limit: 200,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.hits.len(), 200);
        raw.execute(
            "INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 0)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_entry_to_index() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let id = s.create_incident(new("disk pressure")).unwrap().id;
        let bad = opslens_domain::NewHypothesis {
            statement: "log rotation stalled".into(),
            evidence_ids: vec![999_999],
            status: None,
            origin: None,
        };
        s.add_hypothesis(id, &bad).unwrap_err();
        assert!(found(&s, "rotation", None).is_empty());
        s.create_incident(new("another")).unwrap();
        assert!(found(&s, "rotation", None).is_empty());
        assert_eq!(found(&s, "pressure", None), vec![id]);
    }

    /// Entries written past the writer (another connection) are indexed by the next search,
    /// or when the store opens.
    #[test]
    fn entries_written_past_the_writer_are_found_by_the_next_search_or_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let raw = rusqlite::Connection::open(dir.path().join("opslens.db")).unwrap();
        let insert = |title: &str| {
            raw.execute(
                "INSERT INTO incident(title, description, severity, status, created_at, updated_at)
                 VALUES (?1, '', 'high', 'triggered', '2026-11-01T00:00:00.000000Z',
                         '2026-11-01T00:00:00.000000Z')",
                [title],
            )
            .unwrap()
        };
        let pending = || -> i64 {
            raw.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
                .unwrap()
        };
        insert("walrus on the shell");
        assert_eq!(pending(), 1);
        assert_eq!(found(&s, "walrus", None).len(), 1);
        assert_eq!(pending(), 0);
        insert("manatee on the shell");
        assert_eq!(pending(), 1);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(pending(), 0, "indexed at open");
        assert_eq!(found(&s, "manatee", None).len(), 1);
    }
}
