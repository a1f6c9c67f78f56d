//! Turning what the model wrote into typed findings: JSON as asked, JSON in a code fence, JSON
//! cut off by the token limit (repaired by closing what is open), or plain prose (mined for
//! errors and times). The raw text is always kept beside the result.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What an analysis found on a screenshot; stored as the evidence's `findings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Findings {
    /// One or two sentences: what the screen shows and what is wrong.
    pub summary: String,
    /// `dashboard`, `error_page`, `terminal`, `logs` or `other`, as the model judged it.
    pub screen: Option<String>,
    /// Panels of a dashboard.
    pub panels: Vec<Panel>,
    /// Error messages and codes read from the screen.
    pub errors: Vec<ErrorSeen>,
    /// Times read from the screen, verbatim, each once: those the model listed, then those of
    /// anomalies and errors it did not (the compact answer never repeats them).
    pub timestamps: Vec<String>,
    /// Time zone shown on the screen (`UTC`, `+02:00`, `Europe/Berlin`), if any.
    pub timezone: Option<String>,
    /// How the text was read: `json`, `fenced-json`, `repaired-json` or `prose`.
    pub parse: String,
    /// The model's text, verbatim.
    pub raw: String,
}

/// One panel of a dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// What it measures.
    pub metric: Option<String>,
    /// Unit of its values.
    pub unit: Option<String>,
    /// Latest value shown.
    pub current: Option<String>,
    /// Highest value shown.
    pub peak: Option<String>,
    /// `rising`, `falling`, `flat`, `spiky` or free text.
    pub trend: Option<String>,
    /// Unusual stretches of the series.
    pub anomalies: Vec<Anomaly>,
}

/// An unusual stretch of a series, with its times as read from the axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Anomaly {
    /// What happens (spike, drop, gap, …).
    pub description: String,
    /// Start as read from the axis (`14:05`, `2026-11-27 14:05`).
    pub start: Option<String>,
    /// End, if visible.
    pub end: Option<String>,
}

/// An error read from the screen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorSeen {
    /// The message.
    pub message: String,
    /// A status or error code (`503`, `ECONNREFUSED`, `ORA-00060`).
    pub code: Option<String>,
    /// When it happened, if shown.
    pub time: Option<String>,
}

/// Reads the model's output. Never fails: the worst case is prose with the text as summary.
pub fn parse(raw: &str) -> Findings {
    let text = strip_think(raw);
    let (value, how) = match extract_json(&text) {
        Some((v, how)) => (Some(v), how),
        None => (None, "prose"),
    };
    let mut f = match value.as_ref().and_then(|v| v.as_object()) {
        Some(obj) => from_object(obj),
        None => from_prose(&text),
    };
    if value.is_some() && f.summary.is_empty() && f.panels.is_empty() && f.errors.is_empty() {
        // JSON that says nothing we understand: read it as prose instead of showing nothing.
        f = from_prose(&text);
        f.parse = "prose".into();
    } else {
        f.parse = how.into();
    }
    if f.timestamps.is_empty() {
        f.timestamps = find_times(&text);
    }
    f.raw = raw.to_string();
    f
}

fn strip_think(raw: &str) -> String {
    let mut s = raw.to_string();
    while let (Some(a), Some(b)) = (s.find("<think>"), s.find("</think>")) {
        if b < a {
            break;
        }
        s.replace_range(a..b + "</think>".len(), "");
    }
    s.trim().to_string()
}

fn extract_json(text: &str) -> Option<(Value, &'static str)> {
    let t = text.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
        return Some((v, "json"));
    }
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        let body = body.find("```").map_or(body, |end| &body[..end]);
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(body.trim()) {
            return Some((v, "fenced-json"));
        }
        if let Some(v) = repair(body) {
            return Some((v, "repaired-json"));
        }
    }
    let open = t.find('{')?;
    let candidate = &t[open..];
    if let Some(close) = candidate.rfind('}') {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&candidate[..=close]) {
            return Some((v, if open == 0 { "json" } else { "fenced-json" }));
        }
    }
    repair(candidate).map(|v| (v, "repaired-json"))
}

