//! Sprig's date functions as Higress runs them: times are passed between functions as text
//! (`now` renders as Go's `time.Time` string, `2026-12-06 23:05:01.123456789 +0000 UTC`), and
//! the formatting functions take Go reference layouts (`2006-01-02 15:04:05`). A time argument
//! may be that text, RFC 3339, or Unix seconds; anything else means now (sprig's fallback, and
//! what Higress's string-typed `now` always hits). An unknown zone name means UTC (sprig). The
//! zone database is built in (jiff's bundled tzdb), so results do not depend on the host.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// Go's `time.Time.String()` layout: how times travel between functions.
pub(super) const GO_STRING: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

/// The current time as `now` renders it (Go's `time.Time.String()`, in UTC).
pub(super) fn now_text() -> String {
    let mut out = String::with_capacity(40);
    format(&mut out, GO_STRING, &Timestamp::now().to_zoned(TimeZone::UTC));
    out
}

/// A Go duration (`300ms`, `-1.5h`, `2h45m`): sprig's `dateModify`.
pub(super) fn go_duration(s: &str) -> Option<jiff::SignedDuration> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(jiff::SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|&n| n > 0)?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += value * scale;
        rest = &rest[unit..];
    }
    if !nanos.is_finite() || nanos > 9.2e18 {
        return None;
    }
    let d = jiff::SignedDuration::from_nanos(nanos as i64);
    Some(if neg { -d } else { d })
}

/// A time argument: Go's `time.Time` text, RFC 3339, or Unix seconds; otherwise now.
pub(super) fn instant(text: Option<&str>, seconds: Option<i64>) -> Timestamp {
    if let Some(s) = seconds {
        return Timestamp::from_second(s).unwrap_or_else(|_| Timestamp::now());
    }
    text.and_then(|t| parse_go_string(t).or_else(|| t.parse::<Timestamp>().ok()))
        .unwrap_or_else(Timestamp::now)
}

/// `2026-12-06 23:05:01.123456789 +0000 UTC` (the fraction optional, a monotonic `m=...`
/// suffix ignored).
fn parse_go_string(t: &str) -> Option<Timestamp> {
    let mut parts = t.split(' ');
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    let rfc = format!("{date}T{time}{}:{}", offset.get(..3)?, offset.get(3..5)?);
    rfc.parse::<Timestamp>().ok()
}

/// The zone called `name` (IANA), UTC when there is none by that name; `Local` is UTC too (the
/// gateway's output must not depend on the host it runs on).
pub(super) fn zone(name: &str) -> TimeZone {
    if name.is_empty() || name == "Local" || name == "UTC" {
        return TimeZone::UTC;
    }
    jiff::tz::db().get(name).unwrap_or(TimeZone::UTC)
}

