//! SVG charts drawn on the server: a sparkline of hourly success rates, stacked bars of failing
//! connections by side, and an incident's timeline. No chart library, no script.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use crate::incident::store::HourlyOutcomes;

/// The success rate of each of the last 24 hours, oldest first; `None` for hours without attempts.
pub fn hourly_rates(rows: &[HourlyOutcomes], institution_id: uuid::Uuid) -> [Option<f64>; 24] {
    let mut rates = [None; 24];
    for row in rows.iter().filter(|row| row.institution_id == institution_id) {
        let Ok(hours_ago) = usize::try_from(row.hours_ago) else { continue };
        if hours_ago < 24 && row.attempts > 0 {
            rates[23 - hours_ago] = Some(ratio(row.successes, row.attempts));
        }
    }
    rates
}

/// Attempts and successes summed over the hours `0..hours` ago.
pub fn totals(rows: &[HourlyOutcomes], institution_id: uuid::Uuid, hours: i32) -> (i64, i64) {
    rows.iter()
        .filter(|row| row.institution_id == institution_id && row.hours_ago < hours)
        .fold((0, 0), |(attempts, successes), row| (attempts + row.attempts, successes + row.successes))
}

pub fn ratio(part: i64, whole: i64) -> f64 {
    // Counts far below 2^52: no precision is lost that a percentage could show.
    #[allow(clippy::cast_precision_loss)]
    let value = part as f64 / whole.max(1) as f64;
    value
}

pub fn percent(part: i64, whole: i64) -> String {
    if whole == 0 { "no attempts".to_owned() } else { format!("{:.0}%", ratio(part, whole) * 100.0) }
}

const SPARK_WIDTH: f64 = 120.0;
const SPARK_HEIGHT: f64 = 28.0;

/// 24 hourly success rates as small bars, oldest on the left; an hour without attempts is a
/// grey tick, so a quiet hour is not mistaken for a failing one.
pub fn sparkline(rates: &[Option<f64>; 24], label: &str) -> Markup {
    let slot = SPARK_WIDTH / 24.0;
    html! {
        svg.spark width=(SPARK_WIDTH) height=(SPARK_HEIGHT) viewBox={ "0 0 " (SPARK_WIDTH) " " (SPARK_HEIGHT) } role="img" aria-label=(label) {
            title { (label) }
            @for (hour, rate) in rates.iter().enumerate() {
                @let x = {
                    #[allow(clippy::cast_precision_loss)]
                    let x = hour as f64 * slot + 0.5;
                    format!("{x:.1}")
                };
                @match rate {
                    Some(rate) => {
                        @let height = (rate * (SPARK_HEIGHT - 2.0)).max(1.5);
                        rect class=(if *rate < 0.5 { "bar-bad" } else { "bar" }) x=(x) y=(format!("{:.1}", SPARK_HEIGHT - height))
                            width=(format!("{:.1}", slot - 1.0)) height=(format!("{height:.1}")) {}
                    },
                    None => rect.spark-gap x=(x) y=(SPARK_HEIGHT - 2.0) width=(format!("{:.1}", slot - 1.0)) height="2" {},
                }
            }
        }
    }
}

/// One stacked bar: bank side, user side and other failures, scaled to `max`.
pub fn side_bar(bank: i64, user: i64, other: i64, max: i64, label: &str) -> Markup {
    let width = 160.0;
    let scale = |count: i64| ratio(count, max.max(1)) * width;
    let (bank_w, user_w, other_w) = (scale(bank), scale(user), scale(other));
    html! {
        svg width=(width) height="14" viewBox={ "0 0 " (width) " 14" } role="img" aria-label=(label) {
            title { (label) }
            rect.bar-bad x="0" y="2" width=(format!("{bank_w:.1}")) height="10" {}
            rect.bar-user x=(format!("{bank_w:.1}")) y="2" width=(format!("{user_w:.1}")) height="10" {}
            rect.bar-other x=(format!("{:.1}", bank_w + user_w)) y="2" width=(format!("{other_w:.1}")) height="10" {}
        }
    }
}

