//! Reading times people type and times written in logs.
//!
//! People type `07:13`, `07:13:42Z` or a full ISO-8601 time with an offset; a time without a
//! date is the latest such time that is not in the future, and a time without a zone is taken
//! in the zone the caller assumes (the API: UTC), which the answer names so nobody is misled.
//! Logs carry ISO-8601 (also `kubectl logs --timestamps`), syslog (`Nov 30 07:12:58`), nginx
//! (`[30/Nov/2026:07:12:58 +0000]`) and klog (`I1130 07:12:58.123`) stamps; the earliest one is
//! when the evidence happened.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use opslens_domain::Timestamp;

use crate::CoreError;

/// How far ahead of now a given time may lie (clock skew, a planned maintenance start).
pub const MAX_AHEAD: Duration = Duration::days(1);

/// A time read from what a person typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The instant.
    pub at: Timestamp,
    /// Set when the input had no zone: the zone it was taken in (`UTC`, `+01:00`).
    pub assumed_zone: Option<String>,
}

/// Reads `input` (the value of `field`) as a time; zone-less input is taken in `zone`.
/// Refuses what does not parse and what lies more than [`MAX_AHEAD`] after `now`, naming
/// `field` so the caller knows which value to fix.
pub fn parse_time(
    field: &str,
    input: &str,
    zone: FixedOffset,
    now: Timestamp,
) -> Result<Parsed, CoreError> {
    let s = input.trim();
    let bad = || {
        CoreError::Invalid(format!(
            "{field}: cannot read {s:?} as a time; use ISO-8601 (2026-11-30T07:13:42Z, \
             2026-11-30T08:13:42+01:00) or a time of day (07:13, 07:13:42Z)"
        ))
    };
    let b = s.as_bytes();
    let (date, pos) = match read_date(b, 0) {
        Some((d, end)) if matches!(b.get(end), Some(b'T' | b't' | b' ')) => (Some(d), end + 1),
        Some((d, end)) if end == b.len() => (Some(d), end),
        _ => (None, 0),
    };
    let (time, pos) = match read_clock(b, pos) {
        Some(x) => x,
        None if date.is_some() && pos == b.len() => (NaiveTime::MIN, pos),
        None => return Err(bad()),
    };
    let rest = s[pos..].trim_start();
    let offset = if rest.is_empty() {
        None
    } else {
        match read_zone(rest.as_bytes(), 0) {
            Some((o, end)) if end == rest.len() => Some(o),
            _ => return Err(bad()),
        }
    };
    let tz = offset.unwrap_or(zone);
    let on = |d: NaiveDate| {
        tz.from_local_datetime(&NaiveDateTime::new(d, time))
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    let at = match date {
        Some(d) => on(d).ok_or_else(bad)?,
        None => {
            let today = now.with_timezone(&tz).date_naive();
            let t = on(today).ok_or_else(bad)?;
            if t > now {
                on(today.pred_opt().ok_or_else(bad)?).ok_or_else(bad)?
            } else {
                t
            }
        }
    };
    if at > now + MAX_AHEAD {
        return Err(CoreError::Invalid(format!(
            "{field}: {s:?} is more than a day in the future"
        )));
    }
    Ok(Parsed {
        at,
        assumed_zone: offset.is_none().then(|| zone_name(zone)),
    })
}

/// How far ahead a promised next update may lie.
pub const MAX_DUE: Duration = Duration::days(7);

/// Reads when something is due: `30m`, `1h`, `90s`, a time of day (the next such time) or
/// ISO-8601; it must lie after `now` and at most [`MAX_DUE`] ahead.
pub fn parse_due(
    field: &str,
    input: &str,
    zone: FixedOffset,
    now: Timestamp,
) -> Result<Timestamp, CoreError> {
    let s = input.trim().trim_start_matches('+');
    let rel = s
        .strip_suffix('m')
        .map(|n| (n, 60))
        .or_else(|| s.strip_suffix('h').map(|n| (n, 3600)))
        .or_else(|| s.strip_suffix('s').map(|n| (n, 1)))
        .and_then(|(n, unit)| n.trim().parse::<i64>().ok().map(|n| n * unit));
    let at = match rel {
        Some(secs) => now + Duration::seconds(secs),
        None => {
            // A time of day is the next such time: parse it as the last one, then step a day.
            let p = parse_time(field, s, zone, now + Duration::days(1))?;
            if p.at <= now && !s.contains('-') {
                p.at + Duration::days(1)
            } else {
                p.at
            }
        }
    };
    if at <= now {
        return Err(CoreError::Invalid(format!(
            "{field}: {input:?} is not in the future"
        )));
    }
    if at > now + MAX_DUE {
        return Err(CoreError::Invalid(format!(
            "{field}: {input:?} is more than a week ahead"
        )));
    }
    Ok(at)
}

/// `UTC` for a zero offset, else `+01:00`.
pub fn zone_name(zone: FixedOffset) -> String {
    if zone.local_minus_utc() == 0 {
        "UTC".into()
    } else {
        zone.to_string()
    }
}

/// The earliest time stamp in `text` (ISO-8601, syslog, nginx, klog), if any. Stamps without
/// a zone are UTC, without a year in `now`'s year (the year before when that would put them
/// more than a day ahead); stamps after `now + MAX_AHEAD` are ignored as not log times.
pub fn earliest_in_text(text: &str, now: Timestamp) -> Option<Timestamp> {
    let b = text.as_bytes();
    let mut best: Option<Timestamp> = None;
    let mut i = 0;
    while i < b.len() {
        let line_start = i == 0 || b[i - 1] == b'\n';
        let found = iso_at(b, i)
            .or_else(|| nginx_at(b, i))
            .or_else(|| line_start.then(|| syslog_at(b, i, now)).flatten())
            .or_else(|| line_start.then(|| klog_at(b, i, now)).flatten());
        match found {
            Some((t, end)) => {
                if t <= now + MAX_AHEAD && best.is_none_or(|b| t < b) {
                    best = Some(t);
                }
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    best
}

fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `YYYY-MM-DD` at `i`.
fn read_date(b: &[u8], i: usize) -> Option<(NaiveDate, usize)> {
    let y = digits(b, i, 4)?;
    (b.get(i + 4) == Some(&b'-') && b.get(i + 7) == Some(&b'-')).then_some(())?;
    let d = NaiveDate::from_ymd_opt(y as i32, digits(b, i + 5, 2)?, digits(b, i + 8, 2)?)?;
    Some((d, i + 10))
}

/// `H:MM`, `HH:MM`, `HH:MM:SS` and `HH:MM:SS.fff…` at `i`.
fn read_clock(b: &[u8], i: usize) -> Option<(NaiveTime, usize)> {
    let hl = if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let h = digits(b, i, hl)?;
    let mut p = i + hl;
    (b.get(p) == Some(&b':')).then_some(())?;
    let m = digits(b, p + 1, 2)?;
    p += 3;
    let mut s = 0;
    let mut nanos = 0;
    if b.get(p) == Some(&b':') {
        s = digits(b, p + 1, 2)?;
        p += 3;
        if matches!(b.get(p), Some(b'.' | b',')) && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
            p += 1;
            let start = p;
            while b.get(p).is_some_and(u8::is_ascii_digit) {
                p += 1;
            }
            let frac = &b[start..p.min(start + 9)];
            let scale = 10u32.pow(9 - frac.len() as u32);
            nanos = std::str::from_utf8(frac).ok()?.parse::<u32>().ok()? * scale;
        }
    }
    if b.get(p).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((NaiveTime::from_hms_nano_opt(h, m, s.min(59), nanos)?, p))
}

/// `Z`, `UTC`, `GMT`, `+01:00`, `+0100` or `+01` at `i`.
fn read_zone(b: &[u8], i: usize) -> Option<(FixedOffset, usize)> {
    match b.get(i)? {
        b'Z' | b'z' => Some((FixedOffset::east_opt(0)?, i + 1)),
        b'U' if b.get(i..i + 3) == Some(b"UTC") => Some((FixedOffset::east_opt(0)?, i + 3)),
        b'G' if b.get(i..i + 3) == Some(b"GMT") => Some((FixedOffset::east_opt(0)?, i + 3)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'+' { 1 } else { -1 };
            let h = digits(b, i + 1, 2)?;
            let (m, end) = if b.get(i + 3) == Some(&b':') {
                (digits(b, i + 4, 2)?, i + 6)
            } else if let Some(m) = digits(b, i + 3, 2) {
                (m, i + 5)
            } else {
                (0, i + 3)
            };
            if h > 14 || m > 59 {
                return None;
            }
            Some((
                FixedOffset::east_opt(sign * (h as i32 * 3600 + m as i32 * 60))?,
                end,
            ))
        }
        _ => None,
    }
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero offset")
}

fn at_offset(d: NaiveDate, t: NaiveTime, o: FixedOffset) -> Option<Timestamp> {
    o.from_local_datetime(&NaiveDateTime::new(d, t))
        .single()
        .map(|x| x.with_timezone(&Utc))
}

/// ISO-8601 at `i`, not glued to a preceding digit.
fn iso_at(b: &[u8], i: usize) -> Option<(Timestamp, usize)> {
    if i > 0 && b[i - 1].is_ascii_digit() {
        return None;
    }
    let (d, p) = read_date(b, i)?;
    matches!(b.get(p), Some(b'T' | b' ')).then_some(())?;
    let (t, p) = read_clock(b, p + 1)?;
    let (o, end) = read_zone(b, p).unwrap_or((utc(), p));
    Some((at_offset(d, t, o)?, end))
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(b: &[u8], i: usize) -> Option<u32> {
    let m = b.get(i..i + 3)?;
    MONTHS.iter().position(|x| *x == m).map(|p| p as u32 + 1)
}

/// A date without a year: in `now`'s year, else the year before (logs are not from the future).
fn in_recent_year(now: Timestamp, m: u32, d: u32, t: NaiveTime) -> Option<Timestamp> {
    let this = at_offset(NaiveDate::from_ymd_opt(now.year(), m, d)?, t, utc())?;
    if this <= now + MAX_AHEAD {
        return Some(this);
    }
    at_offset(NaiveDate::from_ymd_opt(now.year() - 1, m, d)?, t, utc())
}

/// nginx/Apache `30/Nov/2026:07:12:58 +0000` at `i`.
fn nginx_at(b: &[u8], i: usize) -> Option<(Timestamp, usize)> {
    if i > 0 && b[i - 1].is_ascii_digit() {
        return None;
    }
    let d = digits(b, i, 2)?;
    (b.get(i + 2) == Some(&b'/') && b.get(i + 6) == Some(&b'/')).then_some(())?;
    let m = month(b, i + 3)?;
    let y = digits(b, i + 7, 4)?;
    (b.get(i + 11) == Some(&b':')).then_some(())?;
    let (t, p) = read_clock(b, i + 12)?;
    let (o, end) = match b.get(p) {
        Some(b' ') => read_zone(b, p + 1).unwrap_or((utc(), p)),
        _ => (utc(), p),
    };
    Some((
        at_offset(NaiveDate::from_ymd_opt(y as i32, m, d)?, t, o)?,
        end,
    ))
}

/// syslog `Nov 30 07:12:58` (day space-padded) at the start of a line.
fn syslog_at(b: &[u8], i: usize, now: Timestamp) -> Option<(Timestamp, usize)> {
    let m = month(b, i)?;
    (b.get(i + 3) == Some(&b' ')).then_some(())?;
    let d = match b.get(i + 4)? {
        b' ' => digits(b, i + 5, 1)?,
        _ => digits(b, i + 4, 2)?,
    };
    (b.get(i + 6) == Some(&b' ')).then_some(())?;
    let (t, end) = read_clock(b, i + 7)?;
    Some((in_recent_year(now, m, d, t)?, end))
}

/// klog (Kubernetes components, `kubectl logs` of them) `I1130 07:12:58.123456` at the start
/// of a line.
fn klog_at(b: &[u8], i: usize, now: Timestamp) -> Option<(Timestamp, usize)> {
    matches!(b.get(i)?, b'I' | b'W' | b'E' | b'F').then_some(())?;
    let m = digits(b, i + 1, 2)?;
    let d = digits(b, i + 3, 2)?;
    (b.get(i + 5) == Some(&b' ')).then_some(())?;
    let (t, end) = read_clock(b, i + 6)?;
    Some((in_recent_year(now, m, d, t)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn t(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NOW: &str = "2026-11-30T09:00:00Z";

    fn p(s: &str) -> Result<Parsed, CoreError> {
        parse_time("occurred_at", s, utc(), t(NOW))
    }

    #[test]
    fn reads_what_people_type() {
        assert_eq!(p("07:13").unwrap().at, t("2026-11-30T07:13:00Z"));
        assert_eq!(p("07:13").unwrap().assumed_zone.as_deref(), Some("UTC"));
        let z = p("07:13:42Z").unwrap();
        assert_eq!((z.at, z.assumed_zone), (t("2026-11-30T07:13:42Z"), None));
        assert_eq!(p("08:13:42+01:00").unwrap().at, t("2026-11-30T07:13:42Z"));
        assert_eq!(
            p("2026-11-30T08:13:42.5+01:00").unwrap().at,
            t("2026-11-30T07:13:42.5Z")
        );
        assert_eq!(p("2026-11-29 23:00").unwrap().at, t("2026-11-29T23:00:00Z"));
        // A time of day later than now is yesterday's.
        assert_eq!(p("10:00").unwrap().at, t("2026-11-29T10:00:00Z"));
        // Zone-less input in a zone the caller assumes, named in the answer.
        let berlin = FixedOffset::east_opt(3600).unwrap();
        let b = parse_time("at", "08:13", berlin, t(NOW)).unwrap();
        assert_eq!(b.at, t("2026-11-30T07:13:00Z"));
        assert_eq!(b.assumed_zone.as_deref(), Some("+01:00"));
    }

    #[test]
    fn refuses_garbage_and_the_far_future_naming_the_field() {
        for bad in [
            "",
            "soon",
            "25:00",
            "07:13 tomorrow",
            "2026-13-01T00:00Z",
            "7",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("occurred_at: cannot read"), "{bad}: {e}");
        }
        let e = p("2026-12-02T09:00:00Z").unwrap_err().to_string();
        assert!(e.contains("occurred_at") && e.contains("future"), "{e}");
        assert!(p("2026-12-01T08:59:00Z").is_ok(), "within a day is fine");
    }

    #[test]
    fn reads_when_the_next_update_is_due() {
        let now = t(NOW);
        let due = |s: &str| parse_due("next_update_at", s, utc(), now);
        assert_eq!(due("30m").unwrap(), t("2026-11-30T09:30:00Z"));
        assert_eq!(due("1h").unwrap(), t("2026-11-30T10:00:00Z"));
        assert_eq!(due("09:45").unwrap(), t("2026-11-30T09:45:00Z"));
        assert_eq!(
            due("08:00").unwrap(),
            t("2026-12-01T08:00:00Z"),
            "the next 08:00"
        );
        assert!(
            due("2026-11-30T10:00:00+01:00").is_err(),
            "09:00Z is not after now"
        );
        for bad in ["0m", "later", "2026-11-29T10:00Z", "200h"] {
            let e = due(bad).unwrap_err().to_string();
            assert!(e.starts_with("next_update_at:"), "{bad}: {e}");
        }
    }

    #[test]
    fn finds_the_earliest_stamp_in_logs() {
        let now = t(NOW);
        let log = "2026-11-30T07:13:05.120Z ERROR upstream timeout\n\
                   2026-11-30T07:12:58Z INFO deploy v2.41.0 finished\n";
        assert_eq!(earliest_in_text(log, now), Some(t("2026-11-30T07:12:58Z")));
        let nginx = r#"10.0.0.1 - - [30/Nov/2026:08:12:40 +0100] "GET / HTTP/1.1" 502"#;
        assert_eq!(
            earliest_in_text(nginx, now),
            Some(t("2026-11-30T07:12:40Z"))
        );
        let syslog = "Nov 30 07:12:01 db-1 postgres[42]: too many connections\nNov  1 00:00:00 x y";
        assert_eq!(
            earliest_in_text(syslog, now),
            Some(t("2026-11-01T00:00:00Z"))
        );
        let klog = "I1130 07:11:59.123456       1 controller.go:42] synced";
        assert_eq!(
            earliest_in_text(klog, now),
            Some(t("2026-11-30T07:11:59.123456Z"))
        );
        // December stamps seen on November 30 are last year's.
        assert_eq!(
            earliest_in_text("Dec 24 10:00:00 h a: b", now),
            Some(t("2025-12-24T10:00:00Z"))
        );
        assert_eq!(earliest_in_text("no times, only 12:30 and 2026", now), None);
        assert_eq!(earliest_in_text("2027-01-01T00:00:00Z planned", now), None);
    }
}
