//! What the model is asked. Small models follow a schema best when it is shown as an example
//! and the answer is requested as JSON only; the parser copes when they do not.

/// System message for every run.
pub const SYSTEM: &str = "You are an SRE assistant reading screenshots taken during a production \
incident. Report only what is visible on the screen; never guess values you cannot read.";

/// The full analysis of a dashboard, error page, terminal or log view. Every generated token
/// costs ~0.13 s on a laptop CPU, so the answer is asked for in a compact form: one-letter
/// keys, anomalies and errors as positional lists, nothing written that is empty or unknown,
/// no time repeated; the worker stops as soon as the object closes. The parser maps it onto
/// the same [`super::findings::Findings`] as the long form (which it still reads), and adds
/// the anomaly and error times to the screen's times itself.
pub const ANALYZE: &str = r#"Read this screenshot from an incident. Answer with one minified JSON object only, no prose, no code fence:
{"s":"summary: what the screen shows and what looks wrong, 1-2 sentences","k":"dashboard|error_page|terminal|logs|other","p":[{"t":"panel title","m":"metric","u":"unit","c":"latest value","x":"peak value","r":"rising|falling|flat|spiky","a":[["anomaly: spike, drop, gap...","start time","end time"]]}],"e":[["error text as written","status or error code","time"]],"ts":["other times or dates on screen"],"tz":"time zone shown"}
Leave out every key and list item you cannot read: no nulls, no empty lists or strings. Do not repeat in ts a time given in a or e. Copy numbers, codes and times exactly."#;

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
