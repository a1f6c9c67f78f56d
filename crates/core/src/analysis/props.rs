//! Property tests of what parses the model's output and the times on a screen: whatever the
//! model writes, parsing never panics and the stated invariants hold.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::findings::{Anomaly, ErrorSeen, Findings, Panel};
use super::{findings, times};

/// Text shaped like model output: JSON fragments, fences, times, prose.
fn modelish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"summary\": ".to_string()),
        Just("\"panels\": [".to_string()),
        Just("\"errors\": [{\"text\": ".to_string()),
        Just("```json\n".to_string()),
        Just("\"s\":".to_string()),
        Just("\"p\":[{\"t\":".to_string()),
        Just("\"e\":[[".to_string()),
        Just("\"a\":[[".to_string()),
        Just("```".to_string()),
        Just("\"".to_string()),
        Just(", ".to_string()),
        Just("07:13:42".to_string()),
        Just("2026-11-30T07:12:58Z".to_string()),
        Just("HTTP 503".to_string()),
        "[a-zA-Z0-9 :.\\-]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// A text field as the parser keeps it: no blanks around it, never empty. Quotes, braces and
/// backslashes included, so the JSON writer has to escape them.
fn word() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,14}[!-~])?"
}

fn opt_word() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(word())
}

/// Findings as a model could report them (the screen times already hold the item times, as
/// the parser makes them).
fn findings_value() -> impl Strategy<Value = Findings> {
    let anomaly = (word(), opt_word(), opt_word()).prop_map(|(description, start, end)| Anomaly {
        description,
        start,
        end,
    });
    let panel = (
        word(),
        [opt_word(), opt_word(), opt_word(), opt_word(), opt_word()],
        prop::collection::vec(anomaly, 0..3),
    )
        .prop_map(
            |(title, [metric, unit, current, peak, trend], anomalies)| Panel {
                title,
                metric,
                unit,
                current,
                peak,
                trend,
                anomalies,
            },
        );
    let error = (word(), opt_word(), opt_word()).prop_map(|(message, code, time)| ErrorSeen {
        message,
        code,
        time,
    });
    (
        word(),
        opt_word(),
        prop::collection::vec(panel, 0..4),
        prop::collection::vec(error, 0..3),
        prop::collection::vec(word(), 0..3),
        opt_word(),
    )
        .prop_map(|(summary, screen, panels, errors, timestamps, timezone)| {
            let mut f = Findings {
                summary,
                screen,
                panels,
                errors,
                timestamps: Vec::new(),
                timezone,
                ..Findings::default()
            };
            let items = f
                .panels
                .iter()
                .flat_map(|p| p.anomalies.iter().flat_map(|a| [&a.start, &a.end]));
            let items = items
                .chain(f.errors.iter().map(|e| &e.time))
                .flatten()
                .cloned();
            for t in timestamps.into_iter().chain(items.collect::<Vec<_>>()) {
                if !f.timestamps.contains(&t) {
                    f.timestamps.push(t);
                }
            }
            f
        })
}

