//! A statement reduced to 32 bytes: the same accounts reporting the same transactions give the
//! same digest, so a repeat refresh that found nothing new can leave the feed alone (issue #17).
//! Every field the feed stores is in it, so a correction (one amount, one memo) changes it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ReportedTransaction;

pub(super) fn of(accounts: &[(Uuid, &[ReportedTransaction])]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for (account_id, reported) in accounts {
        hash.update(account_id.as_bytes());
        hash.update(reported.len().to_le_bytes());
        for transaction in *reported {
            field(&mut hash, transaction.fitid.as_bytes());
            hash.update(transaction.posted_at.timestamp_micros().to_le_bytes());
            hash.update(transaction.amount.serialize());
            field(&mut hash, transaction.currency.as_bytes());
            field(&mut hash, transaction.name.as_bytes());
            field(&mut hash, transaction.memo.as_bytes());
            field(&mut hash, transaction.check_number.as_bytes());
            hash.update([u8::from(transaction.pending)]);
            match &transaction.replaces_fitid {
                Some(fitid) => {
                    hash.update([1]);
                    field(&mut hash, fitid.as_bytes());
                }
                None => hash.update([0]),
            }
        }
    }
    hash.finalize().to_vec()
}

/// Length first, so two fields never read as one.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update(bytes.len().to_le_bytes());
    hash.update(bytes);
}
