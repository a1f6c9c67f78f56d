//! Property tests of what parses the model's output and the times on a screen: whatever the
//! model writes, parsing never panics and the stated invariants hold.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

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
