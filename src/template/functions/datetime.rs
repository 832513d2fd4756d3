//! Packer's other time functions: `legacy_isotime` (a Go layout), `legacy_strftime` (C's
//! `strftime`), and `rfc3339_parse` / `unix_timestamp_parse` (a time broken into fields).
//! The two legacy ones format the run's fixed start time in UTC, as Packer's do.

use hcl::Value;
use hcl::eval::FuncArgs;

use super::{MONTHS, Time, WEEKDAYS, days_from_civil, is_leap, now, num_arg, s, str_arg};

pub(super) fn legacy_isotime(args: FuncArgs) -> Result<Value, String> {
    let layout = str_arg(&args, 0)?;
    Ok(s(go_layout(&layout, &Time::utc(now()))))
}

pub(super) fn legacy_strftime(args: FuncArgs) -> Result<Value, String> {
    let spec = str_arg(&args, 0)?;
    Ok(s(strftime(&spec, &Time::utc(now()))))
}

pub(super) fn rfc3339_parse(args: FuncArgs) -> Result<Value, String> {
    let mut text = str_arg(&args, 0)?;
    // Packer accepts a space between date and time as well as `T`.
    if text.len() > 10 && text.as_bytes()[10] == b' ' {
        text.replace_range(10..11, "T");
    }
    Ok(fields_object(&Time::parse(&text)?))
}

pub(super) fn unix_timestamp_parse(args: FuncArgs) -> Result<Value, String> {
    let n = num_arg(&args, 0)?;
    if n.fract() != 0.0 || n.abs() > 1.0e14 {
        return Err("argument 1 must be a whole number of seconds".to_owned());
    }
    Ok(fields_object(&Time::utc(n as i64)))
}

/// The fields Packer's `rfc3339_parse` returns, in the time's own offset.
fn fields_object(t: &Time) -> Value {
    let (y, mo, d, h, mi, sec, wd) = t.fields();
    let yday = year_day(y, mo, d);
    let (iso_year, iso_week) = iso_week(y, yday, wd);
    let n = |v: i64| Value::from(v);
    Value::Object(hcl::Map::from_iter([
        ("year".to_owned(), n(y)),
        ("year_day".to_owned(), n(yday)),
        ("month".to_owned(), n(mo)),
        ("month_name".to_owned(), s(MONTHS[(mo - 1) as usize])),
        ("day".to_owned(), n(d)),
        ("weekday".to_owned(), n(wd)),
        ("weekday_name".to_owned(), s(WEEKDAYS[wd as usize])),
        ("hour".to_owned(), n(h)),
        ("minute".to_owned(), n(mi)),
        ("second".to_owned(), n(sec)),
        ("unix".to_owned(), n(t.unix)),
        ("iso_year".to_owned(), n(iso_year)),
        ("iso_week".to_owned(), n(iso_week)),
    ]))
}

/// Day of the year, 1-based.
fn year_day(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d) - days_from_civil(y, 1, 1) + 1
}

/// ISO 8601 week-numbering year and week of a date given by year, day of year and weekday
/// (0 = Sunday).
fn iso_week(y: i64, yday: i64, weekday: i64) -> (i64, i64) {
    let iso_wd = (weekday + 6) % 7 + 1; // Monday = 1 … Sunday = 7
    let week = (yday - iso_wd + 10) / 7;
    let weeks_in = |year: i64| {
        // Weekday of 1 January (0 = Sunday); a year has 53 weeks when it starts on a Thursday,
        // or on a Wednesday in a leap year.
        let jan1 = (days_from_civil(year, 1, 1) + 4).rem_euclid(7);
        if jan1 == 4 || (jan1 == 3 && is_leap(year)) {
            53
        } else {
            52
        }
    };
    if week < 1 {
        (y - 1, weeks_in(y - 1))
    } else if week > weeks_in(y) {
        (y + 1, 1)
    } else {
        (y, week)
    }
}

