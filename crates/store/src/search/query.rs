//! How a query and the indexed text are read: the index's token rules (letters, digits and
//! `.-_:/` make one token; a final `.` or `:` is dropped), what a user's input means (words,
//! prefixes, phrases; operators are plain words), and the FTS5 expression built from it, which
//! can never be a syntax error.

use opslens_domain::{SearchKind, Timestamp};

use super::SearchRequest;
use crate::Result;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most terms (words, phrase words) in a query.
pub const MAX_TERMS: usize = 32;
/// Shortest prefix before a `*`: shorter ones match too much of the vocabulary to be useful.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Characters kept inside tokens besides letters and digits, as the index's tokenizer does.
pub(super) const TOKEN_CHARS: &[char] = &['.', '-', '_', ':', '/'];

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
    /// [`crate::Store::search`]).
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
pub(super) fn push_word(phrases: &mut Vec<Phrase>, word: String, star: bool) {
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

pub(super) fn push_phrase(phrases: &mut Vec<Phrase>, tokens: Vec<String>, prefix: bool) {
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
pub(super) fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || TOKEN_CHARS.contains(&c)
}

/// A token as the index holds it: lower case, without the `.` or `:` that ends a sentence or a
/// label ("error." and "Error:" are `error`).
pub(super) fn normalize(token: &str) -> String {
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

impl ParsedQuery {
    /// The query with each prefix longer than `indexed` characters cut to its first `indexed`
    /// (which the index's prefix index holds as one list): it matches every entry this query
    /// matches, and a few more. `None` when no prefix is that long.
    pub fn widened(&self, indexed: usize) -> Option<ParsedQuery> {
        let mut changed = false;
        let phrases = self
            .phrases
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if p.prefix {
                    if let Some(last) = p.tokens.last_mut() {
                        if last.chars().count() > indexed {
                            *last = last.chars().take(indexed).collect();
                            changed = true;
                        }
                    }
                }
                p
            })
            .collect();
        changed.then_some(ParsedQuery { phrases })
    }

    /// Whether an entry with this title and body matches, by the index's token rules: every
    /// phrase in the title or in the body. Text the index folds differently (accents: the
    /// index drops them, this check does not) is given the benefit of the doubt, so a check
    /// never loses a match the index finds.
    pub fn matches_text(&self, title: &str, body: &str) -> bool {
        let (title, body) = (title.to_lowercase(), body.to_lowercase());
        self.phrases.iter().all(|p| {
            super::rank::count_phrase(&title, p) > 0
                || super::rank::count_phrase(&body, p) > 0
                || !title.is_ascii()
                || !body.is_ascii()
        })
    }
}

/// Longest time range (in months of opening) narrowed in the index; a longer one is checked
/// on the incident alone.
pub(super) const MAX_MONTHS: usize = 36;

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
pub(super) fn months(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<Vec<String>> {
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

pub(super) fn phrase_fts(p: &Phrase) -> String {
    // Tokens hold no `"` (not a token char), so quoting cannot be broken out of.
    format!(
        "\"{}\"{}",
        p.tokens.join(" "),
        if p.prefix { "*" } else { "" }
    )
}

/// A token of `text`: its byte range and its normalized form.
pub(super) struct Token {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) norm: String,
}

/// Splits `text` as the index's tokenizer does (letters, digits and `.-_:/` make tokens).
pub(super) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, is_token_char(c) && i < text.len()) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let raw = indexed_part(&text[s..i], (i < text.len()).then_some(c));
                let norm: String = raw.chars().flat_map(char::to_lowercase).collect();
                if !norm.is_empty() {
                    // The marked range leaves out a sentence's final `.` or `:`.
                    let end = s + raw.len();
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

/// The part of a token of text that the index holds: without the `.` or `:` that ends it
/// when whitespace or the end of the text follows ("error." and "Error: x" are `error`,
/// "v2.41.0." is `v2.41.0`), as written otherwise. Exactly what the index's trigger does
/// (migration 0013): its replaces run `. ` then `: ` (so before a space or the end, a final
/// `.` and then a final `:` go: "x:." is `x`, "x.:" is `x.`), then one pass each for a newline,
/// carriage return and tab (one character goes).
pub(super) fn indexed_part(raw: &str, next: Option<char>) -> &str {
    match next {
        None | Some(' ') => {
            let r = raw.strip_suffix('.').unwrap_or(raw);
            r.strip_suffix(':').unwrap_or(r)
        }
        Some('\n' | '\r' | '\t') => raw.strip_suffix(['.', ':']).unwrap_or(raw),
        _ => raw,
    }
}

pub(super) fn token_count(text: &str) -> usize {
    text.split(|c: char| !is_token_char(c))
        .filter(|w| !w.is_empty())
        .count()
}

pub(super) fn token_matches(tok: &str, want: &str, prefix: bool) -> bool {
    if prefix {
        tok.starts_with(want)
    } else {
        tok == want
    }
}

/// Where `p` occurs in `toks`: (first token, last token) index pairs.
pub(super) fn occurrences(toks: &[Token], p: &Phrase) -> Vec<(usize, usize)> {
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