/// The long form, as the first prompt asked: every key, `null` for what is unknown.
fn long_form(f: &Findings) -> String {
    serde_json::json!({
        "summary": f.summary, "screen": f.screen, "timezone": f.timezone,
        "timestamps": f.timestamps,
        "panels": f.panels.iter().map(|p| serde_json::json!({
            "title": p.title, "metric": p.metric, "unit": p.unit, "current": p.current,
            "peak": p.peak, "trend": p.trend,
            "anomalies": p.anomalies.iter().map(|a| serde_json::json!({
                "description": a.description, "start": a.start, "end": a.end,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "errors": f.errors.iter().map(|e| serde_json::json!({
            "message": e.message, "code": e.code, "time": e.time,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// The compact form, as `prompts::ANALYZE` asks: short keys, positional items, nothing empty
/// written, no item time repeated in `ts`.
fn compact_form(f: &Findings) -> String {
    use serde_json::{Map, Value};
    fn put(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    }
    /// `[first, second, third]` without trailing unknowns; an unknown inside is `""`.
    fn tuple(first: &str, rest: [&Option<String>; 2]) -> Value {
        let mut v = vec![Value::from(first)];
        let last = rest.iter().rposition(|x| x.is_some()).map_or(0, |i| i + 1);
        for x in &rest[..last] {
            v.push(x.as_deref().unwrap_or("").into());
        }
        Value::Array(v)
    }
    let mut o = Map::new();
    o.insert("s".into(), f.summary.clone().into());
    put(&mut o, "k", &f.screen);
    let mut item_times = Vec::new();
    if !f.panels.is_empty() {
        let panels = f.panels.iter().map(|p| {
            let mut m = Map::new();
            m.insert("t".into(), p.title.clone().into());
            for (k, v) in [
                ("m", &p.metric),
                ("u", &p.unit),
                ("c", &p.current),
                ("x", &p.peak),
                ("r", &p.trend),
            ] {
                put(&mut m, k, v);
            }
            if !p.anomalies.is_empty() {
                let a = p.anomalies.iter().map(|a| {
                    item_times.extend(a.start.iter().chain(&a.end).cloned());
                    tuple(&a.description, [&a.start, &a.end])
                });
                m.insert("a".into(), Value::Array(a.collect()));
            }
            Value::Object(m)
        });
        o.insert("p".into(), Value::Array(panels.collect()));
    }
    if !f.errors.is_empty() {
        let e = f.errors.iter().map(|e| {
            item_times.extend(e.time.iter().cloned());
            tuple(&e.message, [&e.code, &e.time])
        });
        o.insert("e".into(), Value::Array(e.collect()));
    }
    let own: Vec<&String> = f
        .timestamps
        .iter()
        .filter(|t| !item_times.contains(t))
        .collect();
    if !own.is_empty() {
        o.insert(
            "ts".into(),
            own.into_iter().cloned().collect::<Vec<_>>().into(),
        );
    }
    put(&mut o, "tz", &f.timezone);
    Value::Object(o).to_string()
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn findings_parse_any_output_and_keep_it(raw in modelish()) {
        let f = findings::parse(&raw);
        prop_assert_eq!(&f.raw, &raw);
        prop_assert!(
            ["json", "fenced-json", "repaired-json", "prose"].contains(&f.parse.as_str()),
            "{}", f.parse
        );
        let _ = findings::render(&f);
    }

    #[test]
    fn repair_only_answers_json_objects(raw in modelish()) {
        if let Some(v) = findings::repair(&raw) {
            prop_assert!(v.is_object(), "{v}");
        }
    }

    #[test]
    fn a_truncated_answer_keeps_what_was_complete(summary in "[a-zA-Z0-9 ]{1,40}", cut in 0usize..200) {
        let full = serde_json::json!({"summary": summary, "panels": [{"title": "p99", "unit": "ms"}]}).to_string();
        let cut = cut.min(full.len());
        if let Some(v) = findings::repair(&full[..cut]) {
            if let Some(s) = v.get("summary").and_then(|s| s.as_str()) {
                prop_assert!(summary.starts_with(s), "{s:?} is not a prefix of {summary:?}");
            }
        }
        let whole = findings::repair(&full).unwrap();
        prop_assert_eq!(whole["summary"].as_str(), Some(summary.as_str()));
    }

    #[test]
    fn compact_and_long_forms_parse_to_the_same_findings(f in findings_value()) {
        let (long, compact) = (long_form(&f), compact_form(&f));
        let (mut l, mut c) = (findings::parse(&long), findings::parse(&compact));
        prop_assert_eq!(c.parse.as_str(), "json");
        prop_assert!(compact.len() <= long.len(), "{compact} longer than {long}");
        (l.raw, l.parse, c.raw, c.parse) = Default::default();
        // The same times, though a screen time that is also an item time moves behind the
        // screen's other times (compact writes it once, with its item); the rest is exact.
        let sorted = |f: &Findings| { let mut t = f.timestamps.clone(); t.sort(); t };
        prop_assert_eq!(sorted(&l), sorted(&c));
        prop_assert_eq!(sorted(&f), sorted(&c));
        l.timestamps.clone_from(&c.timestamps);
        prop_assert_eq!(&l, &c);
        let mut want = f.clone();
        (want.timestamps, c.timestamps) = (Vec::new(), Vec::new());
        prop_assert_eq!(want, c);
    }

    #[test]
    fn the_stop_comes_exactly_where_the_object_closes(
        f in findings_value(),
        cuts in prop::collection::vec(0usize..400, 0..12),
        tail in prop_oneof![Just(""), Just("\n```"), Just(" {\"more\": 1}")],
    ) {
        // Streamed in arbitrary pieces, after a fence, with text after the object.
        let body = compact_form(&f);
        let text = format!("```json\n{body}{tail}");
        let end = "```json\n".len() + body.len();
        let mut at: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).filter(|c| text.is_char_boundary(*c)).collect();
        at.extend([0, text.len()]);
        at.sort_unstable();
        at.dedup();
        let mut watch = opslens_vlm::generate::JsonEnd::new();
        let mut stopped_after = None;
        for w in at.windows(2) {
            if watch.feed(&text[w[0]..w[1]]) {
                stopped_after = Some(w[1]);
                break;
            }
        }
        // It stops in the piece that holds the closing brace, never before it.
        let stop = stopped_after.expect("the object closed");
        prop_assert!(stop >= end, "stopped at {stop}, the object ends at {end}: {text}");
        let piece_start = at.iter().rev().find(|c| **c < stop).copied().unwrap_or(0);
        prop_assert!(piece_start < end, "{text}");
    }

    #[test]
    fn found_times_are_pieces_of_the_text(text in modelish()) {
        for t in findings::find_times(&text) {
            prop_assert!(text.contains(&t), "{t:?} not in the text");
        }
    }

    #[test]
    fn a_time_without_a_date_lands_at_most_ten_minutes_after_the_shot(
        h in 0u32..24, m in 0u32..60, s in 0u32..60, taken in instant(),
        tz in prop_oneof![Just(None), Just(Some("UTC")), Just(Some("+02:00")), Just(Some("-05:30")), Just(Some("CEST"))],
    ) {
        let written = format!("{h:02}:{m:02}:{s:02}");
        if let Some(at) = times::resolve(&written, tz, taken) {
            prop_assert!(at <= taken + Duration::minutes(10), "{at} after {taken}");
            prop_assert!(at > taken - Duration::days(2), "{at} long before {taken}");
        }
    }

    #[test]
    fn resolving_never_panics(written in modelish(), tz in proptest::option::of(any::<String>()), taken in instant()) {
        let _ = times::resolve(&written, tz.as_deref(), taken);
        let _ = times::offset_of(tz.as_deref().unwrap_or(""));
    }
}
