//! Which rows of a file the account holds already, which resemble a stored transaction too
//! closely to add without a person's word, and which are new. Pure: the caller gathers.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::feed::identity::{Facts, synthetic_keys};
use crate::feed::store::Stored;

/// A file row as dedup sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub fitid: Option<&'a str>,
    pub day: NaiveDate,
    pub amount: Decimal,
    pub payee: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Add,
    /// The stored transaction this row is.
    Present(Uuid),
    /// Same day and amount as this stored transaction but not the same identity.
    Held(Uuid),
}

/// Verdicts for `rows` in order, with each row's synthetic key. A stored transaction answers
/// for one row at most, so two identical rows against one stored leave one to add.
pub fn classify(rows: &[Candidate<'_>], stored: &[Stored]) -> (Vec<Verdict>, Vec<String>) {
    let facts: Vec<Facts<'_>> = rows.iter().map(|r| Facts { day: r.day, amount: r.amount, payee: r.payee }).collect();
    let keys = synthetic_keys(&facts);
    let stored_keys = keys_of_stored(stored);
    let mut used = vec![false; stored.len()];
    let verdicts = rows
        .iter()
        .zip(&keys)
        .map(|(row, key)| {
            let by_fitid = row.fitid.and_then(|fitid| stored.iter().position(|s| s.fitid == fitid));
            let by_key = || (0..stored.len()).find(|&i| !used[i] && stored_keys[i] == *key);
            if let Some(found) = by_fitid.or_else(by_key) {
                used[found] = true;
                return Verdict::Present(stored[found].id);
            }
            let alike = (0..stored.len())
                .find(|&i| !used[i] && stored[i].posted_at.date_naive() == row.day && stored[i].amount == row.amount);
            match alike {
                Some(found) => {
                    used[found] = true;
                    Verdict::Held(stored[found].id)
                }
                None => Verdict::Add,
            }
        })
        .collect();
    (verdicts, keys)
}

/// Imported rows carry their key; the feed's are computed the same way, in stored order.
fn keys_of_stored(stored: &[Stored]) -> Vec<String> {
    let feed: Vec<Facts<'_>> = stored
        .iter()
        .filter(|s| s.synthetic_key.is_none())
        .map(|s| Facts { day: s.posted_at.date_naive(), amount: s.amount, payee: &s.name })
        .collect();
    let mut computed = synthetic_keys(&feed).into_iter();
    stored.iter().map(|s| s.synthetic_key.clone().or_else(|| computed.next()).unwrap_or_default()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::{TimeZone, Utc};

    use super::*;

    fn stored(fitid: &str, day: u32, cents: i64, name: &str) -> Stored {
        Stored {
            id: Uuid::now_v7(),
            fitid: fitid.to_owned(),
            posted_at: Utc.with_ymd_and_hms(2024, 1, day, 12, 0, 0).unwrap(),
            amount: Decimal::new(cents, 2),
            name: name.to_owned(),
            synthetic_key: None,
        }
    }

    fn row(fitid: Option<&'static str>, day: u32, cents: i64, payee: &'static str) -> Candidate<'static> {
        Candidate { fitid, day: NaiveDate::from_ymd_opt(2024, 1, day).unwrap(), amount: Decimal::new(cents, 2), payee }
    }

    #[test]
    fn fitid_then_identity_then_resemblance() {
        let held = stored("A", 5, -350, "COFFEE");
        let feed = [stored("F1", 3, -1000, "RENT"), stored("F2", 4, -200, "Bus"), held.clone()];
        let rows = [
            row(Some("F1"), 3, -1000, "RENT"),
            row(None, 4, -200, "BUS"),
            row(None, 5, -350, "Cafe"),
            row(None, 6, 100, "X"),
        ];
        let (verdicts, _) = classify(&rows, &feed);
        assert_eq!(
            verdicts,
            [Verdict::Present(feed[0].id), Verdict::Present(feed[1].id), Verdict::Held(held.id), Verdict::Add]
        );
    }

    #[test]
    fn two_identical_coffees_against_one_stored_add_one() {
        let feed = [stored("F", 5, -350, "COFFEE")];
        let rows = [row(None, 5, -350, "COFFEE"), row(None, 5, -350, "COFFEE")];
        assert_eq!(classify(&rows, &feed).0, [Verdict::Present(feed[0].id), Verdict::Add]);
    }
}
