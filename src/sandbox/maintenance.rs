//! When the `maintenance` institution is down.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

/// A maintenance window, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceWindow {
    Never,
    Always,
    /// Every day from `start` for `length` (which may run past midnight).
    Daily {
        start: NaiveTime,
        length: TimeDelta,
    },
}

impl MaintenanceWindow {
    /// `None` outside the window; inside it, how long until it ends (`None` for `Always`).
    pub fn check(&self, now: DateTime<Utc>) -> Option<Option<Duration>> {
        let (start, length) = match self {
            Self::Never => return None,
            Self::Always => return Some(None),
            Self::Daily { start, length } => (*start, *length),
        };
        let today = now.date_naive().and_time(start).and_utc();
        // Yesterday's window may still be open just after midnight.
        [today - TimeDelta::days(1), today]
            .into_iter()
            .find(|opened| *opened <= now && now < *opened + length)
            .map(|opened| (opened + length - now).to_std().ok())
    }
}

impl FromStr for MaintenanceWindow {
    type Err = String;

    /// `never`, `always`, or a daily window `HH:MM-HH:MM` in UTC (`23:30-01:00` runs past midnight).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "never" => return Ok(Self::Never),
            "always" => return Ok(Self::Always),
            _ => {}
        }
        let invalid = || format!("`{text}` is not never, always or a daily window such as 02:00-04:00");
        let (start, end) = text.split_once('-').ok_or_else(invalid)?;
        let start = NaiveTime::parse_from_str(start.trim(), "%H:%M").map_err(|_| invalid())?;
        let end = NaiveTime::parse_from_str(end.trim(), "%H:%M").map_err(|_| invalid())?;
        let mut length = end - start;
        if length <= TimeDelta::zero() {
            length += TimeDelta::days(1);
        }
        Ok(Self::Daily { start, length })
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("never"),
            Self::Always => f.write_str("always"),
            Self::Daily { start, length } => {
                write!(f, "{}-{} UTC daily", start.format("%H:%M"), (*start + *length).format("%H:%M"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_windows_including_past_midnight() {
        let night: MaintenanceWindow = "23:30-01:00".parse().unwrap();
        assert_eq!(night.check(at("2026-03-02T00:30:00Z")), Some(Some(Duration::from_secs(1800))));
        assert_eq!(night.check(at("2026-03-02T23:45:00Z")), Some(Some(Duration::from_secs(75 * 60))));
        assert_eq!(night.check(at("2026-03-02T01:00:00Z")), None);
        let early: MaintenanceWindow = "02:00-04:00".parse().unwrap();
        assert_eq!(early.check(at("2026-03-02T03:00:00Z")), Some(Some(Duration::from_secs(3600))));
        assert_eq!(early.check(at("2026-03-02T05:00:00Z")), None);
        assert_eq!(early.to_string(), "02:00-04:00 UTC daily");
    }

    #[test]
    fn never_always_and_bad_input() {
        let now = at("2026-03-02T03:00:00Z");
        assert_eq!("always".parse::<MaintenanceWindow>().unwrap().check(now), Some(None));
        assert_eq!("never".parse::<MaintenanceWindow>().unwrap().check(now), None);
        for bad in ["", "sometimes", "02:00", "25:00-01:00", "02:00-xx"] {
            assert!(bad.parse::<MaintenanceWindow>().is_err(), "{bad}");
        }
    }
}