/// Closes a JSON text cut off mid-way: drops the unfinished last member, closes the open
/// string, arrays and objects. Returns an object or nothing.
pub fn repair(text: &str) -> Option<Value> {
    let s = &text[text.find('{')?..];
    let mut stack: Vec<char> = Vec::new();
    let mut in_str = false;
    let mut escaped = false;
    // Byte offsets after which the text is a valid prefix to close: after a complete value
    // inside a container (before a comma), with the stack at that point.
    let mut cuts: Vec<(usize, Vec<char>)> = Vec::new();
    for (i, c) in s.char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' => {
                stack.pop();
                if stack.is_empty() {
                    return serde_json::from_str(&s[..=i]).ok();
                }
                cuts.push((i + 1, stack.clone()));
            }
            ',' => cuts.push((i, stack.clone())),
            _ => {}
        }
    }
    // Try the longest prefix first: the text as-is with open things closed, then each cut.
    let mut attempts: Vec<(String, Vec<char>)> = Vec::new();
    let mut whole = s.trim_end().to_string();
    if in_str {
        whole.push('"');
    }
    attempts.push((whole, stack.clone()));
    for (at, st) in cuts.into_iter().rev() {
        attempts.push((s[..at].trim_end().trim_end_matches(',').to_string(), st));
    }
    for (mut prefix, st) in attempts {
        for closer in st.iter().rev() {
            prefix.push(*closer);
        }
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&prefix) {
            return Some(v);
        }
    }
    None
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field(o: &serde_json::Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| text_of(o.get(*n)))
}

fn list<'a>(o: &'a serde_json::Map<String, Value>, names: &[&str]) -> Vec<&'a Value> {
    names
        .iter()
        .find_map(|n| o.get(*n).and_then(|v| v.as_array()))
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The `i`-th item of a positional list (`["spike", "14:05", "14:12"]`) as text.
fn nth(a: &[Value], i: usize) -> Option<String> {
    text_of(a.get(i))
}

// Each field is read under its long name (as the first prompt asked), its compact key (as
// `prompts::ANALYZE` asks now) and the names small models tend to invent.
const SUMMARY: &[&str] = &["summary", "s", "description", "overview"];
const SCREEN: &[&str] = &["screen", "k", "kind", "type"];
const PANELS: &[&str] = &["panels", "p", "charts", "graphs"];
const ERRORS: &[&str] = &["errors", "e", "error_messages"];
const TIMESTAMPS: &[&str] = &["timestamps", "ts", "times"];
const TIMEZONE: &[&str] = &["timezone", "tz", "time_zone"];

fn anomaly(a: &Value) -> Option<Anomaly> {
    match a {
        Value::String(s) => Some(Anomaly {
            description: s.clone(),
            ..Anomaly::default()
        }),
        // Compact: [description, start, end], the times optional.
        Value::Array(a) => Some(Anomaly {
            description: nth(a, 0).unwrap_or_else(|| "anomaly".into()),
            start: nth(a, 1),
            end: nth(a, 2),
        }),
        Value::Object(a) => Some(Anomaly {
            description: field(a, &["description", "d", "what", "type", "kind"])
                .unwrap_or_else(|| "anomaly".into()),
            start: field(a, &["start", "s", "from", "time", "at", "begin"]),
            end: field(a, &["end", "e", "to", "until"]),
        }),
        _ => None,
    }
}

fn error_seen(e: &Value) -> Option<ErrorSeen> {
    match e {
        Value::String(s) => Some(ErrorSeen {
            message: s.clone(),
            code: find_code(s),
            time: None,
        }),
        // Compact: [message, code, time], the code and time optional ("" or null when only
        // the time is known).
        Value::Array(a) => Some(ErrorSeen {
            message: nth(a, 0)?,
            code: nth(a, 1),
            time: nth(a, 2),
        }),
        Value::Object(e) => Some(ErrorSeen {
            message: field(e, &["message", "m", "text", "error"])?,
            code: field(e, &["code", "c", "status", "status_code"]),
            time: field(e, &["time", "t", "timestamp", "at"]),
        }),
        _ => None,
    }
}

