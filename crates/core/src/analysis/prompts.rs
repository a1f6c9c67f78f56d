//! What the model is asked. Small models follow a schema best when it is shown as an example
//! and the answer is requested as JSON only; the parser copes when they do not.

/// System message for every run.
pub const SYSTEM: &str = "You are an SRE assistant reading screenshots taken during a production \
incident. Report only what is visible on the screen; never guess values you cannot read.";

/// The full analysis of a dashboard, error page, terminal or log view.
pub const ANALYZE: &str = r#"Read this screenshot from an incident and answer with one JSON object only, no prose, in this shape:
{"summary": "one or two sentences: what the screen shows and what looks wrong",
 "screen": "dashboard | error_page | terminal | logs | other",
 "panels": [{"title": "panel title", "metric": "what it measures", "unit": "ms | % | req/s | ...",
             "current": "latest value", "peak": "highest value", "trend": "rising | falling | flat | spiky",
             "anomalies": [{"description": "spike, drop, gap, ...", "start": "time read from the x axis", "end": "time or null"}]}],
 "errors": [{"message": "error text as written", "code": "status or error code, or null", "time": "time shown, or null"}],
 "timestamps": ["every time or date visible, as written"],
 "timezone": "time zone shown on the screen, or null"}
Use [] for lists with nothing in them. Copy numbers, codes and times exactly as they appear."#;

/// What changed between two screenshots (the first before, the second after), with the
/// user's own question when they asked one.
pub fn compare(q: Option<&str>) -> String {
    let ask = match q.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => format!(" In particular: {q}"),
        None => String::new(),
    };
    format!(
        "Picture 1 was taken before, picture 2 after. What changed between them? Name each \
         panel, value, error message or time that differs, quoting both values as shown, in at \
         most five short sentences. Say so if nothing visible changed.{ask}"
    )
}

/// A question about the screenshot.
pub fn question(q: &str) -> String {
    format!(
        "Answer this question about the screenshot in at most three sentences, quoting the \
         values, messages and times you see on it: {}",
        q.trim()
    )
}
