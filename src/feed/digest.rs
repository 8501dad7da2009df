//! A statement reduced to a digest per account and day (16 bytes each), and the whole statement to
//! 32 bytes made of those: the same accounts reporting the same transactions give the same
//! digests, so a repeat refresh that found nothing new leaves the feed alone, and one that re-reads
//! days as they were leaves those days alone (issue #17). Every field the feed stores is in them,
//! so a correction (one amount, one memo) changes them; the order of a day's rows does not.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ReportedTransaction;

/// Every field the feed stores of one transaction.
fn transaction_fields(hash: &mut Sha256, transaction: &ReportedTransaction) {
    field(hash, transaction.fitid.as_bytes());
    hash.update(transaction.posted_at.timestamp_micros().to_le_bytes());
    hash.update(transaction.amount.serialize());
    field(hash, transaction.currency.as_bytes());
    field(hash, transaction.name.as_bytes());
    field(hash, transaction.memo.as_bytes());
    field(hash, transaction.check_number.as_bytes());
    hash.update([u8::from(transaction.pending)]);
    match &transaction.replaces_fitid {
        Some(fitid) => {
            hash.update([1]);
            field(hash, fitid.as_bytes());
        }
        None => hash.update([0]),
    }
}

/// Length first, so two fields never read as one.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update(bytes.len().to_le_bytes());
    hash.update(bytes);
}

/// What a statement reported for each account and day, each day reduced to 16 bytes: the part of
/// a repeat refresh that re-sends days already applied as they were is left out of its writes.
/// A day with no reported transaction has no entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct DayDigests(BTreeMap<(Uuid, NaiveDate), [u8; DAY_DIGEST_LEN]>);

const DAY_DIGEST_LEN: usize = 16;
/// An entry as stored: the account, the day (days since 1 January of year 1), the digest.
const ENTRY_LEN: usize = 16 + 4 + DAY_DIGEST_LEN;

impl DayDigests {
    pub(super) fn of(accounts: &[(Uuid, &[ReportedTransaction])]) -> Self {
        let mut days: BTreeMap<(Uuid, NaiveDate), Vec<&ReportedTransaction>> = BTreeMap::new();
        for (account_id, reported) in accounts {
            for transaction in *reported {
                days.entry((*account_id, transaction.posted_at.date_naive())).or_default().push(transaction);
            }
        }
        Self(
            days.into_iter()
                .map(|(key, mut transactions)| {
                    // The bank's order within a day is not a change.
                    transactions.sort_by(|a, b| a.fitid.cmp(&b.fitid));
                    let mut hash = Sha256::new();
                    hash.update(transactions.len().to_le_bytes());
                    for transaction in transactions {
                        transaction_fields(&mut hash, transaction);
                    }
                    let mut digest = [0; DAY_DIGEST_LEN];
                    digest.copy_from_slice(&hash.finalize()[..DAY_DIGEST_LEN]);
                    (key, digest)
                })
                .collect(),
        )
    }

    /// The whole statement's digest: each account (in the statement's order) with its number of
    /// reported transactions and its days' digests, so one pass over the rows serves both.
    pub(super) fn of_statement(&self, accounts: &[(Uuid, &[ReportedTransaction])]) -> Vec<u8> {
        let mut hash = Sha256::new();
        for (account_id, reported) in accounts {
            hash.update(account_id.as_bytes());
            hash.update(reported.len().to_le_bytes());
            for ((_, day), digest) in self.0.range((*account_id, NaiveDate::MIN)..=(*account_id, NaiveDate::MAX)) {
                hash.update(day.num_days_from_ce().to_le_bytes());
                hash.update(digest);
            }
        }
        hash.finalize().to_vec()
    }

    /// The first day, from `from` on, on which `account` reports something other than `earlier`
    /// recorded, or None when every day from `from` on is the same in both.
    pub(super) fn first_difference(&self, earlier: &Self, account_id: Uuid, from: NaiveDate) -> Option<NaiveDate> {
        let days = |digests: &Self| {
            digests
                .0
                .range((account_id, from)..=(account_id, NaiveDate::MAX))
                .map(|((_, day), digest)| (*day, *digest))
                .collect()
        };
        let (now, before): (Vec<(NaiveDate, [u8; DAY_DIGEST_LEN])>, Vec<_>) = (days(self), days(earlier));
        let same_prefix = now.iter().zip(&before).take_while(|(a, b)| a == b).count();
        match (now.get(same_prefix), before.get(same_prefix)) {
            (None, None) => None,
            (Some((day, _)), None) | (None, Some((day, _))) => Some(*day),
            (Some((a, _)), Some((b, _))) => Some((*a).min(*b)),
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * ENTRY_LEN);
        for ((account_id, day), digest) in &self.0 {
            bytes.extend_from_slice(account_id.as_bytes());
            bytes.extend_from_slice(&day.num_days_from_ce().to_le_bytes());
            bytes.extend_from_slice(digest);
        }
        bytes
    }

