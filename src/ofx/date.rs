//! OFX date-time values: `YYYYMMDD[HHMM[SS[.XXX]]][offset[:name]]`.
//!
//! Values become `DateTime<FixedOffset>` so the bank's own offset survives for
//! display while comparisons stay instant-based. A value without a zone is UTC,
//! as the OFX spec says.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

/// A point in time as the file stated it, offset included.
pub type OfxDateTime = DateTime<FixedOffset>;

/// Parses any OFX date form; the error is a short reason for `OfxError`.
pub fn parse_date(raw: &str) -> Result<OfxDateTime, &'static str> {
    let raw = raw.trim();
    let (stamp, zone) = match raw.split_once('[') {
        Some((stamp, rest)) => {
            let zone = rest.strip_suffix(']').ok_or("time zone lacks ']'")?;
            (stamp.trim_end(), Some(zone))
        }
        None => (raw, None),
    };
    let local = parse_stamp(stamp)?;
    let offset = zone.map_or(Ok(utc()), parse_zone)?;
    offset.from_local_datetime(&local).single().ok_or("date out of range")
}

/// Writes the long form with milliseconds and an explicit zone, which every
/// OFX reader accepts.
pub fn format_date(value: &OfxDateTime) -> String {
    // The fields written one by one: chrono's `format` reads its pattern again on every call,
    // and a statement has a date per transaction.
    let (date, time) = (value.date_naive(), value.time());
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:03}[{}]",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second(),
        value.timestamp_subsec_millis(),
        format_zone(value.offset())
    )
}

fn utc() -> FixedOffset {
    Utc.fix()
}

fn parse_stamp(stamp: &str) -> Result<NaiveDateTime, &'static str> {
    let (digits, fraction) = match stamp.split_once('.') {
        Some((digits, fraction)) => (digits, Some(fraction)),
        None => (stamp, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("date has non-digit characters");
    }
    let date = parse_day(digits)?;
    let time = match digits.len() {
        8 => [0, 0, 0],
        12 => [number(digits, 8, 10), number(digits, 10, 12), 0],
        14 => [number(digits, 8, 10), number(digits, 10, 12), number(digits, 12, 14)],
        _ => return Err("date must have 8, 12 or 14 digits"),
    };
    let nanos = fraction.map_or(Ok(0), parse_fraction)?;
    date.and_hms_nano_opt(time[0], time[1], time[2], nanos).ok_or("time of day out of range")
}

fn parse_day(digits: &str) -> Result<NaiveDate, &'static str> {
    if digits.len() < 8 {
        return Err("date must have 8, 12 or 14 digits");
    }
    let year = i32::try_from(number(digits, 0, 4)).map_err(|_| "bad year")?;
    NaiveDate::from_ymd_opt(year, number(digits, 4, 6), number(digits, 6, 8)).ok_or("day out of range")
}

/// Callers have checked that the slice is ASCII digits of at most 4 characters.
fn number(digits: &str, from: usize, to: usize) -> u32 {
    value_of_digits(&digits[from..to])
}

/// The value of up to nine ASCII digits, which callers have checked: without `str::parse`'s
/// checks again, or a copy, since every transaction has a date or two (session 20's profile).
fn value_of_digits(digits: &str) -> u32 {
    digits.bytes().fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
}

fn parse_fraction(fraction: &str) -> Result<u32, &'static str> {
    let valid = (1..=9).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err("fractional seconds must be 1 to 9 digits");
    }
    let scale = 10u32.pow(u32::try_from(9 - fraction.len()).unwrap_or(0));
    Ok(value_of_digits(fraction) * scale)
}

/// `-5:EST`, `+5.30:IST`, `0:GMT`, `-5`. Two fraction digits are minutes
/// (`5.30` = 5h30m, as banks in India write it); one digit is tenths of an hour
/// (`5.5` = 5h30m), the reading other clients use.
fn parse_zone(zone: &str) -> Result<FixedOffset, &'static str> {
    let offset = zone.split(':').next().unwrap_or_default().trim();
    let (negative, magnitude) = match offset.as_bytes().first() {
        Some(b'-') => (true, &offset[1..]),
        Some(b'+') => (false, &offset[1..]),
        _ => (false, offset),
    };
    let (hours, fraction) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let hours: i32 = small_number(hours, 1..=2)?;
    let minutes = match fraction.len() {
        0 => 0,
        1 => small_number(fraction, 1..=1)? * 6,
        _ => small_number(fraction, 2..=2)?,
    };
    if minutes >= 60 {
        return Err("time zone minutes out of range");
    }
    let seconds = (hours * 60 + minutes) * 60;
    FixedOffset::east_opt(if negative { -seconds } else { seconds }).ok_or("time zone offset out of range")
}

fn small_number(text: &str, lengths: std::ops::RangeInclusive<usize>) -> Result<i32, &'static str> {
    if !lengths.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad time zone offset");
    }
    i32::try_from(value_of_digits(text)).map_err(|_| "bad time zone offset")
}

fn format_zone(offset: &FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 {
        return "0:GMT".to_owned();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    match minutes % 60 {
        0 => format!("{sign}{}", minutes / 60),
        rest => format!("{sign}{}.{rest:02}", minutes / 60),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(text: &str) -> OfxDateTime {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn every_form_parses() {
        let cases = [
            ("20240115", "2024-01-15T00:00:00+00:00"),
            ("202401151230", "2024-01-15T12:30:00+00:00"),
            ("20240115123045", "2024-01-15T12:30:45+00:00"),
            ("20240115123045.123", "2024-01-15T12:30:45.123+00:00"),
            ("20240115123045.123[-5:EST]", "2024-01-15T12:30:45.123-05:00"),
            ("20240115123045[+5.30:IST]", "2024-01-15T12:30:45+05:30"),
            ("20240115123045[5.5:IST]", "2024-01-15T12:30:45+05:30"),
            ("20240115123045.000[0:GMT]", "2024-01-15T12:30:45+00:00"),
            ("20240115[-5]", "2024-01-15T00:00:00-05:00"),
            ("20240115120000[-3.30:NST]", "2024-01-15T12:00:00-03:30"),
            ("  20240115120000 [+1:CET] ", "2024-01-15T12:00:00+01:00"),
        ];
        for (raw, expected) in cases {
            let parsed = parse_date(raw).unwrap();
            assert_eq!(parsed, at(expected), "{raw}");
            assert_eq!(parsed.offset(), at(expected).offset(), "{raw}");
        }
    }

    #[test]
    fn bad_forms_are_errors() {
        let bad = [
            "",
            "2024011",
            "20241315",
            "20240230",
            "20240115250000",
            "2024011512",
            "20240115123045.",
            "20240115123045.1234567890",
            "20240115[-5:EST",
            "20240115[x]",
            "20240115[-99]",
            "20240115[+5.75]",
            "２０２４０１１５",
            "20240115123045.12a",
        ];
        for raw in bad {
            assert!(parse_date(raw).is_err(), "{raw:?} should fail");
        }
    }

    #[test]
    fn format_round_trips_with_offset() {
        for text in [
            "2024-01-15T12:30:45.123-05:00",
            "2024-01-15T12:30:45+05:30",
            "2024-01-15T00:00:00+00:00",
            "1999-12-31T23:59:59.999-03:30",
        ] {
            let value = at(text);
            let back = parse_date(&format_date(&value)).unwrap();
            assert_eq!(back, value);
            assert_eq!(back.offset(), value.offset());
        }
        assert_eq!(format_date(&at("2024-01-15T12:30:45.123-05:00")), "20240115123045.123[-5]");
    }
}