fn from_object(o: &serde_json::Map<String, Value>) -> Findings {
    let panels = list(o, PANELS)
        .into_iter()
        .filter_map(|p| {
            let p = p.as_object()?;
            Some(Panel {
                title: field(p, &["title", "t", "name", "panel"])
                    .unwrap_or_else(|| "untitled panel".into()),
                metric: field(p, &["metric", "m", "query", "series"]),
                unit: field(p, &["unit", "u", "units"]),
                current: field(p, &["current", "c", "value", "last", "current_value"]),
                peak: field(p, &["peak", "x", "max", "peak_value", "maximum"]),
                trend: field(p, &["trend", "r", "direction"]),
                anomalies: list(p, &["anomalies", "a", "spikes", "events"])
                    .into_iter()
                    .filter_map(anomaly)
                    .collect(),
            })
        })
        .collect();
    let errors = list(o, ERRORS).into_iter().filter_map(error_seen).collect();
    let mut f = Findings {
        summary: field(o, SUMMARY).unwrap_or_default(),
        screen: field(o, SCREEN),
        panels,
        errors,
        timestamps: list(o, TIMESTAMPS)
            .into_iter()
            .filter_map(|t| text_of(Some(t)))
            .collect(),
        timezone: field(o, TIMEZONE),
        ..Findings::default()
    };
    add_item_times(&mut f);
    f
}

/// Adds the times of anomalies and errors to the screen's times, once each: the compact form
/// does not repeat them in `ts`, and the long form sometimes forgets them.
fn add_item_times(f: &mut Findings) {
    let items = f
        .panels
        .iter()
        .flat_map(|p| p.anomalies.iter().flat_map(|a| [&a.start, &a.end]))
        .chain(f.errors.iter().map(|e| &e.time))
        .flatten()
        .cloned()
        .collect::<Vec<_>>();
    for t in items {
        if !f.timestamps.contains(&t) {
            f.timestamps.push(t);
        }
    }
}

fn find_code(s: &str) -> Option<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .find(|w| {
            (w.len() == 3 && w.starts_with(['4', '5']) && w.chars().all(|c| c.is_ascii_digit()))
                || (w.len() >= 5
                    && w.starts_with('E')
                    && w[1..].chars().all(|c| c.is_ascii_uppercase()))
                || (w.contains('-')
                    && w.split('-').count() == 2
                    && w.split('-')
                        .nth(1)
                        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                    && w.split('-').next().is_some_and(|p| {
                        !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase())
                    }))
        })
        .map(str::to_string)
}

const ERROR_WORDS: &[&str] = &[
    "error",
    "exception",
    "failed",
    "failure",
    "fatal",
    "panic",
    "timeout",
    "timed out",
    "refused",
    "unavailable",
    "denied",
    "traceback",
];

/// Drops control characters and undecodable bytes (a confused model emits them) so the
/// readable text stays readable; the raw text keeps them.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !(c.is_control() && *c != '\n' && *c != '\t') && *c != '\u{FFFD}')
        .collect()
}

fn from_prose(text: &str) -> Findings {
    let text = &clean(text);
    let paragraph = text
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty())
        .unwrap_or("");
    let summary: String = paragraph.chars().take(600).collect();
    let errors = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            let low = l.to_ascii_lowercase();
            ERROR_WORDS.iter().any(|w| low.contains(w))
        })
        .take(20)
        .map(|l| ErrorSeen {
            message: l
                .trim_start_matches(['-', '*', ' '])
                .chars()
                .take(300)
                .collect(),
            code: find_code(l),
            time: find_times(l).into_iter().next(),
        })
        .collect();
    Findings {
        summary,
        errors,
        ..Findings::default()
    }
}

