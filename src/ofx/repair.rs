//! Lenient reading of statement files people download from their bank (Web Connect, exports).
//!
//! Direct Connect answers are read strictly; files from banks' websites break the specification
//! in a handful of known ways (see `tests/statement_corpus/README.md` for where each was seen).
//! Each repair here applies only when the meaning is unambiguous, and leaves a [`ReadWarning`]
//! with the line; anything that could mean two things stays an [`OfxError`] naming the line.

use std::borrow::Cow;

use serde::Serialize;

use super::date::parse_date;
use super::error::OfxError;
use super::tree::Element;

/// Something the reader accepted although the specification does not allow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadWarning {
    /// 1-based line of the input, when the defect has one.
    pub line: Option<usize>,
    pub code: WarningCode,
    pub message: String,
}

/// Stable names for the defects a reader tolerates, for clients that count or filter them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    EmptyElement,
    NonStandardDate,
    DateTimeDropped,
    LowercaseValue,
    LowercaseTags,
    MissingFitid,
    DuplicateFitid,
    MissingCurrency,
    CharsetMismatch,
    TrailingBytes,
    AmountFormat,
    BalanceDropped,
    // CSV readers' warnings share the type so a report lists both kinds alike.
    Preamble,
    DateOrderInferred,
    Encoding,
    NoHeader,
    ColumnGuessed,
}

impl ReadWarning {
    pub(crate) fn at(line: usize, code: WarningCode, message: impl Into<String>) -> Self {
        Self { line: Some(line), code, message: message.into() }
    }
}

/// Values that are enumerations in the specification; banks have been seen writing them in
/// lower case (`debit`, `checking`).
const UPPERCASE_VALUES: [&str; 5] = ["TRNTYPE", "ACCTTYPE", "SEVERITY", "CURDEF", "CURSYM"];

/// Leaves whose emptiness is worth telling: the rest are aggregates or irrelevant.
const REPORTED_LEAVES: [&str; 12] = [
    "NAME", "MEMO", "FITID", "CHECKNUM", "TRNAMT", "BALAMT", "CURDEF", "DTSTART", "DTEND", "DTUSER", "DTPOSTED",
    "REFNUM",
];

/// Dates that only describe the file, dropped (with a warning) when they cannot be read.
const OPTIONAL_DATES: [&str; 6] = ["DTSERVER", "DTSTART", "DTEND", "DTUSER", "DTACCTUP", "DTPROFUP"];

/// Repairs `ofx` in place; errors for what cannot be read without guessing.
pub(crate) fn repair(ofx: &mut Element<'_>, warnings: &mut Vec<ReadWarning>) -> Result<(), OfxError> {
    walk(ofx, warnings)?;
    statements(ofx, warnings);
    Ok(())
}

/// Repairs one `STMTTRN` (or any aggregate) handed out by a streaming read, as [`repair`]
/// repairs it in a whole tree.
pub(crate) fn aggregate(element: &mut Element<'_>, warnings: &mut Vec<ReadWarning>) -> Result<(), OfxError> {
    walk(element, warnings)
}

fn walk(element: &mut Element<'_>, warnings: &mut Vec<ReadWarning>) -> Result<(), OfxError> {
    for child in &mut element.children {
        leaf(child, warnings)?;
        walk(child, warnings)?;
    }
    // Balances lacking an amount or date describe nothing; the statement is still good.
    element.children.retain(|child| {
        let is_balance = matches!(child.name.as_ref(), "LEDGERBAL" | "AVAILBAL");
        let complete =
            child.text_of("BALAMT").is_some() && child.text_of("DTASOF").is_some_and(|d| parse_date(d).is_ok());
        if is_balance && !complete {
            let message = format!("<{}> has no amount or no readable date; the balance is left out", child.name);
            warnings.push(ReadWarning::at(child.line, WarningCode::BalanceDropped, message));
        }
        !is_balance || complete
    });
    element.children.retain(|child| {
        let drop =
            OPTIONAL_DATES.contains(&child.name.as_ref()) && child.value().is_none_or(|v| parse_date(v).is_err());
        if drop && child.value().is_some() {
            let message = format!("<{}> {:?} is not a date; left out", child.name, child.text.trim());
            warnings.push(ReadWarning::at(child.line, WarningCode::DateTimeDropped, message));
        }
        !drop
    });
    Ok(())
}

