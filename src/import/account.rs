//! One account's rows of a file, imported a batch at a time: each batch is classified against
//! the stored transactions of the days it covers (`dedup::classify_part`) and its new rows are
//! inserted at once, while what must span the whole file (the occurrence of each identity,
//! the FITIDs seen, the stored transactions already answered for) is remembered by digest or
//! id. The rows this import inserted are left out of the comparison by the statement that
//! reads the stored ones (they carry the import's id), so they need no memory here.

use std::collections::HashSet;

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{AccountReport, DuplicateState, HeldDuplicate, ImportError, dedup, noon, store, synthetic_fitid};
use crate::connection::Account;
use crate::feed;
use crate::feed::identity::{Facts, Occurrences, digest};
use crate::statement::{SkippedRow, StatementRow};

/// Rows classified and inserted at a time: a batch's statements are as fast per row as one
/// for the whole file, and only a batch is held.
pub(super) const BATCH: usize = 5_000;

/// Rows left out that the report lists; past this many it only counts them.
pub(super) const MAX_SKIPPED: usize = 1_000;

#[derive(Debug)]
pub(super) struct AccountImport {
    pub account: Account,
    currency: String,
    pub report: AccountReport,
    pub held: Vec<store::Held>,
    pending: Vec<StatementRow>,
    fitids: HashSet<u64>,
    occurrences: Occurrences,
    taken: HashSet<Uuid>,
    days: Option<(NaiveDate, NaiveDate)>,
}

impl AccountImport {
    pub fn new(account: Account, currency: Option<String>) -> Self {
        let currency = currency.filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
        let currency = currency.unwrap_or_else(|| account.currency.clone());
        let report = AccountReport {
            account_id: account.id,
            added: 0,
            already_present: 0,
            probable_duplicates: Vec::new(),
            skipped: Vec::new(),
            omitted_skipped: 0,
            start: None,
            end: None,
        };
        Self {
            account,
            currency,
            report,
            held: Vec::new(),
            pending: Vec::new(),
            fitids: HashSet::new(),
            occurrences: Occurrences::default(),
            taken: HashSet::new(),
            days: None,
        }
    }

    /// Takes a row; true when a batch is full and should be written.
    pub fn push(&mut self, row: StatementRow) -> bool {
        self.days = Some(match self.days {
            Some((first, last)) => (first.min(row.posted), last.max(row.posted)),
            None => (row.posted, row.posted),
        });
        self.pending.push(row);
        self.pending.len() >= BATCH
    }

    pub fn skip(&mut self, skipped: SkippedRow) {
        if self.report.skipped.len() < MAX_SKIPPED {
            self.report.skipped.push(skipped);
        } else {
            self.report.omitted_skipped += 1;
        }
    }

    /// The first and last day of the rows taken.
    pub fn days(&self) -> Option<(NaiveDate, NaiveDate)> {
        self.days
    }

    /// Classifies the rows taken since the last call and inserts the new ones.
    pub async fn flush(
        &mut self,
        conn: &mut PgConnection,
        connection_id: Uuid,
        import_id: Uuid,
    ) -> Result<(), ImportError> {
        let rows = std::mem::take(&mut self.pending);
        let (Some(first), Some(last)) = (rows.iter().map(|r| r.posted).min(), rows.iter().map(|r| r.posted).max())
        else {
            return Ok(());
        };
        let from = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let to = last.succ_opt().unwrap_or(last).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let stored = feed::store::stored_between(&mut *conn, self.account.id, from, to, import_id).await?;
        // A FITID a bank repeats within one file cannot name two rows: later ones go by identity.
        let fitids: Vec<Option<&str>> =
            rows.iter().map(|r| r.fitid.as_deref().filter(|fitid| self.fitids.insert(digest(fitid)))).collect();
        let keys: Vec<String> = rows
            .iter()
            .map(|r| self.occurrences.key(Facts { day: r.posted, amount: r.amount, payee: &r.payee }))
            .collect();
        let candidates: Vec<dedup::Candidate<'_>> = rows
            .iter()
            .zip(&fitids)
            .map(|(r, fitid)| dedup::Candidate { fitid: *fitid, day: r.posted, amount: r.amount, payee: &r.payee })
            .collect();
        let verdicts = dedup::classify_part(&candidates, &keys, &stored, &mut self.taken);
        let mut added = Vec::new();
        for (((row, verdict), key), fitid) in rows.iter().zip(verdicts).zip(keys).zip(&fitids) {
            let fitid = fitid.map_or_else(|| synthetic_fitid(&key), str::to_owned);
            match verdict {
                dedup::Verdict::Present(_) => self.report.already_present += 1,
                dedup::Verdict::Add => {
                    self.report.added += 1;
                    added.push(self.imported(row, fitid, key));
                }
                dedup::Verdict::Held(resembles) => self.hold(import_id, row, fitid, key, resembles),
            }
        }
        if !added.is_empty() {
            feed::store::insert_imported(conn, connection_id, import_id, &added).await?;
        }
        Ok(())
    }

    fn imported(&self, row: &StatementRow, fitid: String, key: String) -> feed::store::Imported {
        feed::store::Imported {
            account_id: self.account.id,
            fitid,
            synthetic_key: key,
            posted_at: noon(row.posted),
            amount: row.amount,
            currency: self.currency.clone(),
            name: row.payee.clone(),
            memo: row.memo.clone().unwrap_or_default(),
            check_number: row.reference.clone().unwrap_or_default(),
        }
    }

    fn hold(&mut self, import_id: Uuid, row: &StatementRow, fitid: String, key: String, resembles: Uuid) {
        let id = Uuid::now_v7();
        self.report.probable_duplicates.push(HeldDuplicate {
            duplicate_id: id,
            line: row.line,
            posted_on: row.posted,
            amount: row.amount,
            payee: row.payee.clone(),
            resembles,
        });
        self.held.push(store::Held {
            id,
            import_id,
            account_id: self.account.id,
            line: i32::try_from(row.line).unwrap_or(i32::MAX),
            fitid: Some(fitid),
            synthetic_key: key,
            posted_at: noon(row.posted),
            amount: row.amount,
            currency: self.currency.clone(),
            name: row.payee.clone(),
            memo: row.memo.clone().unwrap_or_default(),
            check_number: row.reference.clone().unwrap_or_default(),
            resembles,
            state: DuplicateState::Held.as_str().to_owned(),
        });
    }
}