/// Clock times (`14:05`, `14:05:09`) and ISO dates with times, in order of appearance.
pub fn find_times(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // h:mm or hh:mm, not part of a longer number or of another time.
        let starts =
            digit(i) && (i == 0 || !(digit(i - 1) || b[i - 1] == b':' || b[i - 1] == b'.'));
        let hlen = if digit(i + 1) { 2 } else { 1 };
        let c = i + hlen;
        if starts && b.get(c) == Some(&b':') && digit(c + 1) && digit(c + 2) {
            let mut end = c + 3;
            if b.get(end) == Some(&b':') && digit(end + 1) && digit(end + 2) {
                end += 3;
            }
            let h: u32 = text[i..c].parse().unwrap_or(99);
            let m: u32 = text[c + 1..c + 3].parse().unwrap_or(99);
            if !digit(end) && h < 24 && m < 60 {
                // Include a date right before it (`2026-11-27 14:05`, `2026-11-27T14:05`).
                let s = match i.checked_sub(11) {
                    // `get`: a byte offset inside a multi-byte character is no date.
                    Some(d)
                        if text.get(d..d + 10).is_some_and(is_date)
                            && matches!(b[d + 10], b' ' | b'T') =>
                    {
                        d
                    }
                    _ => i,
                };
                let t = text[s..end].to_string();
                if !out.contains(&t) {
                    out.push(t);
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Readable text of the findings, for the evidence's `content` (searchable, shown in exports).
pub fn render(f: &Findings) -> String {
    let mut out = String::new();
    if !f.summary.is_empty() {
        out.push_str(&f.summary);
        out.push('\n');
    }
    if !f.panels.is_empty() {
        out.push_str("\nPanels:\n");
        for p in &f.panels {
            out.push_str(&format!("- {}", p.title));
            let what: Vec<String> = [p.metric.clone(), p.unit.clone().map(|u| format!("in {u}"))]
                .into_iter()
                .flatten()
                .collect();
            if !what.is_empty() {
                out.push_str(&format!(" ({})", what.join(", ")));
            }
            let mut vals = Vec::new();
            if let Some(c) = &p.current {
                vals.push(format!("now {c}"));
            }
            if let Some(m) = &p.peak {
                vals.push(format!("peak {m}"));
            }
            if let Some(t) = &p.trend {
                vals.push(t.clone());
            }
            if !vals.is_empty() {
                out.push_str(&format!(": {}", vals.join(", ")));
            }
            out.push('\n');
            for a in &p.anomalies {
                let when = match (&a.start, &a.end) {
                    (Some(s), Some(e)) => format!(" ({s}–{e})"),
                    (Some(s), None) => format!(" (from {s})"),
                    _ => String::new(),
                };
                out.push_str(&format!("  ! {}{when}\n", a.description));
            }
        }
    }
    if !f.errors.is_empty() {
        out.push_str("\nErrors on screen:\n");
        for e in &f.errors {
            let code = e
                .code
                .as_deref()
                .map(|c| format!("[{c}] "))
                .unwrap_or_default();
            let time = e
                .time
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default();
            out.push_str(&format!("- {code}{}{time}\n", e.message));
        }
    }
    if !f.timestamps.is_empty() || f.timezone.is_some() {
        out.push_str("\nTimes on screen: ");
        out.push_str(&f.timestamps.join(", "));
        if let Some(tz) = &f.timezone {
            out.push_str(&format!(" (time zone {tz})"));
        }
        out.push('\n');
    }
    if out.trim().is_empty() {
        out = format!(
            "The model gave no readable findings. Its text: {}",
            f.raw.trim()
        );
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DASHBOARD_JSON: &str = r#"{
  "summary": "API latency spiked at 14:05 while the error rate rose to 12%.",
  "screen": "dashboard",
  "panels": [
    {"title": "p99 latency", "metric": "http_request_duration_seconds p99", "unit": "ms",
     "current": 850, "peak": "2300", "trend": "spiky",
     "anomalies": [{"description": "spike to 2.3 s", "start": "14:05", "end": "14:12"}]},
    {"title": "Error rate", "unit": "%", "current": "12", "trend": "rising", "anomalies": []}
  ],
  "errors": [{"message": "upstream connect error", "code": "503"}],
  "timestamps": ["14:00", "14:15"],
  "timezone": "UTC"
}"#;

    #[test]
    fn plain_json_is_read_into_typed_findings() {
        let f = parse(DASHBOARD_JSON);
        assert_eq!(f.parse, "json");
        assert_eq!(f.panels.len(), 2);
        let p = &f.panels[0];
        assert_eq!(p.title, "p99 latency");
        assert_eq!(p.current.as_deref(), Some("850"));
        assert_eq!(p.peak.as_deref(), Some("2300"));
        assert_eq!(p.anomalies[0].start.as_deref(), Some("14:05"));
        assert_eq!(f.errors[0].code.as_deref(), Some("503"));
        assert_eq!(f.timezone.as_deref(), Some("UTC"));
        assert_eq!(f.raw, DASHBOARD_JSON);
        let text = render(&f);
        assert!(
            text.contains(
                "p99 latency (http_request_duration_seconds p99, in ms): now 850, peak 2300, spiky"
            ),
            "{text}"
        );
        assert!(text.contains("! spike to 2.3 s (14:05–14:12)"), "{text}");
        assert!(text.contains("[503] upstream connect error"), "{text}");
    }

    /// The committed answers for the dashboard-like pictures (see
    /// `crates/core/testdata/answers/README.md`), each written in the long form the first
    /// prompt asked for and in the compact form asked for now.
    const ANSWERS: &[(&str, &str, &str)] = &[
        (
            "cpu-panel",
            include_str!("../../testdata/answers/cpu-panel.long.json"),
            include_str!("../../testdata/answers/cpu-panel.compact.json"),
        ),
        (
            "p99-panels",
            include_str!("../../testdata/answers/p99-panels.long.json"),
            include_str!("../../testdata/answers/p99-panels.compact.json"),
        ),
        (
            "six-panels",
            include_str!("../../testdata/answers/six-panels.long.json"),
            include_str!("../../testdata/answers/six-panels.compact.json"),
        ),
        (
            "checkout-incident",
            include_str!("../../testdata/answers/checkout-incident.long.json"),
            include_str!("../../testdata/answers/checkout-incident.compact.json"),
        ),
    ];

    #[test]
    fn compact_and_long_answers_give_the_same_findings() {
        for (name, long, compact) in ANSWERS {
            let (mut l, mut c) = (parse(long), parse(compact));
            assert_eq!(
                (l.parse.as_str(), c.parse.as_str()),
                ("json", "json"),
                "{name}"
            );
            assert!(compact.len() < long.len(), "{name}");
            (l.raw, c.raw) = (String::new(), String::new());
            assert_eq!(l, c, "{name}");
            assert_eq!(render(&l), render(&c), "{name}");
        }
        let c = parse(ANSWERS[3].2);
        assert_eq!(c.panels.len(), 4);
        assert_eq!(c.panels[0].peak.as_deref(), Some("2300"));
        assert_eq!(c.panels[0].anomalies[0].end.as_deref(), Some("14:12"));
        assert_eq!(c.panels[1].anomalies[0].end, None);
        assert_eq!(c.errors[1].code, None, "an empty code is no code");
        assert_eq!(c.errors[1].time.as_deref(), Some("14:06:30"));
        // The times of items come after the screen's own, once each.
        assert_eq!(
            c.timestamps,
            ["13:45", "14:45", "14:05", "14:12", "14:04", "14:06:12", "14:06:30"]
        );
        // Missing titles read as in the long form.
        assert_eq!(parse(ANSWERS[2].2).panels[5].title, "untitled panel");
    }

    #[test]
    fn compact_items_in_any_shape() {
        let f = parse(
            r#"{"s":"x","e":[["boom",null,"03:04"],["only a message"],[],{"m":"obj","c":"E42","t":"05:06"}],
                "p":[{"t":"A","a":[["up"],"down",{"d":"gap","s":"01:02","e":"01:05"},[null,"07:08"]]}]}"#,
        );
        let e: Vec<_> = f
            .errors
            .iter()
            .map(|e| (e.message.as_str(), e.code.as_deref(), e.time.as_deref()))
            .collect();
        assert_eq!(
            e,
            [
                ("boom", None, Some("03:04")),
                ("only a message", None, None),
                ("obj", Some("E42"), Some("05:06"))
            ]
        );
        let a: Vec<_> = f.panels[0]
            .anomalies
            .iter()
            .map(|a| (a.description.as_str(), a.start.as_deref(), a.end.as_deref()))
            .collect();
        assert_eq!(
            a,
            [
                ("up", None, None),
                ("down", None, None),
                ("gap", Some("01:02"), Some("01:05")),
                ("anomaly", Some("07:08"), None)
            ]
        );
        // Cut off by the token limit in the middle of a positional list: what was whole stays.
        let cut = r#"{"s":"Pool exhausted","e":[["timeout acquiring connection","","14:06:30"],["upstream conn"#;
        let f = parse(cut);
        assert_eq!(f.parse, "repaired-json");
        assert_eq!(f.errors[0].time.as_deref(), Some("14:06:30"));
    }

    #[test]
    fn json_in_a_code_fence_with_chatter_around_it() {
        let raw = format!("Here is the analysis of the dashboard:\n\n```json\n{DASHBOARD_JSON}\n```\nLet me know if you need more.");
        let f = parse(&raw);
        assert_eq!(f.parse, "fenced-json");
        assert_eq!(f.panels.len(), 2);
        assert_eq!(f.raw, raw);
        let think = format!("<think>the user wants JSON {{</think>{DASHBOARD_JSON}");
        assert_eq!(parse(&think).parse, "json");
    }

    #[test]
    fn json_cut_off_by_the_token_limit_is_repaired() {
        // Cut inside the second panel's title string.
        let cut = DASHBOARD_JSON.find("\"Error rate").unwrap() + 7;
        let raw = &DASHBOARD_JSON[..cut];
        let f = parse(raw);
        assert_eq!(f.parse, "repaired-json");
        assert!(f.summary.starts_with("API latency spiked"));
        assert_eq!(f.panels[0].anomalies[0].end.as_deref(), Some("14:12"));
        assert!(!f.panels.is_empty());
        // Cut right after a key.
        let raw = "{\"summary\": \"Checkout returns 500\", \"errors\": [{\"message\": \"Internal Server Error\", \"code\":";
        let f = parse(raw);
        assert_eq!(f.parse, "repaired-json");
        assert_eq!(f.summary, "Checkout returns 500");
        assert_eq!(f.errors[0].message, "Internal Server Error");
        // Cut in the middle of an escaped string.
        let raw = r#"```json
{"summary": "Pod \"api-7\" is crash-looping", "errors": ["Back-off restarting failed container at 03:1"#;
        let f = parse(raw);
        assert_eq!(f.parse, "repaired-json");
        assert_eq!(f.summary, "Pod \"api-7\" is crash-looping");
    }

    #[test]
    fn prose_is_mined_for_errors_and_times() {
        let raw = "The screenshot shows a Grafana dashboard for the checkout service.\nLatency rises sharply at 14:05 UTC.\n\n- Error: connection refused to db-primary:5432 at 2026-11-27 14:06\n- HTTP 503 Service Unavailable on /api/pay";
        let f = parse(raw);
        assert_eq!(f.parse, "prose");
        assert!(f
            .summary
            .starts_with("The screenshot shows a Grafana dashboard"));
        assert_eq!(f.errors.len(), 2, "{:?}", f.errors);
        assert_eq!(f.errors[0].time.as_deref(), Some("2026-11-27 14:06"));
        assert_eq!(f.errors[1].code.as_deref(), Some("503"));
        assert_eq!(f.timestamps, vec!["14:05", "2026-11-27 14:06"]);
        assert!(!render(&f).is_empty());
    }

    #[test]
    fn garbage_still_yields_readable_content_and_keeps_the_raw_text() {
        let raw = "ĠĠ}} {{ ]] lorem 99:99 ipsum";
        let f = parse(raw);
        assert_eq!(f.parse, "prose");
        assert!(f.timestamps.is_empty());
        assert_eq!(f.raw, raw);
        assert!(!render(&f).is_empty());
        assert_eq!(parse("").summary, "");
        assert!(render(&parse("")).contains("no readable findings"));
    }

    #[test]
    fn times_are_found_with_their_dates() {
        assert_eq!(
            find_times("at 9:05, 14:05:30 and 2026-01-02T03:04"),
            vec!["9:05", "14:05:30", "2026-01-02T03:04"]
        );
        assert!(find_times("v1.2:3 123:45 25:00 12:60").is_empty());
    }
}