fn leaf(element: &mut Element<'_>, warnings: &mut Vec<ReadWarning>) -> Result<(), OfxError> {
    let name = element.name.clone();
    let Some(value) = element.value().map(str::to_owned) else {
        if element.children.is_empty() && REPORTED_LEAVES.contains(&name.as_ref()) {
            warnings.push(ReadWarning::at(element.line, WarningCode::EmptyElement, format!("<{name}> is empty")));
        }
        return Ok(());
    };
    if UPPERCASE_VALUES.contains(&name.as_ref()) && value.bytes().any(|b| b.is_ascii_lowercase()) {
        let message = format!("<{name}> {value:?} read as {:?}", value.to_ascii_uppercase());
        warnings.push(ReadWarning::at(element.line, WarningCode::LowercaseValue, message));
        element.text = Cow::Owned(value.to_ascii_uppercase());
    }
    if name.starts_with("DT")
        && parse_date(&value).is_err()
        && let Some((fixed, note)) = repair_date(&value)
    {
        let message = format!("<{name}> {value:?} read as {fixed}: {note}");
        warnings.push(ReadWarning::at(element.line, WarningCode::NonStandardDate, message));
        element.text = Cow::Owned(fixed);
    }
    if matches!(name.as_ref(), "TRNAMT" | "BALAMT")
        && let Some(fixed) = repair_amount(&value, element.line, &name)?
    {
        let message = format!("<{name}> {value:?} read as {fixed}");
        warnings.push(ReadWarning::at(element.line, WarningCode::AmountFormat, message));
        element.text = Cow::Owned(fixed);
    }
    Ok(())
}

/// A date OFX can read, and why, for a value it cannot; `None` when no reading is safe.
fn repair_date(raw: &str) -> Option<(String, &'static str)> {
    let raw = raw.trim();
    let (stamp, zone) = match raw.split_once('[') {
        Some((stamp, zone)) => (stamp.trim(), Some(zone.trim_end_matches(']'))),
        None => (raw, None),
    };
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let separated = stamp.chars().any(|c| matches!(c, '-' | ':' | 'T' | ' ' | '/'));
    // Only year-first forms: 2024-01-15, 2024-01-15T10:00:00, 20240115 100000.
    let year_first = stamp.len() >= 8 && stamp.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if !year_first || stamp.contains('/') {
        return None;
    }
    let fraction = stamp.split_once('.').map(|(_, f)| f.trim_end_matches(|c: char| !c.is_ascii_digit()));
    let whole: String = match fraction {
        Some(f) => digits[..digits.len().saturating_sub(f.len())].to_owned(),
        None => digits,
    };
    let zone = zone.map(repair_zone);
    let rebuilt = |stamp: &str| match &zone {
        Some(Some(zone)) => format!("{stamp}[{zone}]"),
        _ => stamp.to_owned(),
    };
    for (candidate, note) in [
        (whole.clone(), "separators removed"),
        (whole.get(..8).unwrap_or_default().to_owned(), "time of day is not a valid time; date kept"),
    ] {
        if matches!(candidate.len(), 8 | 12 | 14) && parse_date(&rebuilt(&candidate)).is_ok() {
            let note = match (&zone, separated, candidate.len() == whole.len()) {
                (_, _, false) => note,
                (Some(Some(_)), false, true) => "time zone rewritten",
                (Some(None), _, true) => "unreadable time zone left out",
                _ => note,
            };
            return Some((rebuilt(&candidate), note));
        }
    }
    None
}

/// `-0300`, `-03:00`, `GMT`, `UTC` → the `[-3]` form; `None` when unreadable.
fn repair_zone(zone: &str) -> Option<String> {
    let offset = zone.split(':').next().unwrap_or_default().trim();
    if matches!(zone.trim().to_ascii_uppercase().as_str(), "GMT" | "UTC" | "Z") {
        return Some("0:GMT".to_owned());
    }
    let (sign, magnitude) = match offset.as_bytes().first() {
        Some(b'-') => ("-", &offset[1..]),
        Some(b'+') => ("+", &offset[1..]),
        _ => ("+", offset),
    };
    if magnitude.len() == 4 && magnitude.bytes().all(|b| b.is_ascii_digit()) {
        let minutes = &magnitude[2..];
        let hours = magnitude[..2].trim_start_matches('0');
        let hours = if hours.is_empty() { "0" } else { hours };
        return Some(if minutes == "00" { format!("{sign}{hours}") } else { format!("{sign}{hours}.{minutes}") });
    }
    let colon = zone.split_once(':').map(|(h, m)| (h.trim(), m.trim()));
    if let Some((hours, minutes)) = colon
        && minutes.len() == 2
        && minutes.bytes().all(|b| b.is_ascii_digit())
        && minutes != "00"
    {
        return Some(format!("{hours}.{minutes}"));
    }
    None
}

