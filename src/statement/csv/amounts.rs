//! Amounts in exports: `1,234.56`, `1.234,56`, `1 234,56`, `1'234.56`, `-3.50`, `3.50-`,
//! `(3.50)`, `€3.50`, `3,50 EUR`, `12.00 DR`. Which of `.` and `,` is the decimal mark is
//! decided once from every amount in the file, and refused when the file cannot tell.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMark {
    Dot,
    Comma,
}

/// An amount taken apart: its sign and the digits with their separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    negative: bool,
    body: String,
}

/// What one amount says about the decimal mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evidence {
    Says(DecimalMark),
    /// A lone separator followed by exactly three digits: `1,234` or `1.234`.
    Ambiguous,
    Nothing,
}

/// `None` when the cell is not an amount at all.
pub(crate) fn parts(cell: &str) -> Option<Parts> {
    let mut text = cell.trim().to_owned();
    let mut negative = false;
    if text.starts_with('(') && text.ends_with(')') && text.len() > 2 {
        negative = true;
        text = text[1..text.len() - 1].trim().to_owned();
    }
    let upper = text.to_ascii_uppercase();
    for (suffix, is_debit) in [(" DR", true), (" CR", false), ("DR", true), ("CR", false)] {
        if upper.ends_with(suffix) && text.len() > suffix.len() {
            negative ^= is_debit;
            text.truncate(text.len() - suffix.len());
            break;
        }
    }
    let text: String = text
        .chars()
        .filter(|c| {
            !c.is_alphabetic() && !matches!(c, '$' | '€' | '£' | '¥' | '₹' | ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’')
        })
        .collect();
    let text = text.replace('\u{2212}', "-");
    let (sign, body) = if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_suffix('-') {
        (true, rest)
    } else {
        (false, text.strip_prefix('+').unwrap_or(&text))
    };
    let valid =
        body.bytes().any(|b| b.is_ascii_digit()) && body.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',');
    valid.then(|| Parts { negative: negative ^ sign, body: body.to_owned() })
}

impl Parts {
    pub fn evidence(&self) -> Evidence {
        let dot = self.body.rfind('.');
        let comma = self.body.rfind(',');
        match (dot, comma) {
            (Some(dot), Some(comma)) => Evidence::Says(if dot > comma { DecimalMark::Dot } else { DecimalMark::Comma }),
            (Some(at), None) | (None, Some(at)) => {
                let mark = if dot.is_some() { DecimalMark::Dot } else { DecimalMark::Comma };
                let other = if dot.is_some() { DecimalMark::Comma } else { DecimalMark::Dot };
                let separator = if dot.is_some() { '.' } else { ',' };
                if self.body.matches(separator).count() > 1 {
                    return Evidence::Says(other);
                }
                match self.body.len() - at - 1 {
                    3 => Evidence::Ambiguous,
                    _ => Evidence::Says(mark),
                }
            }
            (None, None) => Evidence::Nothing,
        }
    }

    /// The value, reading `mark` as the decimal mark and the other separator as grouping.
    pub fn value(&self, mark: DecimalMark) -> Option<Decimal> {
        let decimal = match mark {
            DecimalMark::Dot => '.',
            DecimalMark::Comma => ',',
        };
        if self.body.matches(decimal).count() > 1 {
            return None;
        }
        let plain: String = self
            .body
            .chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(c),
                c if c == decimal => Some('.'),
                _ => None,
            })
            .collect();
        let value: Decimal = plain.parse().ok()?;
        Some(if self.negative { -value } else { value })
    }
}

/// What the file's amounts say about the decimal mark, gathered a cell at a time.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    first_dot: Option<usize>,
    first_comma: Option<usize>,
    first_ambiguous: Option<usize>,
}

impl Marks {
    pub fn add(&mut self, line: usize, parts: &Parts) {
        let slot = match parts.evidence() {
            Evidence::Says(DecimalMark::Dot) => &mut self.first_dot,
            Evidence::Says(DecimalMark::Comma) => &mut self.first_comma,
            Evidence::Ambiguous => &mut self.first_ambiguous,
            Evidence::Nothing => return,
        };
        slot.get_or_insert(line);
    }

    /// The file's decimal mark, or the line and reason it cannot be told. With no separator
    /// anywhere (whole amounts) the mark does not matter.
    pub fn decide(&self) -> Result<DecimalMark, (usize, String)> {
        match (self.first_dot, self.first_comma, self.first_ambiguous) {
            (Some(dot), Some(comma), _) => Err((
                dot.max(comma),
                format!("amounts disagree on the decimal mark (line {dot} uses '.', line {comma} uses ',')"),
            )),
            (Some(_), None, _) => Ok(DecimalMark::Dot),
            (None, Some(_), _) => Ok(DecimalMark::Comma),
            (None, None, Some(line)) => Err((
                line,
                "every amount with a separator has three digits after it: thousands or decimals cannot be told; say which with decimal_mark".to_owned(),
            )),
            (None, None, None) => Ok(DecimalMark::Dot),
        }
    }
}

/// [`Marks`] of `cells`, decided.
#[cfg(test)]
pub(crate) fn decide(cells: &[(usize, Parts)]) -> Result<DecimalMark, (usize, String)> {
    let mut marks = Marks::default();
    for (line, parts) in cells {
        marks.add(*line, parts);
    }
    marks.decide()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn value(cell: &str, mark: DecimalMark) -> Option<String> {
        parts(cell).and_then(|p| p.value(mark)).map(|v| v.to_string())
    }

    #[test]
    fn forms() {
        use DecimalMark::{Comma, Dot};
        assert_eq!(value("1,234.56", Dot).as_deref(), Some("1234.56"));
        assert_eq!(value("-1.234,56", Comma).as_deref(), Some("-1234.56"));
        assert_eq!(value("1 234,56 €", Comma).as_deref(), Some("1234.56"));
        assert_eq!(value("1'234.50", Dot).as_deref(), Some("1234.50"));
        assert_eq!(value("(33.52)", Dot).as_deref(), Some("-33.52"));
        assert_eq!(value("($182.77)", Dot).as_deref(), Some("-182.77"));
        assert_eq!(value("3.50-", Dot).as_deref(), Some("-3.50"));
        assert_eq!(value("12.00 DR", Dot).as_deref(), Some("-12.00"));
        assert_eq!(value("12.00 CR", Dot).as_deref(), Some("12.00"));
        assert_eq!(value("-200,0000", Comma).as_deref(), Some("-200.0000"));
        assert_eq!(value("+5", Dot).as_deref(), Some("5"));
        assert_eq!(value("−7.10", Dot).as_deref(), Some("-7.10"));
        assert_eq!(value("abc", Dot), None);
        assert_eq!(value("", Dot), None);
        assert_eq!(value("-", Dot), None);
    }

    #[test]
    fn mark_from_the_whole_file() {
        let cells =
            |texts: &[&str]| texts.iter().enumerate().map(|(i, t)| (i + 1, parts(t).unwrap())).collect::<Vec<_>>();
        assert_eq!(decide(&cells(&["1,234", "12.50"])), Ok(DecimalMark::Dot));
        assert_eq!(decide(&cells(&["1.234", "12,50"])), Ok(DecimalMark::Comma));
        assert_eq!(decide(&cells(&["1.234.567", "5"])), Ok(DecimalMark::Comma));
        assert_eq!(decide(&cells(&["12", "5"])), Ok(DecimalMark::Dot));
        assert!(decide(&cells(&["1,234", "2,500"])).is_err());
        assert!(decide(&cells(&["1.50", "2,50"])).is_err());
    }
}
