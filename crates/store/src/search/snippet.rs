//! Snippets: an entry's text cut around its first match, every match marked `[` `]` whole,
//! by the same token rules as the index (so `v2.41.0` is marked whole and a bare `07` never
//! matches inside `14:07:32`).

use super::query::{occurrences, tokens, ParsedQuery};
use super::Doc;

/// Characters of context around the first match.
pub(super) const SNIPPET_BEFORE: usize = 60;
pub(super) const SNIPPET_CHARS: usize = 200;

/// The body (or the title, when only it matched or the body is empty) cut around the first
/// match, with every match marked `[` `]` whole.
pub(super) fn snippet(d: &Doc, q: &ParsedQuery) -> String {
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
pub(super) fn marks(text: &str, q: &ParsedQuery) -> Vec<(usize, usize)> {
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

pub(super) fn cut(text: &str, marks: &[(usize, usize)]) -> String {
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

pub(super) fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub(super) fn display_title(d: &Doc) -> String {
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
