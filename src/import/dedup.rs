//! Which rows of a file the account holds already, which resemble a stored transaction too
//! closely to add without a person's word, and which are new. Pure: the caller gathers.

use std::collections::{HashMap, HashSet};

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
///
/// Each rule takes the first stored transaction (in stored order) that fits: by FITID any,
/// by identity or by day and amount only one no earlier row has taken.
pub fn classify(rows: &[Candidate<'_>], stored: &[Stored]) -> (Vec<Verdict>, Vec<String>) {
    let facts: Vec<Facts<'_>> = rows.iter().map(|r| Facts { day: r.day, amount: r.amount, payee: r.payee }).collect();
    let keys = synthetic_keys(&facts);
    let verdicts = classify_part(rows, &keys, stored, &mut HashSet::new());
    (verdicts, keys)
}

/// [`classify`] for a part of a file (an import's batch): `keys` are the rows' keys among the
/// whole file's (`identity::Occurrences`), `stored` every stored transaction of the days the
/// part covers, and `taken` the stored transactions earlier parts have answered for (they
/// answer for none here; those this part takes are added).
pub fn classify_part(
    rows: &[Candidate<'_>],
    keys: &[String],
    stored: &[Stored],
    taken: &mut HashSet<Uuid>,
) -> Vec<Verdict> {
    let stored_keys = keys_of_stored(stored);
    let mut index = StoredIndex::new(stored, &stored_keys);
    for (used, transaction) in index.used.iter_mut().zip(stored) {
        *used = taken.contains(&transaction.id);
    }
    let verdicts: Vec<Verdict> = rows.iter().zip(keys).map(|(row, key)| index.verdict(row, key)).collect();
    taken.extend(verdicts.iter().filter_map(|verdict| match verdict {
        Verdict::Present(id) | Verdict::Held(id) => Some(*id),
        Verdict::Add => None,
    }));
    verdicts
}

/// The stored transactions by FITID, identity and (day, amount), so a file of a hundred
/// thousand rows against as many stored is classified in linear time.
struct StoredIndex<'s> {
    stored: &'s [Stored],
    used: Vec<bool>,
    by_fitid: HashMap<&'s str, usize>,
    by_key: HashMap<&'s str, Positions>,
    by_day_amount: HashMap<(NaiveDate, Decimal), Positions>,
}

/// Positions in stored order; those before `next` are all taken.
#[derive(Default)]
struct Positions {
    all: Vec<usize>,
    next: usize,
}

impl Positions {
    fn first_free(&mut self, used: &[bool]) -> Option<usize> {
        while let Some(&position) = self.all.get(self.next) {
            if !used[position] {
                return Some(position);
            }
            self.next += 1;
        }
        None
    }
}

impl<'s> StoredIndex<'s> {
    fn new(stored: &'s [Stored], keys: &'s [String]) -> Self {
        let mut index = Self {
            stored,
            used: vec![false; stored.len()],
            by_fitid: HashMap::with_capacity(stored.len()),
            by_key: HashMap::with_capacity(stored.len()),
            by_day_amount: HashMap::with_capacity(stored.len()),
        };
        for (position, (transaction, key)) in stored.iter().zip(keys).enumerate() {
            index.by_fitid.entry(transaction.fitid.as_str()).or_insert(position);
            index.by_key.entry(key.as_str()).or_default().all.push(position);
            let day_amount = (transaction.posted_at.date_naive(), transaction.amount.normalize());
            index.by_day_amount.entry(day_amount).or_default().all.push(position);
        }
        index
    }

    fn verdict(&mut self, row: &Candidate<'_>, key: &str) -> Verdict {
        let by_fitid = row.fitid.and_then(|fitid| self.by_fitid.get(fitid).copied());
        let found = by_fitid.or_else(|| self.by_key.get_mut(key).and_then(|p| p.first_free(&self.used)));
        if let Some(found) = found {
            self.used[found] = true;
            return Verdict::Present(self.stored[found].id);
        }
        let alike =
            self.by_day_amount.get_mut(&(row.day, row.amount.normalize())).and_then(|p| p.first_free(&self.used));
        match alike {
            Some(found) => {
                self.used[found] = true;
                Verdict::Held(self.stored[found].id)
            }
            None => Verdict::Add,
        }
    }
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

    /// The rules as first written, one scan of the stored rows per rule and row: the index
    /// must give the same verdicts.
    fn classify_by_scanning(rows: &[Candidate<'_>], stored: &[Stored]) -> Vec<Verdict> {
        let facts: Vec<Facts<'_>> =
            rows.iter().map(|r| Facts { day: r.day, amount: r.amount, payee: r.payee }).collect();
        let keys = synthetic_keys(&facts);
        let stored_keys = keys_of_stored(stored);
        let mut used = vec![false; stored.len()];
        rows.iter()
            .zip(&keys)
            .map(|(row, key)| {
                let by_fitid = row.fitid.and_then(|fitid| stored.iter().position(|s| s.fitid == fitid));
                let by_key = || (0..stored.len()).find(|&i| !used[i] && stored_keys[i] == *key);
                if let Some(found) = by_fitid.or_else(by_key) {
                    used[found] = true;
                    return Verdict::Present(stored[found].id);
                }
                let alike = (0..stored.len()).find(|&i| {
                    !used[i] && stored[i].posted_at.date_naive() == row.day && stored[i].amount == row.amount
                });
                match alike {
                    Some(found) => {
                        used[found] = true;
                        Verdict::Held(stored[found].id)
                    }
                    None => Verdict::Add,
                }
            })
            .collect()
    }

    proptest::proptest! {
        /// Few days, amounts, payees and FITIDs, so every rule and every collision is exercised,
        /// amounts written with and without trailing zeros among them.
        #[test]
        fn the_index_decides_as_scanning_does(
            stored_rows in proptest::collection::vec((0u8..4, 1u32..4, 0i64..3, 0usize..3, proptest::bool::ANY, 0usize..3), 0..24),
            file_rows in proptest::collection::vec((proptest::option::of(0u8..5), 1u32..4, 0i64..3, 0usize..3, proptest::bool::ANY), 0..24),
        ) {
            const PAYEES: [&str; 3] = ["COFFEE", "Coffee!", "RENT"];
            let stored: Vec<Stored> = stored_rows
                .iter()
                .map(|&(fitid, day, cents, payee, trailing_zero, keyed)| {
                    let mut s = stored(&format!("F{fitid}"), day, -cents * 50, PAYEES[payee]);
                    if trailing_zero {
                        s.amount = Decimal::new(-cents * 500, 3);
                    }
                    // Some stored rows came from an import and carry their key.
                    if keyed < 1 {
                        s.synthetic_key = Some(format!("2024-01-0{day}|{}|coffee|0", s.amount.normalize()));
                    }
                    s
                })
                .collect();
            let fitids: Vec<String> = (0..5).map(|n| format!("F{n}")).collect();
            let rows: Vec<Candidate<'_>> = file_rows
                .iter()
                .map(|&(fitid, day, cents, payee, trailing_zero)| Candidate {
                    fitid: fitid.map(|n| fitids[usize::from(n)].as_str()),
                    day: NaiveDate::from_ymd_opt(2024, 1, day).unwrap(),
                    amount: if trailing_zero { Decimal::new(-cents * 500, 3) } else { Decimal::new(-cents * 50, 2) },
                    payee: PAYEES[payee],
                })
                .collect();
            proptest::prop_assert_eq!(classify(&rows, &stored).0, classify_by_scanning(&rows, &stored));
        }
    }

    #[test]
    fn two_identical_coffees_against_one_stored_add_one() {
        let feed = [stored("F", 5, -350, "COFFEE")];
        let rows = [row(None, 5, -350, "COFFEE"), row(None, 5, -350, "COFFEE")];
        assert_eq!(classify(&rows, &feed).0, [Verdict::Present(feed[0].id), Verdict::Add]);
    }
}