    /// What [`Self::encode`] wrote; None for bytes it cannot have written (then nothing is
    /// skipped: a refresh applies its whole statement).
    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return None;
        }
        bytes
            .chunks_exact(ENTRY_LEN)
            .map(|entry| {
                let account_id = Uuid::from_slice(&entry[..16]).ok()?;
                let days = i32::from_le_bytes(entry[16..20].try_into().ok()?);
                let day = NaiveDate::from_num_days_from_ce_opt(days)?;
                let digest: [u8; DAY_DIGEST_LEN] = entry[20..].try_into().ok()?;
                Some(((account_id, day), digest))
            })
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;

    use super::*;

    fn transaction(fitid: &str, day: i64, cents: i64) -> ReportedTransaction {
        ReportedTransaction {
            fitid: fitid.into(),
            posted_at: DateTime::<Utc>::from_timestamp(1_760_054_400 + day * 86_400, 0).unwrap_or_default(),
            amount: Decimal::new(cents, 2),
            currency: "USD".into(),
            name: "payee".into(),
            memo: String::new(),
            check_number: String::new(),
            pending: false,
            replaces_fitid: None,
        }
    }

    fn day(n: u64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 10, 10).unwrap_or_default() + chrono::Days::new(n)
    }

    #[test]
    fn the_first_day_that_differs_is_found_and_the_order_within_a_day_is_no_difference() {
        let account = Uuid::from_u128(1);
        let before = [transaction("a", 0, 100), transaction("b", 0, 200), transaction("c", 2, 300)];
        let earlier = DayDigests::of(&[(account, &before[..])]);
        let reordered = [transaction("b", 0, 200), transaction("a", 0, 100), transaction("c", 2, 300)];
        assert_eq!(DayDigests::of(&[(account, &reordered[..])]).first_difference(&earlier, account, day(0)), None);
        let new_day = [before.as_slice(), &[transaction("d", 3, 400)]].concat();
        assert_eq!(
            DayDigests::of(&[(account, &new_day[..])]).first_difference(&earlier, account, day(0)),
            Some(day(3))
        );
        let corrected = [transaction("a", 0, 100), transaction("b", 0, 200), transaction("c", 2, 301)];
        assert_eq!(
            DayDigests::of(&[(account, &corrected[..])]).first_difference(&earlier, account, day(0)),
            Some(day(2))
        );
        let dropped = [transaction("a", 0, 100), transaction("c", 2, 300)];
        assert_eq!(
            DayDigests::of(&[(account, &dropped[..])]).first_difference(&earlier, account, day(0)),
            Some(day(0))
        );
        // A day before `from` is not compared; a day the earlier statement had and this one has
        // not is a difference.
        assert_eq!(DayDigests::of(&[(account, &dropped[..])]).first_difference(&earlier, account, day(1)), None);
        assert_eq!(DayDigests::default().first_difference(&earlier, account, day(1)), Some(day(2)));
        // Another account's days are not this one's.
        assert_eq!(
            DayDigests::of(&[(account, &before[..])]).first_difference(&earlier, Uuid::from_u128(2), day(0)),
            None
        );
    }

    #[test]
    fn encoded_digests_decode_to_themselves_and_other_bytes_to_nothing() {
        let rows = [transaction("a", 0, 100), transaction("b", 5, 200)];
        let digests = DayDigests::of(&[(Uuid::from_u128(1), &rows[..]), (Uuid::from_u128(2), &rows[..1])]);
        let bytes = digests.encode();
        assert_eq!(bytes.len(), 3 * ENTRY_LEN);
        assert_eq!(DayDigests::decode(&bytes), Some(digests));
        assert_eq!(DayDigests::decode(&bytes[1..]), None);
        assert_eq!(DayDigests::decode(&[]), Some(DayDigests::default()));
    }
}
