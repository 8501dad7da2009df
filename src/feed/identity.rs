//! How a transaction is recognised when the two sides do not share a FITID: the posting day,
//! the amount, the payee with case, spacing and punctuation taken out, and its occurrence among
//! identical rows of that day, so two real identical coffees stay two.

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Payee text kept in a key; longer names are cut (the start tells them apart).
const PAYEE_CHARS: usize = 64;

/// One row as identity sees it.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub day: NaiveDate,
    pub amount: Decimal,
    pub payee: &'a str,
}

/// Keys for `rows` in the order given (the order the source lists them).
pub fn synthetic_keys(rows: &[Facts<'_>]) -> Vec<String> {
    let mut occurrences = Occurrences::default();
    rows.iter().map(|row| occurrences.key(*row)).collect()
}

/// How many rows of each identity came before: the keys of a long list given a part at a time
/// (an import's batches) are those of the whole list. Identities are remembered by digest, and
/// most occur once, so those are a digest in a set (9 bytes a slot, not the 17 of a digest with
/// its count): a file of a million rows is keyed in about 19 MB.
#[derive(Debug, Default)]
pub struct Occurrences {
    once: std::collections::HashSet<u64>,
    /// Identities seen more than once, with how many times.
    more: std::collections::HashMap<u64, usize>,
}

impl Occurrences {
    /// The next row's key.
    pub fn key(&mut self, row: Facts<'_>) -> String {
        let base = format!("{}|{}|{}", row.day, row.amount.normalize(), normalise_payee(row.payee));
        let identity = digest(&base);
        let occurrence = match self.more.get_mut(&identity) {
            Some(seen) => {
                *seen += 1;
                *seen - 1
            }
            None if self.once.insert(identity) => 0,
            None => {
                self.more.insert(identity, 2);
                1
            }
        };
        format!("{base}|{occurrence}")
    }
}

/// The first 64 bits of the SHA-256 of `text`: how identities and FITIDs are remembered when a
/// whole file's worth must be. Two of a file's 400,000 rows sharing one is a chance in a
/// hundred million; and since the digest is the same on every read, such a pair would be keyed
/// the same way by every import and refresh, not once one way and once another.
pub fn digest(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

/// Lower-case letters and digits only: `AMAZON.COM*2X4` and `Amazon.com *2x4` are one payee.
pub fn normalise_payee(payee: &str) -> String {
    payee.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).take(PAYEE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identical_rows_of_a_day_stay_distinct() {
        let day = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        let coffee = Facts { day, amount: Decimal::new(-350, 2), payee: "Blue Bottle #12" };
        let keys = synthetic_keys(&[
            coffee,
            Facts { payee: "BLUE BOTTLE 12", ..coffee },
            Facts { amount: Decimal::new(-35, 1), ..coffee },
        ]);
        assert_eq!(
            keys,
            ["2024-01-05|-3.5|bluebottle12|0", "2024-01-05|-3.5|bluebottle12|1", "2024-01-05|-3.5|bluebottle12|2"]
        );
    }

    /// Each key counts the rows of its identity before it, however often an identity repeats.
    #[test]
    fn occurrences_count_every_earlier_row_of_the_identity() {
        let day = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        let rows: Vec<Facts<'_>> = (0..40)
            .map(|i| Facts { day, amount: Decimal::new(i % 7, 0), payee: if i % 3 == 0 { "A" } else { "B" } })
            .collect();
        let keys = synthetic_keys(&rows);
        for (i, (row, key)) in rows.iter().zip(&keys).enumerate() {
            let earlier = rows[..i].iter().filter(|r| r.amount == row.amount && r.payee == row.payee).count();
            assert!(key.ends_with(&format!("|{earlier}")), "{key} after {earlier}");
        }
        assert!(keys.iter().any(|key| key.ends_with("|3")), "{keys:?}");
    }
}
