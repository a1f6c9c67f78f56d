//! Redaction before sharing: black boxes burnt into a new copy of a screenshot (the original
//! file is kept and never leaves the machine), and suggestions of what to black out.
//!
//! The redacted copy is a PNG whose pixels in each box are opaque black — really removed, not
//! a layer — and is what the exports use for that screenshot (see [`EvidenceService::shared_image`]).
//!
//! Suggestions come from the text the analysis read off the screen (its summary, errors,
//! panels and raw output) and the evidence text. The model's findings carry no coordinates,
//! so suggestions are text-only warnings (`region: null`): the user draws the box. No OCR
//! pass is added: it would be a second, large model dependency for what the vision model
//! already reads.

use std::io::Cursor;
use std::sync::OnceLock;

use opslens_domain::{Evidence, RedactionBox, RedactionRequest, RedactionSuggestion};
use regex::Regex;

use crate::evidence::EvidenceService;
use crate::CoreError;

/// Most boxes in one redaction.
pub const MAX_BOXES: usize = 200;

/// Checks `boxes` against a `width`×`height` image, naming the first bad one.
pub fn check_boxes(boxes: &[RedactionBox], width: u32, height: u32) -> Result<(), CoreError> {
    if boxes.is_empty() || boxes.len() > MAX_BOXES {
        return Err(CoreError::Invalid(format!(
            "boxes: give 1 to {MAX_BOXES} boxes, not {}",
            boxes.len()
        )));
    }
    for (i, b) in boxes.iter().enumerate() {
        if b.width == 0 || b.height == 0 {
            return Err(CoreError::Invalid(format!(
                "boxes[{i}] has zero size ({}×{})",
                b.width, b.height
            )));
        }
        let right = u64::from(b.x) + u64::from(b.width);
        let bottom = u64::from(b.y) + u64::from(b.height);
        if right > u64::from(width) || bottom > u64::from(height) {
            return Err(CoreError::Invalid(format!(
                "boxes[{i}] ({},{} {}×{}) lies outside the {width}×{height} image",
                b.x, b.y, b.width, b.height
            )));
        }
    }
    Ok(())
}

/// Decodes `bytes`, blacks out `boxes` and encodes the result as PNG. Blocking.
pub fn burn(bytes: &[u8], boxes: &[RedactionBox]) -> Result<Vec<u8>, CoreError> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| CoreError::internal("the stored screenshot could not be decoded", e))?;
    let mut rgba = img.to_rgba8();
    check_boxes(boxes, rgba.width(), rgba.height())?;
    for b in boxes {
        for y in b.y..b.y + b.height {
            for x in b.x..b.x + b.width {
                rgba.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    rgba.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| CoreError::internal("the redacted screenshot could not be encoded", e))?;
    Ok(out.into_inner())
}

/// A named pattern of something not to share.
struct Pattern {
    kind: String,
    re: Regex,
}

fn builtin() -> Vec<Pattern> {
    let p = |kind: &str, re: &str| Pattern {
        kind: kind.into(),
        re: Regex::new(re).expect("built-in pattern compiles"),
    };
    vec![
        p("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
        p(
            "ip",
            r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
        ),
        p(
            "customer_id",
            r"(?i)\b(?:cus|cust|customer|acct|account)[_-][A-Za-z0-9]{4,}\b",
        ),
        p(
            "secret",
            r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{16,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,})\b",
        ),
    ]
}

/// Patterns from `OPSLENS_REDACT_PATTERNS` (`name=regex` separated by newlines or `;;`), e.g.
/// `customer_id=\bC-\d{6}\b`; a pattern that does not compile is skipped with a warning.
fn configured() -> Vec<Pattern> {
    let Ok(spec) = std::env::var("OPSLENS_REDACT_PATTERNS") else {
        return Vec::new();
    };
    spec.split(['\n'])
        .flat_map(|l| l.split(";;"))
        .filter_map(|item| {
            let (name, re) = item.trim().split_once('=')?;
            match Regex::new(re) {
                Ok(re) => Some(Pattern {
                    kind: name.trim().to_string(),
                    re,
                }),
                Err(e) => {
                    tracing::warn!(pattern = %item, error = %e, "OPSLENS_REDACT_PATTERNS entry skipped");
                    None
                }
            }
        })
        .collect()
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let mut v = configured();
        v.extend(builtin());
        v
    })
}

/// Shannon entropy of `s` in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    -counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>()
}