/// Appends `z` formatted with the Go reference layout `layout` (`Mon Jan 2 15:04:05 MST 2006`).
pub(super) fn format(out: &mut String, layout: &str, z: &Zoned) {
    use std::fmt::Write as _;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let month = MONTHS[usize::from(z.month().unsigned_abs()).saturating_sub(1) % 12];
    let day = DAYS[usize::from(z.weekday().to_monday_zero_offset().unsigned_abs()) % 7];
    let hour12 = match z.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = z.offset().seconds();
    let mut rest = layout;
    while !rest.is_empty() {
        let (chunk, len) = next_chunk(rest);
        match chunk {
            Chunk::Literal => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            Chunk::LongMonth => out.push_str(month),
            Chunk::Month => out.push_str(&month[..3]),
            Chunk::NumMonth => _ = write!(out, "{}", z.month()),
            Chunk::ZeroMonth => _ = write!(out, "{:02}", z.month()),
            Chunk::LongWeekDay => out.push_str(day),
            Chunk::WeekDay => out.push_str(&day[..3]),
            Chunk::Day => _ = write!(out, "{}", z.day()),
            Chunk::UnderDay => _ = write!(out, "{:>2}", z.day()),
            Chunk::ZeroDay => _ = write!(out, "{:02}", z.day()),
            Chunk::UnderYearDay => _ = write!(out, "{:>3}", z.day_of_year()),
            Chunk::ZeroYearDay => _ = write!(out, "{:03}", z.day_of_year()),
            Chunk::Hour => _ = write!(out, "{:02}", z.hour()),
            Chunk::Hour12 => _ = write!(out, "{hour12}"),
            Chunk::ZeroHour12 => _ = write!(out, "{hour12:02}"),
            Chunk::Minute => _ = write!(out, "{}", z.minute()),
            Chunk::ZeroMinute => _ = write!(out, "{:02}", z.minute()),
            Chunk::Second => _ = write!(out, "{}", z.second()),
            Chunk::ZeroSecond => _ = write!(out, "{:02}", z.second()),
            Chunk::LongYear => _ = write!(out, "{:04}", z.year()),
            Chunk::Year => _ = write!(out, "{:02}", z.year().rem_euclid(100)),
            Chunk::Pm(upper) => out.push_str(match (z.hour() >= 12, upper) {
                (true, true) => "PM",
                (true, false) => "pm",
                (false, true) => "AM",
                (false, false) => "am",
            }),
            Chunk::Tz => {
                let info = z.time_zone().to_offset_info(z.timestamp());
                match info.abbreviation() {
                    "" => write_offset(out, offset, false, true, false), // Go's -0700 fallback
                    abbrev => out.push_str(abbrev),
                }
            }
            Chunk::Offset { z: zulu, colon, minutes, seconds } => {
                if zulu && offset == 0 {
                    out.push('Z');
                } else {
                    write_offset(out, offset, colon, minutes, seconds);
                }
            }
            Chunk::Fraction { digits, trim, sep } => {
                let mut frac = format!("{:09}", z.subsec_nanosecond());
                frac.truncate(digits);
                if trim {
                    while frac.ends_with('0') {
                        frac.pop();
                    }
                }
                if !frac.is_empty() {
                    out.push(sep);
                    out.push_str(&frac);
                }
            }
        }
        rest = &rest[len..];
    }
}