/// Formats `t` with a Go time layout (`2006-01-02T15:04:05Z07:00`): the reference time's
/// parts stand for fields, everything else is copied.
fn go_layout(layout: &str, t: &Time) -> String {
    let (y, mo, d, h, mi, sec, wd) = t.fields();
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let month = MONTHS[(mo - 1) as usize];
    let weekday = WEEKDAYS[wd as usize];
    let offset = t.offset.unwrap_or(0);
    let zone = |z: bool, colon: bool, minutes: bool| {
        if z && offset == 0 {
            return "Z".to_owned();
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let (oh, om) = (offset.abs() / 3600, offset.abs() / 60 % 60);
        match (minutes, colon) {
            (false, _) => format!("{sign}{oh:02}"),
            (true, true) => format!("{sign}{oh:02}:{om:02}"),
            (true, false) => format!("{sign}{oh:02}{om:02}"),
        }
    };
    // Longest tokens first where one is a prefix of another.
    let tokens: &[(&str, &dyn Fn() -> String)] = &[
        ("January", &|| month.to_owned()),
        ("Jan", &|| month[..3].to_owned()),
        ("Monday", &|| weekday.to_owned()),
        ("Mon", &|| weekday[..3].to_owned()),
        ("MST", &|| {
            if t.offset.is_none() || offset == 0 {
                "UTC".to_owned()
            } else {
                zone(false, false, true)
            }
        }),
        ("2006", &|| format!("{y:04}")),
        ("002", &|| format!("{:03}", year_day(y, mo, d))),
        ("__2", &|| format!("{:>3}", year_day(y, mo, d))),
        ("01", &|| format!("{mo:02}")),
        ("02", &|| format!("{d:02}")),
        ("03", &|| format!("{h12:02}")),
        ("04", &|| format!("{mi:02}")),
        ("05", &|| format!("{sec:02}")),
        ("06", &|| format!("{:02}", y.rem_euclid(100))),
        ("_2", &|| format!("{d:>2}")),
        ("15", &|| format!("{h:02}")),
        ("1", &|| mo.to_string()),
        ("2", &|| d.to_string()),
        ("3", &|| h12.to_string()),
        ("4", &|| mi.to_string()),
        ("5", &|| sec.to_string()),
        ("PM", &|| if h >= 12 { "PM" } else { "AM" }.to_owned()),
        ("pm", &|| if h >= 12 { "pm" } else { "am" }.to_owned()),
        ("Z07:00", &|| zone(true, true, true)),
        ("Z0700", &|| zone(true, false, true)),
        ("Z07", &|| zone(true, false, false)),
        ("-07:00", &|| zone(false, true, true)),
        ("-0700", &|| zone(false, false, true)),
        ("-07", &|| zone(false, false, false)),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while let Some(c) = rest.chars().next() {
        // Fractional seconds: `.000` / `.999` (kiln's times are whole seconds).
        if matches!(c, '.' | ',') {
            let digits = &rest[1..];
            let n = digits.bytes().take_while(|b| *b == b'0').count();
            let n9 = digits.bytes().take_while(|b| *b == b'9').count();
            let after = |k: usize| !digits[k..].starts_with(|ch: char| ch.is_ascii_digit());
            if n > 0 && after(n) {
                out.push(c);
                out.push_str(&"0".repeat(n));
                rest = &digits[n..];
                continue;
            }
            if n9 > 0 && after(n9) {
                rest = &digits[n9..];
                continue;
            }
        }
        for (token, value) in tokens {
            if let Some(r) = rest.strip_prefix(token) {
                out.push_str(&value());
                rest = r;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Formats `t` like C's `strftime`; an unknown `%x` sequence is copied as written.
fn strftime(spec: &str, t: &Time) -> String {
    let (y, mo, d, h, mi, sec, wd) = t.fields();
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let month = MONTHS[(mo - 1) as usize];
    let weekday = WEEKDAYS[wd as usize];
    let yday = year_day(y, mo, d);
    let mut out = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(v) = chars.next() else {
            out.push('%');
            break;
        };
        let text = match v {
            'a' => weekday[..3].to_owned(),
            'A' => weekday.to_owned(),
            'b' | 'h' => month[..3].to_owned(),
            'B' => month.to_owned(),
            'c' => format!(
                "{} {} {d:>2} {h:02}:{mi:02}:{sec:02} {y}",
                &weekday[..3],
                &month[..3]
            ),
            'C' => format!("{:02}", y.div_euclid(100)),
            'd' => format!("{d:02}"),
            'D' | 'x' => format!("{mo:02}/{d:02}/{:02}", y.rem_euclid(100)),
            'e' => format!("{d:>2}"),
            'F' => format!("{y:04}-{mo:02}-{d:02}"),
            'H' => format!("{h:02}"),
            'I' => format!("{h12:02}"),
            'j' => format!("{yday:03}"),
            'k' => format!("{h:>2}"),
            'l' => format!("{h12:>2}"),
            'm' => format!("{mo:02}"),
            'M' => format!("{mi:02}"),
            'n' => "\n".to_owned(),
            'p' => if h >= 12 { "PM" } else { "AM" }.to_owned(),
            'r' => format!(
                "{h12:02}:{mi:02}:{sec:02} {}",
                if h >= 12 { "PM" } else { "AM" }
            ),
            'R' => format!("{h:02}:{mi:02}"),
            's' => t.unix.to_string(),
            'S' => format!("{sec:02}"),
            't' => "\t".to_owned(),
            'T' | 'X' => format!("{h:02}:{mi:02}:{sec:02}"),
            'u' => ((wd + 6) % 7 + 1).to_string(),
            'w' => wd.to_string(),
            'y' => format!("{:02}", y.rem_euclid(100)),
            'Y' => y.to_string(),
            'z' => t.offset_text(false),
            'Z' => {
                if t.offset.unwrap_or(0) == 0 {
                    "UTC".to_owned()
                } else {
                    t.offset_text(false)
                }
            }
            '%' => "%".to_owned(),
            other => format!("%{other}"),
        };
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Time {
        Time::parse(text).expect("valid time")
    }

    #[test]
    fn go_layouts() {
        let t = at("2024-03-05T07:08:09Z");
        #[rustfmt::skip]
        let table: &[(&str, &str)] = &[
            ("2006-01-02T15:04:05Z07:00", "2024-03-05T07:08:09Z"),
            ("2006-01-02", "2024-03-05"),
            ("20060102150405", "20240305070809"),
            ("Mon Jan _2 15:04:05 MST 2006", "Tue Mar  5 07:08:09 UTC 2024"),
            ("Monday, January 2, 2006 3:04PM", "Tuesday, March 5, 2024 7:08AM"),
            ("06-1-2 03:4:5 pm", "24-3-5 07:8:9 am"),
            ("002 __2", "065  65"),
            ("15:04:05.000 -0700 -07:00 -07 Z0700", "07:08:09.000 +0000 +00:00 +00 Z"),
            ("15:04:05.999", "07:08:09"),
            ("literal text", "literal text"),
        ];
        for (layout, want) in table {
            assert_eq!(go_layout(layout, &t), *want, "layout `{layout}`");
        }
        let offset = at("2024-03-05T07:08:09+05:30");
        assert_eq!(go_layout("15:04 Z07:00 MST", &offset), "07:08 +05:30 +0530");
    }

    #[test]
    fn strftime_table() {
        let t = at("2024-03-05T17:08:09Z");
        #[rustfmt::skip]
        let table: &[(&str, &str)] = &[
            ("%Y%m%d%H%M%S", "20240305170809"),
            ("%F %T", "2024-03-05 17:08:09"),
            ("%a %A %b %B", "Tue Tuesday Mar March"),
            ("%I %l %p %r", "05  5 PM 05:08:09 PM"),
            ("%j %u %w %y %C", "065 2 2 24 20"),
            ("%e|%k|%D|%R", " 5|17|03/05/24|17:08"),
            ("%z %Z %s", "+0000 UTC 1709658489"),
            ("100%% %q %", "100% %q %"),
        ];
        for (spec, want) in table {
            assert_eq!(strftime(spec, &t), *want, "spec `{spec}`");
        }
    }

    #[test]
    fn iso_weeks_at_year_edges() {
        #[rustfmt::skip]
        let table: &[(&str, (i64, i64))] = &[
            ("2021-01-01T00:00:00Z", (2020, 53)), // Friday
            ("2021-01-04T00:00:00Z", (2021, 1)),  // Monday
            ("2024-12-30T00:00:00Z", (2025, 1)),  // Monday
            ("2026-12-31T00:00:00Z", (2026, 53)), // Thursday
            ("2023-07-25T23:43:16Z", (2023, 30)),
        ];
        for (text, want) in table {
            let (y, mo, d, .., wd) = at(text).fields();
            assert_eq!(iso_week(y, year_day(y, mo, d), wd), *want, "{text}");
        }
    }
}