/// Connections by state as horizontal bars.
pub fn state_bars(counts: &[(String, i64)]) -> Markup {
    let max = counts.iter().map(|(_, count)| *count).max().unwrap_or(0).max(1);
    let row = 20.0;
    #[allow(clippy::cast_precision_loss)]
    let height = row * counts.len() as f64;
    html! {
        svg width="100%" height=(height) viewBox={ "0 0 300 " (height) } preserveAspectRatio="xMinYMin meet" role="img"
            aria-label="Connections by health state" {
            @for (index, (state, count)) in counts.iter().enumerate() {
                @let y = {
                    #[allow(clippy::cast_precision_loss)]
                    let y = index as f64 * row;
                    y
                };
                text x="0" y=(y + 14.0) { (state.replace('_', " ")) }
                rect.bar x="130" y=(y + 4.0) width=(format!("{:.1}", ratio(*count, max) * 130.0)) height="12" {}
                text x=(format!("{:.1}", 134.0 + ratio(*count, max) * 130.0)) y=(y + 14.0) { (count) }
            }
        }
    }
}

/// An incident's life on a line: opened, expected end, resolved (or now).
pub fn incident_timeline(
    opened: DateTime<Utc>,
    expected_end: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    let end = resolved.unwrap_or(now).max(expected_end);
    let span = (end - opened).num_seconds().max(1);
    let x = |at: DateTime<Utc>| 10.0 + ratio((at - opened).num_seconds().clamp(0, span), span) * 380.0;
    let marks = [
        (Some(opened), "opened"),
        (Some(expected_end), "expected end"),
        (resolved, "resolved"),
        (resolved.is_none().then_some(now), "now"),
    ];
    let present: Vec<(DateTime<Utc>, &str)> =
        marks.iter().filter_map(|(at, label)| at.map(|at| (at, *label))).collect();
    // One row of text per mark, so marks close in time do not write over each other.
    #[allow(clippy::cast_precision_loss)]
    let height = 34.0 + 14.0 * present.len() as f64;
    html! {
        svg width="100%" height=(height) viewBox={ "0 0 400 " (height) } preserveAspectRatio="xMinYMin meet" role="img"
            aria-label="Incident timeline: opened, expected end and resolution" {
            line.tick x1="10" y1="16" x2="390" y2="16" {}
            @for (row, (at, label)) in present.iter().enumerate() {
                @let (position, y) = {
                    #[allow(clippy::cast_precision_loss)]
                    let y = 38.0 + 14.0 * row as f64;
                    (x(*at), y)
                };
                line.tick x1=(format!("{position:.1}")) y1="8" x2=(format!("{position:.1}")) y2=(format!("{:.1}", y - 10.0)) {}
                text x=(format!("{position:.1}")) y=(format!("{y:.1}")) text-anchor=(if position > 200.0 { "end" } else { "start" }) {
                    (label) " " (at.format("%H:%M"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_without_attempts_are_gaps() {
        let id = uuid::Uuid::new_v4();
        let rows = [
            HourlyOutcomes { institution_id: id, hours_ago: 0, attempts: 4, successes: 3 },
            HourlyOutcomes { institution_id: id, hours_ago: 23, attempts: 2, successes: 2 },
        ];
        let rates = hourly_rates(&rows, id);
        assert_eq!(rates[23], Some(0.75));
        assert_eq!(rates[0], Some(1.0));
        assert_eq!(rates.iter().flatten().count(), 2);
        assert_eq!(totals(&rows, id, 1), (4, 3));
        assert_eq!(totals(&rows, id, 24), (6, 5));
        let svg = sparkline(&rates, "x").into_string();
        assert_eq!(svg.matches("<rect").count(), 24, "{svg}");
    }
}
