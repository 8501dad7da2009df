//! Dates in exports: ISO (`2024-03-05`, `20240305`), day first (`05/03/2024`, `05.03.24`),
//! month first (`03/05/2024`) and month names (`05 Mar 2024`, `Mar 5, 2024`). The order of
//! numeric day and month is decided once for the whole column, never row by row.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The order of day and month in numeric dates that do not start with the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    DayFirst,
    MonthFirst,
}

/// A cell's date, before the column's order is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Year first or a month name: one reading only.
    Exact(NaiveDate),
    /// `a/b/y`: day-month or month-day.
    Numeric { a: u32, b: u32, year: i32, dotted: bool },
}

impl Shape {
    pub fn resolve(self, order: DateOrder) -> Option<NaiveDate> {
        match (self, order) {
            (Self::Exact(date), _) => Some(date),
            (Self::Numeric { a, b, year, .. }, DateOrder::DayFirst) => NaiveDate::from_ymd_opt(year, b, a),
            (Self::Numeric { a, b, year, .. }, DateOrder::MonthFirst) => NaiveDate::from_ymd_opt(year, a, b),
        }
    }
}

/// The cell's shape, or `None` when it is not a date (a total line's label, a blank).
pub(crate) fn shape(cell: &str) -> Option<Shape> {
    let cell = cell.trim();
    // A time after the date (`05.03.2024 11:14:40`, `2024-03-05T10:00`) is not needed.
    let date = cell.split([' ', 'T']).next().unwrap_or_default();
    if let Some(shape) = numeric(date) {
        return Some(shape);
    }
    named_month(cell).map(Shape::Exact)
}

fn numeric(date: &str) -> Option<Shape> {
    if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        let year = date[..4].parse().ok()?;
        return NaiveDate::from_ymd_opt(year, date[4..6].parse().ok()?, date[6..].parse().ok()?).map(Shape::Exact);
    }
    let separator = date.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
    let parts: Vec<&str> = date.split(separator).collect();
    let [first, second, third] = parts.as_slice() else { return None };
    let digits = |part: &str| !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit());
    if !(digits(first) && digits(second) && digits(third)) || second.len() > 2 {
        return None;
    }
    let number = |part: &str| part.parse::<u32>().ok();
    if first.len() == 4 {
        let year = i32::try_from(number(first)?).ok()?;
        return NaiveDate::from_ymd_opt(year, number(second)?, number(third)?).map(Shape::Exact);
    }
    if first.len() > 2 || !matches!(third.len(), 2 | 4) {
        return None;
    }
    let (a, b) = (number(first)?, number(second)?);
    if a == 0 || b == 0 || (a > 12 && b > 12) || a > 31 || b > 31 {
        return None;
    }
    Some(Shape::Numeric { a, b, year: full_year(third)?, dotted: separator == '.' })
}

/// Two-digit years: 70–99 are the 1900s, the rest this century.
fn full_year(text: &str) -> Option<i32> {
    let value = i32::try_from(text.parse::<u32>().ok()?).ok()?;
    Some(match (text.len(), value) {
        (2, 70..) => 1900 + value,
        (2, _) => 2000 + value,
        _ => value,
    })
}

const MONTHS: [(&str, u32); 26] = [
    ("jan", 1),
    ("feb", 2),
    ("fév", 2),
    ("fev", 2),
    ("mar", 3),
    ("mär", 3),
    ("mrz", 3),
    ("apr", 4),
    ("avr", 4),
    ("may", 5),
    ("mai", 5),
    ("jun", 6),
    ("jui", 7),
    ("jul", 7),
    ("aug", 8),
    ("aoû", 8),
    ("sep", 9),
    ("oct", 10),
    ("okt", 10),
    ("nov", 11),
    ("dec", 12),
    ("dez", 12),
    ("déc", 12),
    ("ene", 1),
    ("abr", 4),
    ("dic", 12),
];

/// `05 Mar 2024`, `5-Mar-24`, `Mar 5, 2024`, `05-MAR-2024`.
fn named_month(cell: &str) -> Option<NaiveDate> {
    let words: Vec<&str> = cell.split([' ', '-', ',', '/', '.']).filter(|w| !w.is_empty()).collect();
    if words.len() < 3 {
        return None;
    }
    let month_of = |word: &str| {
        let lower = word.to_lowercase();
        if lower.chars().count() < 3 || !lower.chars().all(char::is_alphabetic) {
            return None;
        }
        // "juin"/"juil" share three letters: the fourth decides.
        match lower.as_str() {
            "juin" => return Some(6),
            "juil" | "juillet" => return Some(7),
            _ => {}
        }
        let prefix: String = lower.chars().take(3).collect();
        MONTHS.iter().find(|(name, _)| *name == prefix).map(|(_, month)| *month)
    };
    let (day, month, year) = if let Some(month) = month_of(words[1]) {
        (words[0], month, words[2])
    } else {
        (words[1], month_of(words[0])?, words[2])
    };
    let digits = |part: &str| !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(day) || !digits(year) || !matches!(year.len(), 2 | 4) {
        return None;
    }
    NaiveDate::from_ymd_opt(full_year(year)?, month, day.parse().ok()?)
}

/// How the column's order was settled, for the warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decided {
    /// Some date fits only one order, or every date starts with the year.
    Values(DateOrder),
    /// Every date fits both orders; only one of them lists the rows in date order.
    Sequence(DateOrder),
    /// Every date fits both orders and is written with dots (`05.03.2024`): day first, the
    /// order of every locale that writes dates with dots (German, Russian, Czech, Norwegian…).
    Dots,
}

