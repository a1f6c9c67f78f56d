//! Placing times read from a screenshot on the incident's timeline. Screens show clock times
//! (`14:05`) far more often than dates, so a bare time is taken on the day the screenshot was
//! stored, in the time zone the screen names (else this machine's), and moved to the day before
//! when it would lie in the future.

use chrono::{
    DateTime, Duration, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Utc,
};

use super::findings::{find_times, Findings};

/// The offset a time-zone label means; `None` when it names none we can read.
pub fn offset_of(tz: &str) -> Option<FixedOffset> {
    let t = tz.trim().to_ascii_uppercase();
    let rest = ["UTC", "GMT", "Z"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(&t)
        .trim();
    if rest.is_empty() {
        return FixedOffset::east_opt(0);
    }
    let sign = match rest.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &rest[1..];
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if body.len() == 4 => (body[..2].parse().ok()?, body[2..].parse().ok()?),
        None => (body.parse().ok()?, 0),
    };
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Resolves one time as written on the screen to an instant.
pub fn resolve(written: &str, tz: Option<&str>, taken_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(written.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    let offset = tz
        .and_then(offset_of)
        .unwrap_or_else(|| Local.offset_from_utc_datetime(&taken_at.naive_utc()).fix());
    let found = find_times(written).into_iter().next()?;
    let (date, time) = match found.len() > 10 && found.as_bytes()[4] == b'-' {
        true => (
            Some(NaiveDate::parse_from_str(&found[..10], "%Y-%m-%d").ok()?),
            &found[11..],
        ),
        false => (None, found.as_str()),
    };
    let time = NaiveTime::parse_from_str(time, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()?;
    let local_day = taken_at.with_timezone(&offset).date_naive();
    let at = |d: NaiveDate| {
        offset
            .from_local_datetime(&NaiveDateTime::new(d, time))
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    match date {
        Some(d) => at(d),
        None => {
            let t = at(local_day)?;
            if t > taken_at + Duration::minutes(10) {
                at(local_day.pred_opt()?)
            } else {
                Some(t)
            }
        }
    }
}

/// Timeline entries for the findings: each anomaly with a start and each error with a time.
pub fn events(f: &Findings, taken_at: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
    let tz = f.timezone.as_deref();
    let mut out = Vec::new();
    for p in &f.panels {
        for a in &p.anomalies {
            let Some(start) = a.start.as_deref() else {
                continue;
            };
            if let Some(t) = resolve(start, tz, taken_at) {
                let until = a
                    .end
                    .as_deref()
                    .map(|e| format!(" until {e}"))
                    .unwrap_or_default();
                out.push((
                    t,
                    format!("{}: {} (from {start}{until})", p.title, a.description),
                ));
            }
        }
    }
    for e in &f.errors {
        let Some(time) = e.time.as_deref() else {
            continue;
        };
        if let Some(t) = resolve(time, tz, taken_at) {
            let code = e
                .code
                .as_deref()
                .map(|c| format!("[{c}] "))
                .unwrap_or_default();
            out.push((t, format!("error {code}{} (at {time})", e.message)));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::{Anomaly, ErrorSeen, Panel};

    fn taken() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T14:30:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn clock_times_land_on_the_day_of_the_screenshot_in_its_time_zone() {
        let t = resolve("14:05", Some("UTC"), taken()).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T14:05:00+00:00");
        let t = resolve("15:05", Some("UTC+01:00"), taken()).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T14:05:00+00:00");
        // 23:50 seen at 14:30 was yesterday's.
        let t = resolve("23:50", Some("UTC"), taken()).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T23:50:00+00:00");
        let t = resolve("2026-11-25 08:00:30", Some("GMT-0500"), taken()).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T13:00:30+00:00");
        assert!(resolve("sometime", Some("UTC"), taken()).is_none());
        assert_eq!(offset_of("Europe/Berlin"), None);
    }

    #[test]
    fn anomalies_and_errors_with_times_become_events_in_time_order() {
        let f = Findings {
            panels: vec![Panel {
                title: "p99 latency".into(),
                anomalies: vec![
                    Anomaly {
                        description: "spike to 2.3 s".into(),
                        start: Some("14:05".into()),
                        end: Some("14:12".into()),
                    },
                    Anomaly {
                        description: "no time".into(),
                        start: None,
                        end: None,
                    },
                ],
                ..Panel::default()
            }],
            errors: vec![ErrorSeen {
                message: "upstream connect error".into(),
                code: Some("503".into()),
                time: Some("14:01:10".into()),
            }],
            timezone: Some("UTC".into()),
            ..Findings::default()
        };
        let ev = events(&f, taken());
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].1, "error [503] upstream connect error (at 14:01:10)");
        assert_eq!(
            ev[1].1,
            "p99 latency: spike to 2.3 s (from 14:05 until 14:12)"
        );
    }
}