/// `-07`, `-0700`, `-07:00`, `-070000` or `-07:00:00`.
fn write_offset(out: &mut String, seconds: i32, colon: bool, minutes: bool, secs: bool) {
    use std::fmt::Write as _;
    out.push(if seconds < 0 { '-' } else { '+' });
    let a = seconds.unsigned_abs();
    let _ = write!(out, "{:02}", a / 3600);
    if minutes {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", a / 60 % 60);
    }
    if secs {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", a % 60);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Literal,
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm(bool),
    Tz,
    Offset { z: bool, colon: bool, minutes: bool, seconds: bool },
    Fraction { digits: usize, trim: bool, sep: char },
}

/// The layout element at the start of `s` and its length in bytes (Go's `nextStdChunk`, in its
/// order of precedence).
fn next_chunk(s: &str) -> (Chunk, usize) {
    let b = s.as_bytes();
    let at = |p: &str| s.starts_with(p);
    match b[0] {
        b'J' if at("January") => (Chunk::LongMonth, 7),
        b'J' if at("Jan") => (Chunk::Month, 3),
        b'M' if at("Monday") => (Chunk::LongWeekDay, 6),
        b'M' if at("Mon") => (Chunk::WeekDay, 3),
        b'M' if at("MST") => (Chunk::Tz, 3),
        b'0' if at("002") => (Chunk::ZeroYearDay, 3),
        b'0' if b.len() > 1 && (b'1'..=b'6').contains(&b[1]) => (
            match b[1] {
                b'1' => Chunk::ZeroMonth,
                b'2' => Chunk::ZeroDay,
                b'3' => Chunk::ZeroHour12,
                b'4' => Chunk::ZeroMinute,
                b'5' => Chunk::ZeroSecond,
                _ => Chunk::Year,
            },
            2,
        ),
        b'1' if at("15") => (Chunk::Hour, 2),
        b'1' => (Chunk::NumMonth, 1),
        b'2' if at("2006") => (Chunk::LongYear, 4),
        b'2' => (Chunk::Day, 1),
        b'_' if at("_2006") => (Chunk::Literal, 1), // "_" then the year
        b'_' if at("__2") => (Chunk::UnderYearDay, 3),
        b'_' if at("_2") => (Chunk::UnderDay, 2),
        b'3' => (Chunk::Hour12, 1),
        b'4' => (Chunk::Minute, 1),
        b'5' => (Chunk::Second, 1),
        b'P' if at("PM") => (Chunk::Pm(true), 2),
        b'p' if at("pm") => (Chunk::Pm(false), 2),
        b'-' | b'Z' => {
            let z = b[0] == b'Z';
            let forms: [(&str, bool, bool, bool); 5] = [
                ("070000", false, true, true),
                ("07:00:00", true, true, true),
                ("0700", false, true, false),
                ("07:00", true, true, false),
                ("07", false, false, false),
            ];
            for (f, colon, minutes, seconds) in forms {
                if s[1..].starts_with(f) {
                    return (Chunk::Offset { z, colon, minutes, seconds }, 1 + f.len());
                }
            }
            (Chunk::Literal, 1)
        }
        sep @ (b'.' | b',') if b.len() > 1 && (b[1] == b'0' || b[1] == b'9') => {
            let digit = b[1];
            let run = b[1..].iter().take_while(|&&c| c == digit).count();
            // Only a run not followed by another digit is a fraction.
            if b.get(1 + run).is_some_and(u8::is_ascii_digit) {
                return (Chunk::Literal, 1);
            }
            (Chunk::Fraction { digits: run.min(9), trim: digit == b'9', sep: char::from(sep) }, 1 + run)
        }
        _ => (Chunk::Literal, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(layout: &str, rfc3339: &str, zone_name: &str) -> String {
        let ts: Timestamp = rfc3339.parse().unwrap();
        let mut out = String::new();
        format(&mut out, layout, &ts.to_zoned(zone(zone_name)));
        out
    }

    #[test]
    fn go_layouts() {
        let t = "2026-03-04T05:06:07.089Z";
        assert_eq!(at("2006-01-02 15:04:05", t, "UTC"), "2026-03-04 05:06:07");
        assert_eq!(at("20060102", t, "Asia/Shanghai"), "20260304");
        assert_eq!(at("Monday, 2006-01-02 15:04:05", t, "Asia/Shanghai"), "Wednesday, 2026-03-04 13:06:07");
        assert_eq!(at("Mon Jan _2 3:4:5 PM MST 06", t, "UTC"), "Wed Mar  4 5:6:7 AM UTC 26");
        assert_eq!(
            at("January 2, 2006 03pm -07:00 Z07:00", t, "America/New_York"),
            "March 4, 2026 12am -05:00 -05:00"
        );
        assert_eq!(at("15:04:05.000 .999999 Z0700", t, "UTC"), "05:06:07.089 .089 Z");
        assert_eq!(at("002 __2 1 2", t, "UTC"), "063  63 3 4");
        assert_eq!(at("2006-01-02T15:04:05Z07:00", t, "Asia/Kolkata"), "2026-03-04T10:36:07+05:30");
        // An unknown zone is UTC (sprig's dateInZone).
        assert_eq!(at("15:04 MST", t, "Mars/Olympus"), "05:06 UTC");
        // Digits that are not layout elements stay literal runs where Go keeps them.
        assert_eq!(at("7 8 9", t, "UTC"), "7 8 9");
    }

    #[test]
    fn time_arguments() {
        let ts: Timestamp = "2026-03-04T05:06:07Z".parse().unwrap();
        assert_eq!(instant(Some("2026-03-04 05:06:07 +0000 UTC"), None), ts);
        assert_eq!(
            instant(Some("2026-03-04 13:06:07.5 +0800 CST m=+0.001"), None),
            ts + jiff::SignedDuration::from_millis(500)
        );
        assert_eq!(instant(Some("2026-03-04T05:06:07Z"), None), ts);
        assert_eq!(instant(None, Some(ts.as_second())), ts);
        // Anything else is now.
        let before = Timestamp::now();
        assert!(instant(Some("yesterday"), None) >= before);
        assert_eq!(go_duration("-1.5h"), Some(jiff::SignedDuration::from_mins(-90)));
        assert_eq!(go_duration("2h45m30s"), Some(jiff::SignedDuration::from_secs(9930)));
        assert_eq!(go_duration("300ms"), Some(jiff::SignedDuration::from_millis(300)));
        assert_eq!(go_duration("1d"), None);
        assert_eq!(go_duration("h"), None);
        let text = now_text();
        assert!(
            instant(Some(&text), None) >= before.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap(),
            "{text}"
        );
    }
}
