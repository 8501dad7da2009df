//! Transactions as the bank reported them, stored idempotently by (account, FITID), and the
//! change feed a client syncs from: every added, modified and removed transaction exactly once.

pub mod coverage;
mod digest;
pub mod identity;
pub mod stall;
pub mod store;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// A transaction as a refresh reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedTransaction {
    pub fitid: String,
    pub posted_at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: String,
    pub name: String,
    pub memo: String,
    pub check_number: String,
    pub pending: bool,
    pub replaces_fitid: Option<String>,
}

// A stored transaction. Plain comments here: a doc comment would become the schema's
// description. The API shows it without the feed's bookkeeping (its connection, removal and
// sequence numbers), which a sync answer conveys by itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = TransactionView)]
pub struct Transaction {
    pub id: Uuid,
    pub account_id: Uuid,
    #[serde(skip)]
    pub connection_id: Uuid,
    /// The bank's id (FITID).
    pub fitid: String,
    pub posted_at: DateTime<Utc>,
    /// Negative for money leaving the account.
    #[schema(value_type = String, example = "-42.17")]
    pub amount: Decimal,
    pub currency: String,
    pub name: String,
    pub memo: String,
    pub check_number: String,
    pub pending: bool,
    /// For a posted transaction: the FITID of the pending one it replaces.
    pub replaces_fitid: Option<String>,
    #[serde(skip)]
    pub removed: bool,
    #[serde(skip)]
    pub created_seq: i64,
    #[serde(skip)]
    pub change_seq: i64,
}

/// What one account's refresh changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
}

impl std::ops::AddAssign for Changes {
    fn add_assign(&mut self, other: Self) {
        self.added += other.added;
        self.modified += other.modified;
        self.removed += other.removed;
    }
}

/// One page of the change feed after a cursor.
#[derive(Debug, Clone, Default)]
pub struct SyncPage {
    pub added: Vec<Transaction>,
    pub modified: Vec<Transaction>,
    pub removed: Vec<Transaction>,
    pub next_cursor: i64,
    pub has_more: bool,
}

/// Sorts a page of changes (in change order) into added, modified and removed. A transaction
/// first seen and already removed after the cursor is left out: the client never had it.
pub fn classify(rows: Vec<Transaction>, cursor: i64, limit: usize) -> SyncPage {
    let has_more = rows.len() > limit;
    let mut page = SyncPage { next_cursor: cursor, has_more, ..SyncPage::default() };
    for row in rows.into_iter().take(limit) {
        page.next_cursor = row.change_seq;
        match (row.removed, row.created_seq > cursor) {
            (true, true) => {}
            (true, false) => page.removed.push(row),
            (false, true) => page.added.push(row),
            (false, false) => page.modified.push(row),
        }
    }
    page
}