/// What a column's dates say about the order of day and month, gathered a row at a time so
/// the whole file decides without being held.
#[derive(Debug)]
pub(crate) struct Evidence {
    first_line: Option<usize>,
    day_first_only: Option<usize>,
    month_first_only: Option<usize>,
    /// Some numeric date reads differently in the two orders.
    ambiguous: bool,
    every_numeric_dotted: bool,
    day_first: Sequence,
    month_first: Sequence,
}

/// Whether every date, read in one order, resolves and the dates rise or fall throughout.
#[derive(Debug)]
struct Sequence {
    order: DateOrder,
    every_date: bool,
    last: Option<NaiveDate>,
    rising: bool,
    falling: bool,
}

impl Sequence {
    fn new(order: DateOrder) -> Self {
        Self { order, every_date: true, last: None, rising: true, falling: true }
    }

    fn add(&mut self, shape: Shape) {
        let Some(date) = shape.resolve(self.order) else {
            self.every_date = false;
            return;
        };
        if let Some(last) = self.last {
            self.rising &= last <= date;
            self.falling &= last >= date;
        }
        self.last = Some(date);
    }

    fn ordered(&self) -> bool {
        self.every_date && (self.rising || self.falling)
    }
}

impl Evidence {
    pub fn new() -> Self {
        Self {
            first_line: None,
            day_first_only: None,
            month_first_only: None,
            ambiguous: false,
            every_numeric_dotted: true,
            day_first: Sequence::new(DateOrder::DayFirst),
            month_first: Sequence::new(DateOrder::MonthFirst),
        }
    }

    pub fn add(&mut self, line: usize, shape: Shape) {
        self.first_line.get_or_insert(line);
        if let Shape::Numeric { a, b, dotted, .. } = shape {
            if a > 12 {
                self.day_first_only.get_or_insert(line);
            }
            if b > 12 {
                self.month_first_only.get_or_insert(line);
            }
            self.ambiguous |= a != b;
            self.every_numeric_dotted &= dotted;
        }
        self.day_first.add(shape);
        self.month_first.add(shape);
    }

    /// The line of the first date, if any.
    pub fn first_line(&self) -> Option<usize> {
        self.first_line
    }

    /// `Err` names the line of a date that fits neither order given the rest (conflict), or
    /// the first line when nothing tells.
    pub fn decide(&self) -> Result<Decided, (usize, String)> {
        match (self.day_first_only, self.month_first_only) {
            (Some(day), Some(month)) => Err((
                day.max(month),
                format!(
                    "dates disagree on the order of day and month (line {} reads day first, line {} month first)",
                    day, month
                ),
            )),
            (Some(_), None) => Ok(Decided::Values(DateOrder::DayFirst)),
            (None, Some(_)) => Ok(Decided::Values(DateOrder::MonthFirst)),
            (None, None) => self.by_sequence(),
        }
    }

    fn by_sequence(&self) -> Result<Decided, (usize, String)> {
        if !self.ambiguous {
            return Ok(Decided::Values(DateOrder::DayFirst));
        }
        if self.every_numeric_dotted {
            return Ok(Decided::Dots);
        }
        match (self.day_first.ordered(), self.month_first.ordered()) {
            (true, false) => Ok(Decided::Sequence(DateOrder::DayFirst)),
            (false, true) => Ok(Decided::Sequence(DateOrder::MonthFirst)),
            _ => Err((
                self.first_line.unwrap_or(1),
                "every date reads both day-first and month-first; say which with date_order".to_owned(),
            )),
        }
    }
}

/// [`Evidence`] of `cells`, decided.
#[cfg(test)]
pub(crate) fn decide(cells: &[(usize, Shape)]) -> Result<Decided, (usize, String)> {
    let mut evidence = Evidence::new();
    for &(line, shape) in cells {
        evidence.add(line, shape);
    }
    evidence.decide()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn shapes() {
        assert_eq!(shape("2024-03-05"), Some(Shape::Exact(date(2024, 3, 5))));
        assert_eq!(shape("2024/03/05 10:00"), Some(Shape::Exact(date(2024, 3, 5))));
        assert_eq!(shape("20240305"), Some(Shape::Exact(date(2024, 3, 5))));
        assert_eq!(shape("05.03.24"), Some(Shape::Numeric { a: 5, b: 3, year: 2024, dotted: true }));
        assert_eq!(shape("29-Jun-2022"), Some(Shape::Exact(date(2022, 6, 29))));
        assert_eq!(shape("01 NOV 2021"), Some(Shape::Exact(date(2021, 11, 1))));
        assert_eq!(shape("Mar 5, 2024"), Some(Shape::Exact(date(2024, 3, 5))));
        assert_eq!(shape("3 juil. 2024"), Some(Shape::Exact(date(2024, 7, 3))));
        assert_eq!(shape("Total"), None);
        assert_eq!(shape("13/13/2024"), None);
        assert_eq!(shape(""), None);
    }

    #[test]
    fn order_from_values_then_sequence() {
        let cells =
            |texts: &[&str]| texts.iter().enumerate().map(|(i, t)| (i + 2, shape(t).unwrap())).collect::<Vec<_>>();
        assert_eq!(decide(&cells(&["12/01/2026", "12/31/2026"])), Ok(Decided::Values(DateOrder::MonthFirst)));
        assert_eq!(decide(&cells(&["13/03/2021", "01/04/2021"])), Ok(Decided::Values(DateOrder::DayFirst)));
        assert_eq!(
            decide(&cells(&["05/01/2024", "10/01/2024", "02/02/2024"])),
            Ok(Decided::Sequence(DateOrder::DayFirst))
        );
        assert!(decide(&cells(&["01/02/2024", "01/03/2024"])).is_err());
        assert!(decide(&cells(&["13/01/2024", "01/13/2024"])).is_err());
    }
}