/// Thousands separators and currency signs are unambiguous when a decimal mark is also
/// present; a lone `,` or `.` followed by exactly three digits is not (`1,234`: a thousand
/// and more, or one and a fraction?), so that is refused.
fn repair_amount(raw: &str, line: usize, name: &str) -> Result<Option<String>, OfxError> {
    let trimmed = raw.trim();
    let stripped: String = trimmed.chars().filter(|c| !matches!(c, '$' | '€' | '£' | ' ' | '\u{a0}')).collect();
    let (negative, body) = match (stripped.strip_prefix('-'), stripped.strip_suffix('-')) {
        (Some(rest), _) => (true, rest.to_owned()),
        (None, Some(rest)) => (true, rest.to_owned()),
        _ => (false, stripped.trim_start_matches('+').to_owned()),
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return Ok(None);
    }
    let last_dot = body.rfind('.');
    let last_comma = body.rfind(',');
    let decimal = match (last_dot, last_comma) {
        (Some(dot), Some(comma)) => Some(if dot > comma { '.' } else { ',' }),
        (Some(at), None) | (None, Some(at)) => {
            let mark = body.as_bytes()[at] as char;
            let once = body.matches(mark).count() == 1;
            let digits_after = body.len() - at - 1;
            if once && digits_after == 3 && mark == ',' {
                let message = "a lone comma before three digits may be a thousands separator or a decimal comma";
                return Err(OfxError::invalid(line, name, raw, message));
            }
            if once { Some(mark) } else { None }
        }
        (None, None) => None,
    };
    let mut plain = String::with_capacity(body.len() + 1);
    if negative {
        plain.push('-');
    }
    for c in body.chars() {
        match c {
            '0'..='9' => plain.push(c),
            c if Some(c) == decimal => plain.push('.'),
            _ => {}
        }
    }
    let original = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let unchanged = plain == original || plain.replace('.', ",") == original;
    Ok(if unchanged { None } else { Some(plain) })
}

/// Statement-level checks: currency, FITIDs present and distinct.
fn statements(ofx: &Element<'_>, warnings: &mut Vec<ReadWarning>) {
    for body in statement_bodies(ofx) {
        if body.text_of("CURDEF").is_none() {
            let message = "statement names no currency (<CURDEF>); the account's own currency applies";
            warnings.push(ReadWarning::at(body.line, WarningCode::MissingCurrency, message));
        }
        let mut fitids = FitidCheck::default();
        for trn in body.child("BANKTRANLIST").into_iter().flat_map(|l| l.children_named("STMTTRN")) {
            fitids.check(trn, warnings);
        }
    }
}

/// FITIDs present and distinct within one statement. The FITIDs seen are kept as 64-bit
/// digests: a statement of hundreds of thousands of transactions is checked in a few
/// megabytes (two of them sharing a digest, a chance in a hundred million, would be warned
/// as a repeat).
#[derive(Debug, Default)]
pub(crate) struct FitidCheck {
    seen: std::collections::HashSet<u64>,
}

impl FitidCheck {
    pub fn check(&mut self, trn: &Element<'_>, warnings: &mut Vec<ReadWarning>) {
        match trn.text_of("FITID") {
            None => {
                let message = "transaction has no FITID; it is identified by date, amount and payee";
                warnings.push(ReadWarning::at(trn.line, WarningCode::MissingFitid, message));
            }
            Some(fitid) if !self.seen.insert(digest(fitid)) => {
                let message = format!("FITID {fitid:?} repeats within the statement");
                warnings.push(ReadWarning::at(trn.line, WarningCode::DuplicateFitid, message));
            }
            Some(_) => {}
        }
    }
}

/// The first 64 bits of the SHA-256 of `text`.
pub(crate) fn digest(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

/// Every `STMTRS`/`CCSTMTRS`, in the order `extract` reads them.
pub(crate) fn statement_bodies<'s, 'a>(ofx: &'s Element<'a>) -> Vec<&'s Element<'a>> {
    let mut found = Vec::new();
    for (set, trn, body) in [("BANKMSGSRSV1", "STMTTRNRS", "STMTRS"), ("CREDITCARDMSGSRSV1", "CCSTMTTRNRS", "CCSTMTRS")]
    {
        for trnrs in ofx.children_named(set).flat_map(|s| s.children_named(trn)) {
            found.extend(trnrs.child(body));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_are_repaired_only_when_year_first() {
        let cases = [
            ("2024-01-15", Some("20240115")),
            ("2024-01-15T10:30:00", Some("20240115103000")),
            ("20240115 103000", Some("20240115103000")),
            ("20240115256000", Some("20240115")),
            ("20120937021837", None),
            ("20240115120000[-0300]", Some("20240115120000[-3]")),
            ("20240115120000[-03:30]", Some("20240115120000[-03.30]")),
            ("20240115120000[GMT]", Some("20240115120000[0:GMT]")),
            ("15/01/2024", None),
            ("01/15/2024", None),
            ("yesterday", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(repair_date(raw).map(|(fixed, _)| fixed).as_deref(), expected, "{raw}");
        }
    }

    #[test]
    fn amounts_are_repaired_or_refused() {
        let ok = [
            ("1,234.56", Some("1234.56")),
            ("-1.234,56", Some("-1234.56")),
            ("$12.00", Some("12.00")),
            ("12.00-", Some("-12.00")),
            ("-12.50", None),
            ("-12,50", None),
            ("1.234.567", Some("1234567")),
        ];
        for (raw, expected) in ok {
            assert_eq!(repair_amount(raw, 1, "TRNAMT").unwrap().as_deref(), expected, "{raw}");
        }
        assert!(repair_amount("1,234", 7, "TRNAMT").is_err());
    }
}