/// Looks like a token or key: long, several character classes, high entropy.
fn high_entropy(word: &str) -> bool {
    let n = word.chars().count();
    if !(20..=200).contains(&n) {
        return false;
    }
    let classes = [
        word.chars().any(|c| c.is_ascii_lowercase()),
        word.chars().any(|c| c.is_ascii_uppercase()),
        word.chars().any(|c| c.is_ascii_digit()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    classes >= 2 && entropy(word) >= 3.5
}

/// What in `text` looks sensitive, each text once.
pub fn suggestions_in(text: &str) -> Vec<RedactionSuggestion> {
    let mut out: Vec<RedactionSuggestion> = Vec::new();
    let mut push = |kind: &str, t: &str| {
        if !out.iter().any(|s| s.text == t) {
            out.push(RedactionSuggestion {
                kind: kind.into(),
                text: t.into(),
                region: None,
            });
        }
    };
    for p in patterns() {
        for m in p.re.find_iter(text) {
            push(&p.kind, m.as_str());
        }
    }
    for w in text.split(|c: char| c.is_whitespace() || "\"'`,;()[]{}<>".contains(c)) {
        let w = w.trim_matches(|c: char| c == '.' || c == ':');
        if high_entropy(w) && !w.contains('@') {
            push("secret", w);
        }
    }
    out
}

/// All strings in a JSON value, joined by newlines.
fn strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

impl EvidenceService {
    async fn screenshot(&self, id: i64) -> Result<Evidence, CoreError> {
        let ev = self.get(id).await?;
        if ev.image.is_none() {
            return Err(CoreError::Invalid(format!(
                "evidence {id} is a {}, not a screenshot: only screenshots can be redacted",
                ev.evidence_type
            )));
        }
        Ok(ev)
    }

    /// Blacks out `req.boxes` on screenshot `id` into a new image (the original is kept); a
    /// second redaction replaces the first (boxes are always burnt into the original).
    pub async fn redact(&self, id: i64, req: RedactionRequest) -> Result<Evidence, CoreError> {
        let ev = self.screenshot(id).await?;
        let info = ev.image.as_ref().expect("checked screenshot");
        check_boxes(&req.boxes, info.width, info.height)?;
        let (bytes, _) = self.image(id).await?;
        let boxes = req.boxes.clone();
        let png = tokio::task::spawn_blocking(move || burn(&bytes, &boxes)).await??;
        self.db
            .run(move |s| s.set_redaction(id, &png, &req.boxes))
            .await
    }

    /// The redacted copy of screenshot `id` (PNG), or `NotFound` when it has none. A copy
    /// whose file went missing (a restored backup) is made again from the boxes.
    pub async fn redacted_image(&self, id: i64) -> Result<Vec<u8>, CoreError> {
        let ev = self.screenshot(id).await?;
        let Some(r) = ev.redaction else {
            return Err(CoreError::NotFound(format!(
                "screenshot {id} has no redacted copy; POST /api/v1/evidence/{id}/redactions makes one"
            )));
        };
        let path = self.db.run(move |s| s.redacted_image(id)).await?;
        if let Some(p) = path {
            if let Ok(b) = tokio::fs::read(&p).await {
                return Ok(b);
            }
        }
        let (bytes, _) = self.image(id).await?;
        tokio::task::spawn_blocking(move || burn(&bytes, &r.boxes)).await?
    }

    /// What exports and posts send for screenshot `id`: its redacted copy when it has one,
    /// else the original. Bytes and MIME type.
    pub async fn shared_image(&self, id: i64) -> Result<(Vec<u8>, String), CoreError> {
        let ev = self.get(id).await?;
        if ev.redaction.is_some() {
            return Ok((self.redacted_image(id).await?, "image/png".into()));
        }
        self.image(id).await
    }

    /// Things on screenshot `id` that look sensitive (emails, IPs, tokens, customer ids), from
    /// its analysis and text. Text-only: the findings carry no coordinates.
    pub async fn redaction_suggestions(
        &self,
        id: i64,
    ) -> Result<Vec<RedactionSuggestion>, CoreError> {
        let ev = self.screenshot(id).await?;
        let mut text = format!("{}\n{}\n", ev.title, ev.content);
        if let Some(f) = &ev.findings {
            strings(f, &mut text);
        }
        Ok(suggestions_in(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_emails_ips_tokens_and_customer_ids_but_not_words() {
        let s = suggestions_in(
            "Login failed for jane.doe@example.com from 10.20.30.40 (customer cus_8f3kQ2) \
             token ghp_abcdefghijklmnopqrstuvwxyz0123 key Zx8pQ2rT7vL1mN4bK9sD3fG6 \
             at checkout-api v2.41.0 during the rollout",
        );
        let kinds: Vec<(&str, &str)> = s
            .iter()
            .map(|x| (x.kind.as_str(), x.text.as_str()))
            .collect();
        assert!(
            kinds.contains(&("email", "jane.doe@example.com")),
            "{kinds:?}"
        );
        assert!(kinds.contains(&("ip", "10.20.30.40")), "{kinds:?}");
        assert!(kinds.contains(&("customer_id", "cus_8f3kQ2")), "{kinds:?}");
        assert!(
            kinds.contains(&("secret", "ghp_abcdefghijklmnopqrstuvwxyz0123")),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("secret", "Zx8pQ2rT7vL1mN4bK9sD3fG6")),
            "{kinds:?}"
        );
        assert!(!kinds
            .iter()
            .any(|(_, t)| t.contains("checkout") || t.contains("v2.41")));
        assert!(s.iter().all(|x| x.region.is_none()));
    }

    #[test]
    fn boxes_are_checked_against_the_image() {
        let b = |x, y, width, height| RedactionBox {
            x,
            y,
            width,
            height,
        };
        assert!(check_boxes(&[b(0, 0, 10, 10)], 10, 10).is_ok());
        let e = check_boxes(&[b(0, 0, 10, 10), b(5, 5, 6, 1)], 10, 10).unwrap_err();
        assert!(
            e.to_string().contains("boxes[1]") && e.to_string().contains("outside"),
            "{e}"
        );
        let e = check_boxes(&[b(1, 1, 0, 3)], 10, 10).unwrap_err();
        assert!(e.to_string().contains("zero size"), "{e}");
        assert!(check_boxes(&[], 10, 10).is_err());
        assert!(check_boxes(&[b(u32::MAX, 0, 2, 2)], 10, 10).is_err());
    }
}
